//! The board profile schema: what one `targets/boards/*.toml` file holds, and the checks serde cannot express.
//!
//! Every table denies unknown keys, so a misspelt key is an error naming it instead of a silently ignored line.

use crate::TargetsError;
use serde::{Deserialize, Serialize};

/// One board: how to build for it and how to run on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The name `--board` takes; also the file's stem for built-in profiles.
    pub name: String,
    /// Other names `--board` accepts (`pi5`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One line for `flint boards`.
    pub description: String,
    /// Accelerators on the board, for information only: Flint runs on the CPU.
    #[serde(default)]
    pub accelerators: Vec<String>,
    pub target: Target,
    pub cpu: Cpu,
    pub memory: Memory,
    pub camera: Camera,
    pub microphone: Microphone,
    pub display: Display,
    pub bridge: Bridge,
    /// Where the profile came from: `built-in:<name>.toml` or the path given. Not part of the TOML.
    #[serde(skip)]
    pub source: String,
}

/// The rustc target and the kernel paths the board is expected to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The rustc target triple to build with (`aarch64-unknown-linux-gnu`).
    pub triple: String,
    /// CPU features the board has, named as `is_aarch64_feature_detected!` / `is_x86_feature_detected!` name them.
    /// Kernels are still chosen by run-time detection; this list says what a correct board should report.
    pub features: Vec<String>,
}

/// A set of identical cores (a big or a little cluster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Core model, lower case (`cortex-a76`).
    pub core: String,
    /// Linux CPU numbers of the cluster's cores.
    pub ids: Vec<usize>,
}

/// CPU topology and threading defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// Clusters, fastest first. Empty when the topology is unknown.
    pub clusters: Vec<Cluster>,
    /// Default worker threads. Absent: one per usable core (see [`Profile::threads`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Cores to pin workers to, in order: worker `i` goes to `cores[i]`, so big cores come first.
    /// Empty: do not pin.
    #[serde(default)]
    pub cores: Vec<usize>,
    /// `flint glasses`: threads for the encoders (speech recognition, the vision and audio towers) while the
    /// wearer's turn is read. Absent: [`Profile::threads`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_threads: Option<usize>,
    /// `flint glasses`: threads for the answer model's prefill and decode. Absent: [`Profile::threads`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_threads: Option<usize>,
}

/// Memory the runtime may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Physical memory of the board, MiB.
    pub total_mib: u64,
    /// What Flint may keep resident (weights paged in, KV cache, buffers), MiB.
    pub budget_mib: u64,
}

/// The camera: a V4L2 device node and the mode `flint glasses` asks it for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub device: String,
    /// The pixel format to ask for first: `mjpeg` or `yuyv` (the other is the fallback).
    #[serde(default = "default_camera_format")]
    pub format: String,
    /// Frame size asked for, pixels (the driver may offer the nearest it has).
    #[serde(default = "default_camera_width")]
    pub width: u32,
    #[serde(default = "default_camera_height")]
    pub height: u32,
    /// Frames per second asked for.
    #[serde(default = "default_camera_fps")]
    pub fps: u32,
    /// The most image tokens `--image-tokens auto` gives one frame or photo on this board (a setting: the
    /// vision encode time and the KV a frame costs grow with it). Absent: what the model's processor would give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tokens_max: Option<usize>,
}

/// The microphone: an ALSA PCM name (`default`, `plughw:2,0`) and how it is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Microphone {
    pub device: String,
    /// Sample rate to ask for, Hz (another rate is resampled to the 16 kHz the models take).
    #[serde(default = "default_mic_rate")]
    pub rate: u32,
    /// ALSA period, frames: how much audio each read returns.
    #[serde(default = "default_mic_period")]
    pub period_frames: usize,
    /// ALSA buffer, frames (at least two periods): how long the loop may be busy before an overrun.
    #[serde(default = "default_mic_buffer")]
    pub buffer_frames: usize,
}

fn default_camera_format() -> String {
    "mjpeg".into()
}
fn default_camera_width() -> u32 {
    640
}
fn default_camera_height() -> u32 {
    480
}
fn default_camera_fps() -> u32 {
    15
}
fn default_mic_rate() -> u32 {
    16_000
}
fn default_mic_period() -> usize {
    320
}
fn default_mic_buffer() -> usize {
    1280
}

/// Pixel formats `camera.format` may name.
pub const CAMERA_FORMATS: &[&str] = &["mjpeg", "yuyv"];

/// Geometry of the display the answers are drawn on, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    pub width: u32,
    pub height: u32,
}

/// The serial link to the glasses' microcontroller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bridge {
    pub port: String,
    pub baud: u32,
}

