//! The seam between the models and the inference engines: the only module that calls tract or ONNX Runtime.
//!
//! A [`Session`] is one loaded model with f32 inputs and outputs. Input shapes are declared at load time with
//! [`Dim`]s, fixed or symbolic (a symbol is free at run time: the batch of the recogniser, the height and width
//! of the detector). [`Session::run`] takes and returns plain [`F32Tensor`]s and checks them against the declared
//! dims the same way whichever engine runs the model, so `vad` and `ocr` do not know which one it is.
//!
//! # Engines
//! - [`Backend::Tract`], the default: pure Rust, linked in, nothing to install on the board; the model is
//!   optimised once for the declared shapes. It runs single-threaded here.
//! - [`Backend::Ort`]: ONNX Runtime through the `ort` crate, loaded at run time from a `libonnxruntime.so`
//!   ([`OrtOptions::library`], else the `ORT_DYLIB_PATH` environment variable; `bench/fetch_models.sh` installs
//!   the one from the onnxruntime PyPI wheel as `.cache/models/onnxruntime/libonnxruntime.so`). It is the way to
//!   an NPU or GPU: [`OrtOptions::provider`] names the execution provider, which must be one the loaded library
//!   reports ([`ort_providers`]; the PyPI wheel's 1.31.1 has CPU and the remote Azure one only, so on it
//!   `cpu` is the choice). Sessions use one intra-op thread, like
//!   tract, and ONNX Runtime's default graph optimisation.
//!
//! tract stays the default because it needs no shared library on the board and gives the same results here
//! (the tests compare the two engines on the same inputs); ONNX Runtime is for the boards whose accelerator
//! only it can drive.
//!
//! ONNX Runtime is loaded once per process: the first library asked for stays, and asking for another one later
//! is an error ([`OnnxError::Backend`]), as is a missing or unloadable library. Nothing panics: the library
//! file is checked before `ort` sees it and every call into either engine is wrapped in `catch_unwind`.

mod ort;
mod tract;

pub use self::ort::{ort_providers, ORT_PROVIDERS};
use crate::error::OnnxError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A dense f32 tensor, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct F32Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl F32Tensor {
    /// A tensor; `None` when `data` does not hold `shape`'s element count.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Option<Self> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        (n == data.len()).then_some(Self { shape, data })
    }
}

/// One dimension of a declared input shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// Always this size.
    Fixed(usize),
    /// Chosen at each run; equal names are the same symbol.
    Sym(&'static str),
    /// Chosen at each run as a multiple of the given factor (`factor * symbol`): lets tract simplify the
    /// shapes of strided down- and up-sampling (the text detector needs it).
    Multiple(&'static str, usize),
}

/// Which engine runs a model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// tract (pure Rust, built in): the default.
    #[default]
    Tract,
    /// ONNX Runtime, loaded from a shared library at run time.
    Ort(OrtOptions),
}

/// How ONNX Runtime is loaded and which execution provider runs the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrtOptions {
    /// The `libonnxruntime.so` to load; `None` means the `ORT_DYLIB_PATH` environment variable.
    pub library: Option<PathBuf>,
    /// The execution provider: a short name from [`ORT_PROVIDERS`] (`"cpu"`, `"xnnpack"`, `"qnn"`, `"rknpu"`,
    /// `"nnapi"`, `"acl"`, `"cuda"`) or ONNX Runtime's own name (`"CPUExecutionProvider"`), any case.
    pub provider: String,
}

impl Default for OrtOptions {
    /// The CPU execution provider from the library named by `ORT_DYLIB_PATH`.
    fn default() -> Self {
        Self {
            library: None,
            provider: "cpu".into(),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Tract => f.write_str("tract"),
            Backend::Ort(o) => write!(f, "onnxruntime ({})", o.provider),
        }
    }
}

/// The engine holding a loaded model.
enum Engine {
    Tract(tract::Model),
    Ort(ort::Model),
}

/// One loaded model.
pub struct Session {
    path: PathBuf,
    backend: Backend,
    engine: Engine,
    metadata: HashMap<String, String>,
    inputs: Vec<Vec<Dim>>,
}

// Vad and Ocr are moved to and shared between threads by their callers, whichever engine is behind them.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Session>();
};

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("path", &self.path)
            .field("backend", &self.backend)
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

pub(crate) fn not_onnx(path: &Path, detail: String) -> OnnxError {
    OnnxError::NotOnnx {
        path: path.to_path_buf(),
        detail,
    }
}

pub(crate) fn unexpected(path: &Path, want: &'static str, detail: String) -> OnnxError {
    OnnxError::UnexpectedModel {
        path: path.to_path_buf(),
        want,
        detail,
    }
}

impl Session {
    /// Loads the ONNX file at `path` with tract, with one declared shape per model input, in the model's input
    /// order. `want` names the model in errors.
    pub fn load(path: &Path, want: &'static str, inputs: &[Vec<Dim>]) -> Result<Self, OnnxError> {
        Self::load_on(&Backend::Tract, path, want, inputs)
    }

    /// [`Session::load`] on the engine `backend`.
    pub fn load_on(
        backend: &Backend,
        path: &Path,
        want: &'static str,
        inputs: &[Vec<Dim>],
    ) -> Result<Self, OnnxError> {
        let meta = std::fs::metadata(path).map_err(|e| OnnxError::Missing {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        if !meta.is_file() {
            return Err(OnnxError::Missing {
                path: path.to_path_buf(),
                detail: "not a regular file".into(),
            });
        }
        let (engine, metadata) = match backend {
            Backend::Tract => {
                let (m, meta) = tract::load(path, want, inputs)?;
                (Engine::Tract(m), meta)
            }
            Backend::Ort(opts) => {
                let (m, meta) = ort::load(opts, path, want, inputs)?;
                (Engine::Ort(m), meta)
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            backend: backend.clone(),
            engine,
            metadata,
            inputs: inputs.to_vec(),
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The engine running the model.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The ONNX `metadata_props` value under `key`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Runs the model on `inputs` (one per declared input, shapes matching the declared dims) and returns every
    /// output as f32, in the model's output order.
    pub fn run(&self, inputs: &[F32Tensor]) -> Result<Vec<F32Tensor>, OnnxError> {
        let run_err = |detail: String| OnnxError::Run {
            path: self.path.clone(),
            detail,
        };
        if inputs.len() != self.inputs.len() {
            return Err(run_err(format!(
                "{} inputs given, model takes {}",
                inputs.len(),
                self.inputs.len()
            )));
        }
        for (i, (t, dims)) in inputs.iter().zip(&self.inputs).enumerate() {
            let fits = t.shape.len() == dims.len()
                && t.shape.iter().zip(dims).all(|(&n, d)| match d {
                    Dim::Fixed(m) => n == *m,
                    Dim::Sym(_) => n > 0,
                    Dim::Multiple(_, k) => n > 0 && n % k == 0,
                });
            if !fits {
                return Err(run_err(format!(
                    "input {i} has shape {:?}, model takes {dims:?}",
                    t.shape
                )));
            }
            let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if n != Some(t.data.len()) {
                return Err(run_err(format!(
                    "input {i} has {} values for shape {:?}",
                    t.data.len(),
                    t.shape
                )));
            }
        }
        match &self.engine {
            Engine::Tract(m) => m.run(inputs),
            Engine::Ort(m) => m.run(inputs),
        }
        .map_err(run_err)
    }
}
