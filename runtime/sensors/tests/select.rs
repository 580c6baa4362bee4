//! Frame selection on real photos: sharpness ranks a photo above its blurred copies, near duplicates.

use flint_media::RgbImage;
use flint_sensors::select::{Thumbnail, DEFAULT_DUPLICATE_THRESHOLD};
use flint_sensors::{is_near_duplicate, pick_sharpest, sharpness, FrameRing};
use std::path::Path;

fn photo(name: &str) -> RgbImage {
    flint_media::decode_image_file(&Path::new("/work/shared/fixtures/processors/images").join(name))
        .unwrap()
}

fn box_blur(img: &RgbImage, r: usize) -> RgbImage {
    let (w, h) = (img.width, img.height);
    let mut out = img.clone();
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let (mut s, mut n) = (0u32, 0u32);
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                        s += u32::from(img.data[(yy * w + xx) * 3 + c]);
                        n += 1;
                    }
                }
                out.data[(y * w + x) * 3 + c] = (s / n) as u8;
            }
        }
    }
    out
}

#[test]
fn sharpest_is_the_unblurred_photo() {
    let img = photo("chelsea_640x480_q90.jpg");
    let b1 = box_blur(&img, 1);
    let b3 = box_blur(&img, 3);
    let (s0, s1, s3) = (sharpness(&img), sharpness(&b1), sharpness(&b3));
    assert!(s0 > s1 && s1 > s3 && s3 > 0.0, "{s0} {s1} {s3}");
    assert_eq!(pick_sharpest([&b3, &img, &b1]), Some(1));
    assert_eq!(pick_sharpest(std::iter::empty::<&RgbImage>()), None);
    let flat = RgbImage::new(8, 8, vec![90; 192]).unwrap();
    assert_eq!(sharpness(&flat), 0.0);
    assert_eq!(sharpness(&RgbImage::new(2, 1, vec![0; 6]).unwrap()), 0.0);
}

#[test]
fn near_duplicates() {
    let a = photo("coffee_640x480_q90.jpg");
    let mut noisy = a.clone();
    for (i, v) in noisy.data.iter_mut().enumerate() {
        *v = v.saturating_add((i * 7919 % 5) as u8);
    }
    assert!(is_near_duplicate(&a, &noisy, DEFAULT_DUPLICATE_THRESHOLD));
    assert!(is_near_duplicate(
        &a,
        &box_blur(&a, 1),
        DEFAULT_DUPLICATE_THRESHOLD
    ));
    assert!(!is_near_duplicate(
        &a,
        &photo("chelsea_640x480_q90.jpg"),
        DEFAULT_DUPLICATE_THRESHOLD
    ));
    let t = Thumbnail::of(&a);
    assert_eq!(t.difference(&t), 0.0);
    let tiny = RgbImage::new(1, 1, vec![1, 2, 3]).unwrap();
    assert_eq!(Thumbnail::of(&tiny).difference(&t), f32::INFINITY);
}

#[test]
fn ring_keeps_count_and_age() {
    let f = RgbImage::new(1, 1, vec![0, 0, 0]).unwrap();
    let mut ring = FrameRing::new(5, 1500);
    for t in [0u64, 300, 600, 900, 1200, 1500] {
        assert!(ring.push(t, f.clone()));
    }
    assert_eq!(ring.len(), 5);
    assert!(!ring.push(100, f.clone()), "older than the newest");
    let ts = |v: Vec<(u64, &RgbImage)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(ts(ring.last_second(1500)), vec![600, 900, 1200, 1500]);
    assert_eq!(ts(ring.last_second(1000)), vec![300, 600, 900]);
    ring.push(3000, f.clone());
    assert_eq!(ts(ring.iter().collect()), vec![1500, 3000]);
    assert_eq!(ring.latest().unwrap().0, 3000);
    let mut early = FrameRing::new(4, 2000);
    early.push(0, f.clone());
    early.push(500, f);
    assert_eq!(ts(early.last_second(600)), vec![0, 500]);
}
