//! The camera loop against the capture seam (no camera here): negotiation, YUYV and MJPEG decoding, unplugging.

use flint_media::RgbImage;
use flint_sensors::camera::decode_frame;
use flint_sensors::capture::negotiate;
use flint_sensors::yuv::{rgb_to_yuyv, yuyv_to_rgb};
use flint_sensors::{
    Backoff, Camera, CameraConfig, CameraEvent, Format, Mode, PixelFormat, ScriptedDevice,
    SensorError, Step,
};
use std::path::Path;
use std::time::{Duration, Instant};

const IMAGES: &str = "/work/shared/fixtures/processors/images";

fn mode(pixel: PixelFormat, width: u32, height: u32, fps: &[f64]) -> Mode {
    Mode {
        pixel,
        width,
        height,
        fps: fps.to_vec(),
    }
}

fn want(width: u32, height: u32, fps: f64, format_pref: PixelFormat) -> CameraConfig {
    CameraConfig {
        width,
        height,
        fps,
        format_pref,
        backoff: Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(40),
        },
        ..CameraConfig::default()
    }
}

#[test]
fn negotiation() {
    use PixelFormat::{Mjpeg, Yuyv};
    // A typical UVC webcam: MJPEG at every size at 30 fps, YUYV fast only when small.
    let offered = vec![
        mode(Yuyv, 640, 480, &[30.0, 15.0]),
        mode(Yuyv, 1280, 720, &[10.0, 5.0]),
        mode(Mjpeg, 640, 480, &[30.0, 15.0]),
        mode(Mjpeg, 1280, 720, &[30.0, 15.0]),
        mode(Mjpeg, 320, 240, &[30.0]),
    ];
    // What is asked, in the preferred format.
    assert_eq!(
        negotiate(&offered, &want(640, 480, 30.0, Mjpeg)),
        Some((2, 30.0))
    );
    assert_eq!(
        negotiate(&offered, &want(640, 480, 30.0, Yuyv)),
        Some((0, 30.0))
    );
    assert_eq!(
        negotiate(&offered, &want(640, 480, 15.0, Yuyv)),
        Some((0, 15.0))
    );
    // YUYV preferred, but at 720p it only does 10 fps: a much closer rate wins over the preference.
    assert_eq!(
        negotiate(&offered, &want(1280, 720, 30.0, Yuyv)),
        Some((3, 30.0))
    );
    // A size that is not offered: the nearest one.
    assert_eq!(
        negotiate(&offered, &want(1920, 1080, 30.0, Mjpeg)),
        Some((3, 30.0))
    );
    assert_eq!(
        negotiate(&offered, &want(300, 200, 30.0, Mjpeg)),
        Some((4, 30.0))
    );
    // A rate that is not offered: the nearest one.
    assert_eq!(
        negotiate(&offered, &want(640, 480, 20.0, Mjpeg)),
        Some((2, 15.0))
    );
    // Only the fallback format exists.
    let only_yuyv = vec![mode(Yuyv, 640, 480, &[])];
    assert_eq!(
        negotiate(&only_yuyv, &want(640, 480, 25.0, Mjpeg)),
        Some((0, 25.0))
    );
    assert_eq!(negotiate(&[], &want(640, 480, 30.0, Mjpeg)), None);
}

