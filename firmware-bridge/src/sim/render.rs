//! The simulated display: an RGB565 framebuffer that embedded-graphics draws into.

use crate::message::Message;
use crate::types::{Font, PowerMode, Rgb565};
use embedded_graphics::mono_font::{ascii, MonoFont, MonoTextStyleBuilder};
use embedded_graphics::pixelcolor::{raw::RawU16, Rgb565 as Eg};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    Circle, CornerRadii, Line, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, RoundedRectangle,
    StrokeAlignment,
};
use embedded_graphics::text::{Baseline, Text};
use std::io::Write;
use std::path::Path;
use std::prelude::rust_2021::*;

/// An RGB565 framebuffer, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framebuffer {
    width: u16,
    height: u16,
    px: Vec<u16>,
    /// Power state last commanded; while off, drawing commands are accepted but not drawn.
    pub power: PowerMode,
}

fn eg(c: Rgb565) -> Eg {
    Eg::from(RawU16::new(c.0))
}

fn font(f: Font) -> &'static MonoFont<'static> {
    match f {
        Font::Small => &ascii::FONT_6X10,
        Font::Medium => &ascii::FONT_8X13,
        Font::Large => &ascii::FONT_10X20,
    }
}

impl Framebuffer {
    /// A black framebuffer.
    pub fn new(width: u16, height: u16) -> Self {
        Framebuffer {
            width,
            height,
            px: vec![0; width as usize * height as usize],
            power: PowerMode::On,
        }
    }

    /// Width and height.
    pub fn dims(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Pixel at `(x, y)`, or `None` outside.
    pub fn pixel(&self, x: u16, y: u16) -> Option<Rgb565> {
        (x < self.width && y < self.height)
            .then(|| Rgb565(self.px[y as usize * self.width as usize + x as usize]))
    }

    /// Raw RGB565 pixels, row-major.
    pub fn pixels(&self) -> &[u16] {
        &self.px
    }

    /// Executes one drawing or display command; other messages are ignored. Shapes are clipped to the
    /// display. Rounded corners are dropped for rectangles much larger than the display, because
    /// embedded-graphics walks a rounded rectangle's whole area and a hostile size would stall the device.
    pub fn render(&mut self, m: &Message<'_>) {
        if let Message::Power { mode } = *m {
            self.power = mode;
            return;
        }
        if self.power != PowerMode::On {
            return;
        }
        let p = |x: i16, y: i16| Point::new(x as i32, y as i32);
        // Drawing into this target cannot fail (its error type is Infallible).
        let _ = match *m {
            Message::Clear { x, y, w, h, color } => self.fill_solid(
                &Rectangle::new(p(x, y), Size::new(w as u32, h as u32)),
                eg(color),
            ),
            Message::Text {
                x,
                y,
                font: f,
                fg,
                bg,
                text,
            } => {
                let mut st = MonoTextStyleBuilder::new().font(font(f)).text_color(eg(fg));
                if let Some(bg) = bg {
                    st = st.background_color(eg(bg));
                }
                Text::with_baseline(text, p(x, y), st.build(), Baseline::Top)
                    .draw(self)
                    .map(|_| ())
            }
            Message::Rect {
                x,
                y,
                w,
                h,
                radius,
                stroke_width,
                stroke,
                fill,
            } => {
                let mut st = PrimitiveStyleBuilder::new().stroke_alignment(StrokeAlignment::Inside);
                if stroke_width > 0 {
                    st = st
                        .stroke_color(eg(stroke))
                        .stroke_width(stroke_width as u32);
                }
                if let Some(f) = fill {
                    st = st.fill_color(eg(f));
                }
                let rect = Rectangle::new(p(x, y), Size::new(w as u32, h as u32));
                let area = w as u64 * h as u64;
                let screen = self.width as u64 * self.height as u64;
                if radius > 0 && area <= 4 * screen {
                    let r = Size::new(radius as u32, radius as u32);
                    RoundedRectangle::new(rect, CornerRadii::new(r))
                        .into_styled(st.build())
                        .draw(self)
                } else {
                    rect.into_styled(st.build()).draw(self)
                }
            }
            Message::Line {
                x0,
                y0,
                x1,
                y1,
                width,
                color,
            } => Line::new(p(x0, y0), p(x1, y1))
                .into_styled(PrimitiveStyle::with_stroke(eg(color), width as u32))
                .draw(self),
            Message::Point {
                x,
                y,
                radius: 0,
                color,
            } => Pixel(p(x, y), eg(color)).draw(self),
            Message::Point {
                x,
                y,
                radius,
                color,
            } => Circle::with_center(p(x, y), 2 * radius as u32 + 1)
                .into_styled(PrimitiveStyle::with_fill(eg(color)))
                .draw(self),
            Message::Tile { x, y, w, h, rle } => {
                let area = Rectangle::new(
                    Point::new(x as i32, y as i32),
                    Size::new(w as u32, h as u32),
                );
                self.fill_contiguous(&area, rle.pixels().map(eg))
            }
            _ => Ok(()),
        };
    }

    /// Writes the framebuffer as an 8-bit RGB PNG, atomically (temporary file in the same directory, then
    /// rename).
    pub fn write_png(&self, path: &Path) -> std::io::Result<()> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut rgb = Vec::with_capacity(self.px.len() * 3);
        for &v in &self.px {
            rgb.extend_from_slice(&Rgb565(v).to_rgb888());
        }
        let res = (|| {
            let mut bytes = Vec::new();
            let mut enc = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(std::io::Error::other)?;
            w.write_image_data(&rgb).map_err(std::io::Error::other)?;
            w.finish().map_err(std::io::Error::other)?;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()
        })();
        match res {
            Ok(()) => std::fs::rename(&tmp, path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("renaming PNG to {}: {e}", path.display()))
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(std::io::Error::new(
                    e.kind(),
                    format!("writing PNG {}: {e}", tmp.display()),
                ))
            }
        }
    }
}

impl OriginDimensions for Framebuffer {
    fn size(&self) -> Size {
        Size::new(self.width as u32, self.height as u32)
    }
}

impl DrawTarget for Framebuffer {
    type Color = Eg;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Eg>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        for Pixel(pt, c) in pixels {
            if pt.x >= 0
                && pt.y >= 0
                && (pt.x as u32) < self.width as u32
                && (pt.y as u32) < self.height as u32
            {
                self.px[pt.y as usize * self.width as usize + pt.x as usize] =
                    RawU16::from(c).into_inner();
            }
        }
        Ok(())
    }

    // Clipped so that a huge rectangle from the link costs no more than the display's own size.
    fn fill_solid(&mut self, area: &Rectangle, color: Eg) -> Result<(), Self::Error> {
        let a = area.intersection(&self.bounding_box());
        let raw = RawU16::from(color).into_inner();
        if let Some(br) = a.bottom_right() {
            for y in a.top_left.y..=br.y {
                let row = y as usize * self.width as usize;
                self.px[row + a.top_left.x as usize..=row + br.x as usize].fill(raw);
            }
        }
        Ok(())
    }
}
