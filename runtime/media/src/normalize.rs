//! Rescale and normalise as the image processors do it, as a table: every output value is a function of the
//! channel and the u8 level, so `lut[c][v]` is computed once per config and the pixels are looked up.
//!
//! - [`Backend::Torchvision`] fuses the two steps: `(x - mean * (1 / rescale)) / (std * (1 / rescale))` in f32,
//!   the products too (`torch.tensor(mean) * (1.0 / rescale_factor)`: an f32 tensor times a python float);
//!   rescale alone is `x * rescale` in f32.
//! - [`Backend::Pil`] (numpy) rescales in f64 and rounds to f32 (`x.astype(float64) * rescale`, then
//!   `.astype(float32)`), then normalises in f32: `(x - mean) / std`.

use crate::resize::Backend;

/// The rescale / normalise settings of an image processor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
}

impl Normalize {
    /// The f32 value of every u8 level of each channel, as `backend` computes it.
    pub fn lut(&self, backend: Backend) -> [[f32; 256]; 3] {
        let mut lut = [[0f32; 256]; 3];
        for (c, row) in lut.iter_mut().enumerate() {
            let (mean, std) = (self.image_mean[c] as f32, self.image_std[c] as f32);
            for (v, o) in row.iter_mut().enumerate() {
                let x = v as f32;
                *o = match backend {
                    Backend::Torchvision => {
                        let inv = (1.0 / self.rescale_factor) as f32;
                        match (self.do_rescale, self.do_normalize) {
                            (true, true) => (x - mean * inv) / (std * inv),
                            (false, true) => (x - mean) / std,
                            (true, false) => x * self.rescale_factor as f32,
                            (false, false) => x,
                        }
                    }
                    Backend::Pil => {
                        let r = if self.do_rescale {
                            (v as f64 * self.rescale_factor) as f32
                        } else {
                            x
                        };
                        if self.do_normalize {
                            (r - mean) / std
                        } else {
                            r
                        }
                    }
                };
            }
        }
        lut
    }
}