#[test]
fn yuyv_synthetic_colours() {
    // 8 pixels: black, white, red, green, blue, grey (pairs share chroma, so each pair is one colour).
    let pairs: [([u8; 4], [u8; 3]); 4] = [
        ([16, 128, 16, 128], [0, 0, 0]),
        ([235, 128, 235, 128], [255, 255, 255]),
        ([81, 90, 81, 240], [255, 0, 0]),
        ([41, 240, 41, 110], [0, 0, 255]),
    ];
    let buf: Vec<u8> = pairs.iter().flat_map(|p| p.0).collect();
    let fmt = Format {
        pixel: PixelFormat::Yuyv,
        width: 8,
        height: 1,
        stride: 16,
        fps: 30.0,
    };
    let img = decode_frame("/dev/video9", 1, &fmt, &buf).unwrap();
    for (i, (_, rgb)) in pairs.iter().enumerate() {
        for x in [2 * i, 2 * i + 1] {
            let got = img.pixel(x, 0);
            for c in 0..3 {
                assert!(
                    (i32::from(got[c]) - i32::from(rgb[c])).abs() <= 2,
                    "pixel {x}: {got:?} vs {rgb:?}"
                );
            }
        }
    }
    let err = decode_frame("/dev/video9", 7, &fmt, &buf[..12]).unwrap_err();
    assert!(err.to_string().contains("/dev/video9: frame 7"), "{err}");
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let s: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    s as f64 / a.data.len() as f64
}

#[test]
fn yuyv_recorded_from_a_photo() {
    let photo =
        flint_media::decode_image_file(&Path::new(IMAGES).join("chelsea_640x480_q90.jpg")).unwrap();
    let buf = rgb_to_yuyv(&photo);
    assert_eq!(buf.len(), 640 * 480 * 2);
    let back = yuyv_to_rgb(&buf, 640, 480, 1280).unwrap();
    let d = mean_abs_diff(&photo, &back);
    assert!(d < 3.0, "mean abs diff {d}");
}

#[test]
fn mjpeg_decodes_a_real_jpeg() {
    let path = Path::new(IMAGES).join("astronaut_640x480_q90.jpg");
    let jpeg = std::fs::read(&path).unwrap();
    let fmt = Format {
        pixel: PixelFormat::Mjpeg,
        width: 640,
        height: 480,
        stride: 0,
        fps: 30.0,
    };
    let img = decode_frame("/dev/video0", 3, &fmt, &jpeg).unwrap();
    assert_eq!(img, flint_media::decode_image_file(&path).unwrap());
}

fn drain(cam: &Camera) -> Vec<CameraEvent> {
    cam.events().try_iter().collect()
}

fn wait_for(
    cam: &Camera,
    mut pred: impl FnMut(&CameraEvent) -> bool,
    log: &mut Vec<String>,
) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok(e) = cam.events().recv_timeout(Duration::from_millis(50)) {
            log.push(format!("{e:?}"));
            if pred(&e) {
                return true;
            }
        }
    }
    false
}

#[test]
fn unplug_lost_back_and_frames_after() {
    let jpeg = std::fs::read(Path::new(IMAGES).join("coffee_640x480_q90.jpg")).unwrap();
    let mut dev = ScriptedDevice::new(
        "/dev/video7",
        vec![mode(PixelFormat::Mjpeg, 640, 480, &[30.0])],
    );
    dev.steps.extend([
        Step::Frame(jpeg.clone()),
        Step::Error(libc::EAGAIN),
        Step::Frame(jpeg.clone()),
        // Unplugged: away for three reopen attempts, then back with the same frames.
        Step::Unplug {
            errno: libc::ENODEV,
            reopen_failures: 3,
        },
    ]);
    dev.repeat = vec![jpeg.clone()];
    let cam = Camera::start_with(Box::new(dev), want(640, 480, 30.0, PixelFormat::Mjpeg)).unwrap();
    assert_eq!(cam.format().pixel, PixelFormat::Mjpeg);
    let mut log = Vec::new();
    assert!(wait_for(
        &cam,
        |e| matches!(e, CameraEvent::Opened { .. }),
        &mut log
    ));
    assert!(
        wait_for(
            &cam,
            |e| matches!(e, CameraEvent::Lost { device, error }
                if device == "/dev/video7" && error.raw_os_error() == Some(libc::ENODEV)),
            &mut log
        ),
        "{log:?}"
    );
    let before = cam.frames_decoded();
    assert_eq!(before, 2, "EAGAIN is not a loss");
    assert!(
        wait_for(&cam, |e| matches!(e, CameraEvent::Opened { .. }), &mut log),
        "{log:?}"
    );
    assert!(
        wait_for(
            &cam,
            |e| matches!(e, CameraEvent::Back { device } if device == "/dev/video7"),
            &mut log
        ),
        "{log:?}"
    );
    let f = cam
        .wait_newer(before as u64, Duration::from_secs(2))
        .unwrap();
    assert!(f.seq > before);
    assert_eq!(f.image.width, 640);
    let end = Instant::now() + Duration::from_secs(5);
    while cam.frames_decoded() <= before + 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cam.frames_decoded() > before + 2, "frames keep coming");
    let (t, img) = cam.latest().unwrap();
    assert!(t >= f.t_ms);
    assert_eq!(img.height, 480);
    assert!(
        drain(&cam)
            .iter()
            .all(|e| !matches!(e, CameraEvent::Lost { .. })),
        "one loss only"
    );
    cam.stop();
}

