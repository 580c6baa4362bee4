//! `flint run`'s and `flint preprocess`'s media options; the files become a prompt through flint-prompt.

use flint_prompt::{ImageTokens, MediaFiles};
use std::path::PathBuf;

/// The media of a prompt.
#[derive(clap::Args, Debug, Default)]
pub struct MediaArgs {
    /// An image (JPEG or PNG) to ask about; repeat for several.
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// A WAV clip (any rate; resampled to the model's); repeat for several.
    #[arg(long = "audio")]
    pub audio: Vec<PathBuf>,
    /// A recording's camera frames as one video: DIR/frames/<ms>.jpg or .png (the glasses loop's layout).
    #[arg(long)]
    pub video: Option<PathBuf>,
    /// Image tokens at most per image (the processor's max_image_tokens), or `auto`: chosen per image from its
    /// detail, between 64 and what the processor would give or the board's `camera.image_tokens_max` (shown on
    /// stderr).
    #[arg(long)]
    pub image_tokens: Option<ImageTokens>,
}

impl MediaArgs {
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.audio.is_empty() && self.video.is_none()
    }

    /// The files, with `auto`'s ceiling from the board profile (`camera.image_tokens_max`) when one is given.
    pub fn files(&self, board: Option<&str>) -> anyhow::Result<MediaFiles> {
        Ok(MediaFiles {
            images: self.images.clone(),
            audio: self.audio.clone(),
            video: self.video.clone(),
            image_tokens: self.image_tokens,
            auto_ceiling: crate::common::board_profile(board)?
                .and_then(|p| p.camera.image_tokens_max),
            ..Default::default()
        })
    }
}
