//! One stream of [`Input`]s from either a recording or the devices.
//!
//! From devices, audio is what the microphone's ring holds (stamped from its start time and sample position) and
//! a frame is the camera's latest, taken when it is newer than the last one: nothing queues. Device events
//! (lost, back, overrun, dropped frames) are passed to the caller as text to report.

use anyhow::{Context, Result};
use flint_sensors::{Camera, CameraConfig, CameraEvent, Input, Mic, MicConfig, MicEvent, Player};
use std::time::Duration;

/// Where inputs come from.
#[derive(Debug)]
pub enum Inputs {
    Recording(Player),
    Devices(Box<Devices>),
}

/// The camera (may be absent) and the microphone.
#[derive(Debug)]
pub struct Devices {
    pub camera: Option<Camera>,
    pub mic: Mic,
    last_seq: u64,
    buf: Vec<f32>,
    samples: u64,
}

impl Inputs {
    /// Starts the devices: a V4L2 camera and an ALSA microphone.
    pub fn devices(camera: Option<(&str, CameraConfig)>, mic: (&str, MicConfig)) -> Result<Inputs> {
        let camera = camera.map(|(dev, cfg)| {
            (
                Box::new(flint_sensors::V4lCapture::new(std::path::Path::new(dev)))
                    as Box<dyn flint_sensors::CaptureDevice>,
                cfg,
            )
        });
        let pcm = Box::new(flint_sensors::AlsaPcm::new(mic.0)) as Box<dyn flint_sensors::PcmSource>;
        Self::devices_with(camera, (pcm, mic.1))
    }

    /// Devices behind their seams (tests and demos script them: `ScriptedDevice`, `ScriptedPcm`).
    pub fn devices_with(
        camera: Option<(Box<dyn flint_sensors::CaptureDevice>, CameraConfig)>,
        mic: (Box<dyn flint_sensors::PcmSource>, MicConfig),
    ) -> Result<Inputs> {
        let camera = match camera {
            Some((dev, cfg)) => {
                let name = dev.name().to_string();
                Some(
                    Camera::start_with(dev, cfg)
                        .with_context(|| format!("starting the camera {name}"))?,
                )
            }
            None => None,
        };
        let name = mic.0.name().to_string();
        let mic = Mic::start_with(mic.0, mic.1)
            .with_context(|| format!("starting the microphone {name}"))?;
        Ok(Inputs::Devices(Box::new(Devices {
            camera,
            mic,
            last_seq: 0,
            buf: Vec::new(),
            samples: 0,
        })))
    }

    /// The next input; device events seen meanwhile go to `note`. `None`: a recording ended.
    pub fn next(&mut self, note: &mut dyn FnMut(String)) -> Option<Result<Input>> {
        match self {
            Inputs::Recording(p) => p.next().map(|r| r.map_err(anyhow::Error::from)),
            Inputs::Devices(d) => Some(Ok(d.next(note))),
        }
    }
}

impl Devices {
    fn next(&mut self, note: &mut dyn FnMut(String)) -> Input {
        loop {
            if let Some(c) = &self.camera {
                while let Ok(e) = c.events().try_recv() {
                    match e {
                        CameraEvent::Opened { .. } => {}
                        CameraEvent::Lost { device, error } => {
                            note(format!("camera {device} lost ({error}); reopening"))
                        }
                        CameraEvent::Back { device } => note(format!("camera {device} is back")),
                        CameraEvent::FrameDropped { error } => {
                            note(format!("camera frame dropped: {error}"))
                        }
                    }
                }
            }
            while let Ok(e) = self.mic.events().try_recv() {
                match e {
                    MicEvent::Opened { .. } => {}
                    MicEvent::Overrun { device } => {
                        note(format!("microphone {device}: overrun, recovered"))
                    }
                    MicEvent::Lost { device, error } => {
                        note(format!("microphone {device} lost ({error}); reopening"))
                    }
                    MicEvent::Back { device } => note(format!("microphone {device} is back")),
                    MicEvent::Dropped { device } => note(format!(
                        "microphone {device}: the loop fell behind, audio dropped"
                    )),
                }
            }
            self.buf.clear();
            if self.mic.read(&mut self.buf) > 0 {
                let t_ms = self.mic.started_ms() + self.samples / 16;
                self.samples += self.buf.len() as u64;
                return Input::Audio {
                    t_ms,
                    samples: std::mem::take(&mut self.buf),
                };
            }
            let wait = Duration::from_millis(10);
            match &self.camera {
                Some(c) => {
                    if let Some(f) = c.wait_newer(self.last_seq, wait) {
                        self.last_seq = f.seq;
                        return Input::Frame {
                            t_ms: f.t_ms,
                            image: (*f.image).clone(),
                        };
                    }
                }
                None => std::thread::sleep(wait),
            }
        }
    }
}