#[test]
fn garbage_mjpeg_is_dropped_with_an_event() {
    let jpeg = std::fs::read(Path::new(IMAGES).join("coffee_640x480_q90.jpg")).unwrap();
    let mut dev = ScriptedDevice::new(
        "/dev/video3",
        vec![mode(PixelFormat::Mjpeg, 640, 480, &[30.0])],
    );
    dev.steps.extend([
        Step::Frame(jpeg[..jpeg.len() / 2].to_vec()),
        Step::Frame(b"\xff\xd8garbage".to_vec()),
        Step::Frame(Vec::new()),
        Step::Frame(jpeg.clone()),
    ]);
    let cam = Camera::start_with(Box::new(dev), want(640, 480, 30.0, PixelFormat::Mjpeg)).unwrap();
    let f = cam
        .wait_newer(0, Duration::from_secs(3))
        .expect("the good frame arrives");
    assert_eq!(f.image.width, 640);
    std::thread::sleep(Duration::from_millis(20));
    let dropped: Vec<SensorError> = drain(&cam)
        .into_iter()
        .filter_map(|e| match e {
            CameraEvent::FrameDropped { error } => Some(error),
            _ => None,
        })
        .collect();
    // The truncated JPEG may decode partially (libjpeg fills the rest) or fail; the garbage and empty ones fail.
    assert!(dropped.len() >= 2, "{dropped:?}");
    for e in &dropped {
        assert!(e.to_string().contains("/dev/video3 frame"), "{e}");
    }
    assert_eq!(cam.frames_decoded() as usize, 4 - dropped.len());
}

#[test]
fn yuyv_camera_and_open_failure() {
    let photo =
        flint_media::decode_image_file(&Path::new(IMAGES).join("astronaut_640x480_q90.jpg"))
            .unwrap();
    let mut dev = ScriptedDevice::new(
        "/dev/video5",
        vec![mode(PixelFormat::Yuyv, 640, 480, &[15.0])],
    );
    dev.repeat = vec![rgb_to_yuyv(&photo)];
    let cam = Camera::start_with(Box::new(dev), want(640, 480, 30.0, PixelFormat::Mjpeg)).unwrap();
    assert_eq!(cam.format().pixel, PixelFormat::Yuyv);
    assert_eq!(cam.format().fps, 15.0);
    let f = cam.wait_newer(0, Duration::from_secs(3)).unwrap();
    assert!(mean_abs_diff(&photo, &f.image) < 3.0);
    drop(cam);

    let mut gone = ScriptedDevice::new("/dev/video8", vec![]);
    gone.open_errors.push_back(libc::ENOENT);
    let err = Camera::start_with(Box::new(gone), CameraConfig::default()).unwrap_err();
    assert!(err.to_string().starts_with("/dev/video8: open"), "{err}");
    // The real V4L2 path: no camera on this machine, so this must fail cleanly, naming the device.
    let err = Camera::start("/dev/video-none", CameraConfig::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("/dev/video-none: open"),
        "{err}"
    );
}
