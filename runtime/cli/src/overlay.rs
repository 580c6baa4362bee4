//! Boxes and points drawn onto a frame (`flint run --overlay`, `flint overlay`): 3-px outlines, a cross per point,
//! and each label in a filled tag above its box, with embedded-graphics fonts over the image's pixels.

use anyhow::Context;
use embedded_graphics::mono_font::{ascii::FONT_6X10, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use flint_answer::{Overlay, Shape};
use std::path::Path;

/// An RGB image as an embedded-graphics target (pixels outside are dropped).
struct Canvas<'a>(&'a mut image::RgbImage);

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = core::convert::Infallible;
    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        let (w, h) = (self.0.width() as i32, self.0.height() as i32);
        for Pixel(p, c) in pixels {
            if (0..w).contains(&p.x) && (0..h).contains(&p.y) {
                self.0
                    .put_pixel(p.x as u32, p.y as u32, image::Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

/// One colour per overlay, in turn.
const COLOURS: [Rgb888; 4] = [
    Rgb888::new(255, 40, 40),
    Rgb888::new(40, 220, 40),
    Rgb888::new(60, 120, 255),
    Rgb888::new(255, 200, 0),
];

/// Draws `overlays` onto `img`.
pub fn draw(img: &mut image::RgbImage, overlays: &[Overlay]) {
    let mut c = Canvas(img);
    for (i, o) in overlays.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let (x, y) = match o.shape {
            Shape::Box { x1, y1, x2, y2 } => {
                let (l, t) = (x1.min(x2).round() as i32, y1.min(y2).round() as i32);
                let (w, h) = (
                    (x2 - x1).abs().round() as u32,
                    (y2 - y1).abs().round() as u32,
                );
                let _ = Rectangle::new(Point::new(l, t), Size::new(w.max(1), h.max(1)))
                    .into_styled(PrimitiveStyle::with_stroke(colour, 3))
                    .draw(&mut c);
                (l, t)
            }
            Shape::Point { x, y } => {
                let (x, y) = (x.round() as i32, y.round() as i32);
                for r in [
                    Rectangle::new(Point::new(x - 6, y - 1), Size::new(13, 3)),
                    Rectangle::new(Point::new(x - 1, y - 6), Size::new(3, 13)),
                ] {
                    let _ = r
                        .into_styled(PrimitiveStyle::with_fill(colour))
                        .draw(&mut c);
                }
                (x + 8, y - 6)
            }
        };
        let mut label = o.label.clone().unwrap_or_default();
        if let Some(p) = o.confidence {
            label = format!("{label} {p:.2}").trim().to_string();
        }
        if !label.is_empty() {
            let w = 6 * label.chars().count() as u32 + 4;
            let top = (y - 12).max(0);
            let _ = Rectangle::new(Point::new(x, top), Size::new(w, 12))
                .into_styled(PrimitiveStyle::with_fill(colour))
                .draw(&mut c);
            let style = MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK);
            let _ = Text::with_baseline(&label, Point::new(x + 2, top + 1), style, Baseline::Top)
                .draw(&mut c);
        }
    }
}

/// A line of text in a white tag at the frame's bottom left (where the answer came from).
pub fn caption(img: &mut image::RgbImage, text: &str) {
    let h = img.height() as i32;
    let mut c = Canvas(img);
    let w = 6 * text.chars().count() as u32 + 4;
    let _ = Rectangle::new(Point::new(0, h - 12), Size::new(w, 12))
        .into_styled(PrimitiveStyle::with_fill(Rgb888::WHITE))
        .draw(&mut c);
    let style = MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK);
    let _ = Text::with_baseline(text, Point::new(2, h - 11), style, Baseline::Top).draw(&mut c);
}

/// Writes `img` as PNG at `path`, atomically (a temporary file beside it, then a rename).
pub fn write_png(img: &image::RgbImage, path: &Path) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .context("encoding the overlay PNG")?;
    crate::common::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

/// Finds the boxes and points of `answer` (written in `format`, about `image` as the processor resized it to
/// `resized`), draws them onto the image and writes the PNG; says what it drew on stderr.
pub fn render(
    image: &Path,
    resized: Option<(u32, u32)>,
    format: flint_answer::Format,
    answer: &str,
    note: Option<&str>,
    out: &Path,
) -> anyhow::Result<()> {
    let src = flint_media::decode_image_file(image)
        .with_context(|| format!("reading {}", image.display()))?;
    let (w, h) = (src.width as u32, src.height as u32);
    let (rw, rh) = resized.unwrap_or((w, h));
    let frame = flint_answer::Frame {
        width: w,
        height: h,
        resized_width: rw,
        resized_height: rh,
    };
    let found = flint_answer::BoxParser::parse_all(format, frame, answer);
    let mut img = image::RgbImage::from_raw(w, h, src.data).context("the decoded image's size")?;
    draw(&mut img, &found);
    if let Some(n) = note {
        caption(&mut img, n);
    }
    write_png(&img, out)?;
    eprintln!(
        "overlay: {} box(es) and point(s) in the {} format -> {}",
        found.len(),
        format.name(),
        out.display()
    );
    for o in &found {
        eprintln!("  {:?} {:?}", o.label.as_deref().unwrap_or(""), o.shape);
    }
    Ok(())
}