/// The largest `camera.image_tokens_max` a profile may set (a 4K frame at Muse's 28-pixel tokens is about 10600).
pub const MAX_IMAGE_TOKENS: usize = 16384;

/// Target triples Flint is built and tested for.
pub const KNOWN_TRIPLES: &[&str] = &["aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"];

/// Feature names a profile may list, per architecture (the names the std detection macros use).
fn known_features(arch: &str) -> &'static [&'static str] {
    match arch {
        "aarch64" => &["neon", "dotprod", "i8mm", "fp16", "bf16", "sve", "sve2"],
        "x86_64" => &[
            "sse4.1",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512vnni",
            "avxvnni",
        ],
        _ => &[],
    }
}

impl Profile {
    /// The architecture part of the triple (`aarch64`).
    pub fn arch(&self) -> &str {
        self.target.triple.split('-').next().unwrap_or("")
    }

    /// True when this binary was built for the profile's architecture.
    pub fn is_native_arch(&self) -> bool {
        self.arch() == std::env::consts::ARCH
    }

    /// Worker threads to use: the profile's `threads`, or else one per pinned core, or else
    /// `available` (pass `std::thread::available_parallelism()`). Never 0.
    pub fn threads_or(&self, available: usize) -> usize {
        let n = match (self.cpu.threads, self.cpu.cores.len()) {
            (Some(t), _) => t,
            (None, 0) => available,
            (None, c) => c,
        };
        n.max(1)
    }

    /// [`Self::threads_or`] with this machine's available parallelism.
    pub fn threads(&self) -> usize {
        let avail = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        self.threads_or(avail)
    }

    /// `flint glasses`'s (encoder, decoder) threads: `cpu.encoder_threads` and `cpu.decoder_threads`, each
    /// [`Self::threads`] when absent.
    pub fn glasses_threads(&self) -> (usize, usize) {
        let t = self.threads();
        (
            self.cpu.encoder_threads.unwrap_or(t),
            self.cpu.decoder_threads.unwrap_or(t),
        )
    }

    /// The core worker `index` should be pinned to, if the profile pins (big cores first).
    pub fn core_for_thread(&self, index: usize) -> Option<usize> {
        self.cpu.cores.get(index).copied()
    }

    /// The memory budget in bytes.
    pub fn memory_budget_bytes(&self) -> u64 {
        self.memory.budget_mib.saturating_mul(1024 * 1024)
    }

    /// Total cores named by the clusters.
    pub fn core_count(&self) -> usize {
        self.cpu.clusters.iter().map(|c| c.ids.len()).sum()
    }

    /// A short topology string: `4x cortex-a76 + 4x cortex-a55`, or `unknown`.
    pub fn topology(&self) -> String {
        if self.cpu.clusters.is_empty() {
            return "unknown".to_string();
        }
        let parts: Vec<String> = self
            .cpu
            .clusters
            .iter()
            .map(|c| format!("{}x {}", c.ids.len(), c.core))
            .collect();
        parts.join(" + ")
    }

    /// Expected features that `has` (the run-time detector) says are missing: a wrong profile or a wrong board.
    pub fn missing_features(&self, has: impl Fn(&str) -> bool) -> Vec<&str> {
        self.target
            .features
            .iter()
            .map(String::as_str)
            .filter(|f| !has(f))
            .collect()
    }

    /// Checks the rules serde cannot: each failure names `file` and the key.
    pub fn validate(&self, file: &str) -> Result<(), TargetsError> {
        let bad = |key: &str, message: String| {
            Err(TargetsError::Invalid {
                file: file.to_string(),
                key: key.to_string(),
                message,
            })
        };
        if !valid_name(&self.name) {
            return bad(
                "name",
                format!(
                    "`{}` must be non-empty lower-case letters, digits, `-`, `.` or `_`",
                    self.name
                ),
            );
        }
        for (i, a) in self.aliases.iter().enumerate() {
            if !valid_name(a) {
                return bad(
                    &format!("aliases[{i}]"),
                    format!("`{a}` is not a valid board name"),
                );
            }
        }
        if !KNOWN_TRIPLES.contains(&self.target.triple.as_str()) {
            return bad(
                "target.triple",
                format!("`{}` is not one of {KNOWN_TRIPLES:?}", self.target.triple),
            );
        }
        let known = known_features(self.arch());
        for (i, f) in self.target.features.iter().enumerate() {
            if !known.contains(&f.as_str()) {
                return bad(
                    &format!("target.features[{i}]"),
                    format!("`{f}` is not a {} feature: {known:?}", self.arch()),
                );
            }
        }
        self.validate_cpu(file)?;
        if self.memory.budget_mib == 0 || self.memory.budget_mib > self.memory.total_mib {
            let m = self.memory;
            return bad(
                "memory.budget_mib",
                format!(
                    "{} must be in 1..={} (memory.total_mib)",
                    m.budget_mib, m.total_mib
                ),
            );
        }
        if let Some(n) = self.camera.image_tokens_max {
            if !(1..=MAX_IMAGE_TOKENS).contains(&n) {
                return bad(
                    "camera.image_tokens_max",
                    format!("{n} must be in 1..={MAX_IMAGE_TOKENS}"),
                );
            }
        }
        let c = &self.camera;
        if !CAMERA_FORMATS.contains(&c.format.as_str()) {
            return bad(
                "camera.format",
                format!("`{}` is not one of {CAMERA_FORMATS:?}", c.format),
            );
        }
        for (key, v) in [("camera.width", c.width), ("camera.height", c.height)] {
            if !(1..=8192).contains(&v) {
                return bad(key, format!("{v} is outside 1..=8192"));
            }
        }
        if !(1..=240).contains(&c.fps) {
            return bad("camera.fps", format!("{} is outside 1..=240", c.fps));
        }
        let m = &self.microphone;
        if !(8_000..=192_000).contains(&m.rate) {
            return bad(
                "microphone.rate",
                format!("{} is outside 8000..=192000", m.rate),
            );
        }
        if !(16..=65_536).contains(&m.period_frames) {
            return bad(
                "microphone.period_frames",
                format!("{} is outside 16..=65536", m.period_frames),
            );
        }
        if m.buffer_frames < 2 * m.period_frames || m.buffer_frames > 1 << 20 {
            return bad(
                "microphone.buffer_frames",
                format!(
                    "{} must hold at least two periods ({}) and at most 1048576 frames",
                    m.buffer_frames,
                    2 * m.period_frames
                ),
            );
        }
        for (key, v) in [
            ("camera.device", &self.camera.device),
            ("microphone.device", &self.microphone.device),
        ] {
            if v.trim().is_empty() {
                return bad(key, "must not be empty".to_string());
            }
        }
        if self.bridge.port.trim().is_empty() {
            return bad("bridge.port", "must not be empty".to_string());
        }
        if !(300..=12_000_000).contains(&self.bridge.baud) {
            return bad(
                "bridge.baud",
                format!("{} is outside 300..=12000000", self.bridge.baud),
            );
        }
        if self.display.width == 0 || self.display.width > 16384 {
            return bad(
                "display.width",
                format!("{} is outside 1..=16384", self.display.width),
            );
        }
        if self.display.height == 0 || self.display.height > 16384 {
            return bad(
                "display.height",
                format!("{} is outside 1..=16384", self.display.height),
            );
        }
        Ok(())
    }

    fn validate_cpu(&self, file: &str) -> Result<(), TargetsError> {
        let bad = |key: String, message: String| {
            Err(TargetsError::Invalid {
                file: file.to_string(),
                key,
                message,
            })
        };
        let mut all = Vec::new();
        for (i, c) in self.cpu.clusters.iter().enumerate() {
            if c.ids.is_empty() {
                return bad(
                    format!("cpu.clusters[{i}].ids"),
                    "a cluster needs at least one core".to_string(),
                );
            }
            for &id in &c.ids {
                if all.contains(&id) {
                    return bad(
                        format!("cpu.clusters[{i}].ids"),
                        format!("core {id} is listed twice"),
                    );
                }
                all.push(id);
            }
        }
        for (i, &id) in self.cpu.cores.iter().enumerate() {
            if self.cpu.cores[..i].contains(&id) {
                return bad(
                    format!("cpu.cores[{i}]"),
                    format!("core {id} is listed twice"),
                );
            }
            if !all.is_empty() && !all.contains(&id) {
                return bad(
                    format!("cpu.cores[{i}]"),
                    format!("core {id} is in no cluster"),
                );
            }
        }
        let limit = if self.cpu.cores.is_empty() {
            all.len()
        } else {
            self.cpu.cores.len()
        };
        for (key, t) in [
            ("cpu.threads", self.cpu.threads),
            ("cpu.encoder_threads", self.cpu.encoder_threads),
            ("cpu.decoder_threads", self.cpu.decoder_threads),
        ] {
            let Some(t) = t else { continue };
            if t == 0 || (limit > 0 && t > limit) {
                let limit = if limit == 0 {
                    "1..".to_string()
                } else {
                    format!("1..={limit}")
                };
                return bad(
                    key.to_string(),
                    format!("{t} is outside {limit} (the cores listed)"),
                );
            }
        }
        Ok(())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_'))
}
