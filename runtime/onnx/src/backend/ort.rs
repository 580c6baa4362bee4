//! The ONNX Runtime engine behind [`super::Session`], through `ort` with `load-dynamic`: the only module that
//! calls `ort`.
//!
//! `ort` panics when its first call finds no library (it falls back to `ORT_DYLIB_PATH`, then to a bare
//! `libonnxruntime.so`), and its environment can be built only once per process. So every call here goes
//! through [`runtime`], which checks the library file itself, loads it with `ort::init_from`, builds the one
//! environment and keeps both (with the library's path) for the life of the process; a later request for a
//! different library is an error rather than a silent use of the first one.

use super::{not_onnx, unexpected, Dim, F32Tensor, OrtOptions};
use crate::error::OnnxError;
use ::ort::environment::Environment;
use ::ort::ep::{self, ExecutionProviderDispatch};
use ::ort::session::{Session, SessionInputValue};
use ::ort::value::{TensorElementType, TensorRef, ValueType};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, OsString};
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The execution providers flint can register: short name, ONNX Runtime's name. [`OrtOptions::provider`] takes
/// either (any case); the loaded library must also report it ([`ort_providers`]). (ArmNN is not here: ONNX
/// Runtime removed it; `acl` or `xnnpack` cover those boards.)
pub const ORT_PROVIDERS: &[(&str, &str)] = &[
    ("cpu", "CPUExecutionProvider"),
    ("xnnpack", "XnnpackExecutionProvider"),
    ("qnn", "QNNExecutionProvider"),
    ("rknpu", "RknpuExecutionProvider"),
    ("nnapi", "NnapiExecutionProvider"),
    ("acl", "ACLExecutionProvider"),
    ("cuda", "CUDAExecutionProvider"),
];

/// Where a library comes from, for the errors about it.
const HOW_TO_GET: &str =
    "bench/fetch_models.sh installs the CPU build from the onnxruntime PyPI wheel as \
                          .cache/models/onnxruntime/libonnxruntime.so";

fn backend_err(detail: String) -> OnnxError {
    OnnxError::Backend { detail }
}

/// ONNX Runtime as loaded in this process.
struct Runtime {
    /// The library file, canonical.
    library: PathBuf,
    env: Environment,
    /// What `GetAvailableProviders` reported.
    providers: Vec<String>,
}

enum Loaded {
    Ready(&'static Runtime),
    /// The library was loaded (it cannot be unloaded from `ort`) but its environment could not be built.
    Failed {
        library: PathBuf,
        detail: String,
    },
}

static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// The library file to load: `library`, else `env` (the value of `ORT_DYLIB_PATH`), checked to be a file and
/// made canonical.
fn library_path(library: Option<&Path>, env: Option<OsString>) -> Result<PathBuf, OnnxError> {
    let chosen = match (library, env) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(v)) if !v.is_empty() => PathBuf::from(v),
        _ => {
            return Err(backend_err(format!(
                "no library named: give its path (OrtOptions::library) or set ORT_DYLIB_PATH; {HOW_TO_GET}"
            )))
        }
    };
    let missing = |detail: String| {
        backend_err(format!(
            "library {}: {detail}; {HOW_TO_GET}",
            chosen.display()
        ))
    };
    let meta = std::fs::metadata(&chosen).map_err(|e| missing(e.to_string()))?;
    if !meta.is_file() {
        return Err(missing("not a regular file".into()));
    }
    std::fs::canonicalize(&chosen).map_err(|e| missing(e.to_string()))
}

/// ONNX Runtime from `library` (or `ORT_DYLIB_PATH`), loaded on first use.
fn runtime(library: Option<&Path>) -> Result<&'static Runtime, OnnxError> {
    let path = library_path(library, std::env::var_os("ORT_DYLIB_PATH"))?;
    let other = |loaded: &Path| {
        backend_err(format!(
            "library {} is already loaded in this process; cannot also load {} (one ONNX Runtime per process)",
            loaded.display(),
            path.display()
        ))
    };
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    match &*loaded {
        Some(Loaded::Ready(rt)) if rt.library == path => return Ok(rt),
        Some(Loaded::Ready(rt)) => return Err(other(&rt.library)),
        Some(Loaded::Failed { library, detail }) if *library == path => {
            return Err(backend_err(detail.clone()))
        }
        Some(Loaded::Failed { library, .. }) => return Err(other(library)),
        None => {}
    }
    let builder = catch_unwind(|| ::ort::init_from(&path))
        .map_err(|_| backend_err(format!("ort panicked loading {}", path.display())))?
        .map_err(|e| {
            backend_err(format!(
                "library {} could not be loaded: {e}; {HOW_TO_GET}",
                path.display()
            ))
        })?;
    // The library is loaded now, for good: whatever happens below is remembered against its path.
    let built = catch_unwind(AssertUnwindSafe(|| -> Result<Runtime, String> {
        let env = builder
            .with_name("flint")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("creating the environment: {e}"))?;
        let providers = available_providers()?;
        Ok(Runtime {
            library: path.clone(),
            env,
            providers,
        })
    }))
    .unwrap_or_else(|_| Err("ort panicked creating the environment".into()));
    match built {
        Ok(rt) => {
            let rt: &'static Runtime = Box::leak(Box::new(rt));
            *loaded = Some(Loaded::Ready(rt));
            Ok(rt)
        }
        Err(e) => {
            let detail = format!("library {}: {e}", path.display());
            *loaded = Some(Loaded::Failed {
                library: path,
                detail: detail.clone(),
            });
            Err(backend_err(detail))
        }
    }
}

/// `GetAvailableProviders` of the loaded library (call only once [`runtime`] has loaded it).
fn available_providers() -> Result<Vec<String>, String> {
    let api = ::ort::api();
    let mut list: *mut *mut c_char = std::ptr::null_mut();
    let mut n: c_int = 0;
    // SAFETY: the API table comes from the library `runtime` loaded; the call writes an array of `n` C strings,
    // allocated by ONNX Runtime, to `list` (both out-pointers are valid locals), and returns a status we own.
    unsafe { ::ort::Error::result_from_status((api.GetAvailableProviders)(&mut list, &mut n)) }
        .map_err(|e| format!("GetAvailableProviders: {e}"))?;
    if list.is_null() {
        return Ok(Vec::new());
    }
    let names = (0..usize::try_from(n).unwrap_or(0))
        .map(|i| {
            // SAFETY: `i < n`, and each entry is a NUL-terminated string that lives until the list is released.
            let p = unsafe { *list.add(i) };
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: as above, `p` is a live NUL-terminated string.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        })
        .collect();
    // SAFETY: releases the list returned above, once, with the length it came with; its status is ours to drop.
    let _ = unsafe { ::ort::Error::result_from_status((api.ReleaseAvailableProviders)(list, n)) };
    Ok(names)
}

/// The execution providers the ONNX Runtime library reports (`GetAvailableProviders`), e.g.
/// `["CPUExecutionProvider"]` for the PyPI wheel. `library: None` means `ORT_DYLIB_PATH`. Loads the library if
/// it is not yet loaded (see the [module docs](super) on loading once).
pub fn ort_providers(library: Option<&Path>) -> Result<Vec<String>, OnnxError> {
    runtime(library).map(|rt| rt.providers.clone())
}

/// The [`ORT_PROVIDERS`] entry `name` means, if the library has it.
fn choose_provider(name: &str, rt: &Runtime) -> Result<(&'static str, &'static str), OnnxError> {
    let available = rt.providers.join(", ");
    let Some(&(short, full)) = ORT_PROVIDERS
        .iter()
        .find(|(s, f)| name.eq_ignore_ascii_case(s) || name.eq_ignore_ascii_case(f))
    else {
        let known: Vec<&str> = ORT_PROVIDERS.iter().map(|(s, _)| *s).collect();
        return Err(backend_err(format!(
            "unknown execution provider {name:?}: flint can use {} (or ONNX Runtime's names for them); the library {} has {available}",
            known.join(", "),
            rt.library.display()
        )));
    };
    if !rt.providers.iter().any(|p| p == full) {
        return Err(backend_err(format!(
            "execution provider {short} ({full}) is not in the library {}, which has {available}: use a build of ONNX Runtime with it (the PyPI wheel has no accelerator)",
            rt.library.display()
        )));
    }
    Ok((short, full))
}

/// The provider to register for `short` (`None` for the CPU one, which every session has). Options: one thread
/// where the provider has its own pool (as tract and the CPU sessions), QNN on the HTP (the NPU) rather than
/// its CPU backend, the rest at their defaults.
fn dispatch(short: &str) -> Option<ExecutionProviderDispatch> {
    let d = match short {
        "xnnpack" => ep::XNNPACK::default()
            .with_intra_op_num_threads(NonZeroUsize::MIN)
            .build(),
        "qnn" => ep::QNN::default().with_backend_path("libQnnHtp.so").build(),
        "rknpu" => ep::RKNPU::default().build(),
        "nnapi" => ep::NNAPI::default().build(),
        "acl" => ep::ACL::default().build(),
        "cuda" => ep::CUDA::default().build(),
        _ => return None,
    };
    // Registration failures are errors, not a quiet fall back to the CPU.
    Some(d.error_on_failure())
}

/// A model loaded in ONNX Runtime. `ort` runs take `&mut`; [`super::Session::run`] takes `&`, so one run at a
/// time (as tract's plans, which run on the calling thread).
pub(super) struct Model {
    session: Mutex<Session>,
}

/// Loads `path` (already checked to be a readable file) with `opts`; also returns its `metadata_props`.
pub(super) fn load(
    opts: &OrtOptions,
    path: &Path,
    want: &'static str,
    inputs: &[Vec<Dim>],
) -> Result<(Model, HashMap<String, String>), OnnxError> {
    let rt = runtime(opts.library.as_deref())?;
    let (short, full) = choose_provider(&opts.provider, rt)?;
    let session = catch_unwind(AssertUnwindSafe(|| {
        let setup = |e: &dyn std::fmt::Display| {
            backend_err(format!(
                "setting up a session on {full} from {}: {e}",
                rt.library.display()
            ))
        };
        let mut b = Session::builder(&rt.env)
            .map_err(|e| setup(&e))?
            .with_intra_threads(1)
            .map_err(|e| setup(&e))?
            .with_inter_threads(1)
            .map_err(|e| setup(&e))?;
        if let Some(d) = dispatch(short) {
            b = b.with_execution_providers([d]).map_err(|e| setup(&e))?;
        }
        b.commit_from_file(path)
            .map_err(|e| not_onnx(path, e.to_string()))
    }))
    .map_err(|_| not_onnx(path, "ONNX Runtime panicked loading the model".into()))??;

    let model_inputs = session.inputs();
    if model_inputs.len() != inputs.len() {
        return Err(unexpected(
            path,
            want,
            format!("{} inputs, want {}", model_inputs.len(), inputs.len()),
        ));
    }
    for (i, (outlet, dims)) in model_inputs.iter().zip(inputs).enumerate() {
        let name = outlet.name();
        let shape = match outlet.dtype() {
            ValueType::Tensor {
                ty: TensorElementType::Float32,
                shape,
                ..
            } => shape,
            other => {
                return Err(unexpected(
                    path,
                    want,
                    format!("input {i} ({name}) is {other}, want an f32 tensor"),
                ))
            }
        };
        // ONNX Runtime reports a free dimension as -1; a fixed one must be the declared size.
        let fits = shape.len() == dims.len()
            && shape.iter().zip(dims).all(|(&m, d)| match d {
                Dim::Fixed(n) => m < 0 || usize::try_from(m) == Ok(*n),
                Dim::Sym(_) | Dim::Multiple(..) => true,
            });
        if !fits {
            return Err(unexpected(
                path,
                want,
                format!("input {i} ({name}) has shape {shape:?}, want {dims:?}"),
            ));
        }
    }
    let metadata = session
        .metadata()
        .and_then(|m| {
            let mut out = HashMap::new();
            for key in m.custom_keys()? {
                if let Some(v) = m.custom(&key) {
                    out.insert(key, v);
                }
            }
            Ok(out)
        })
        .map_err(|e| not_onnx(path, format!("reading the metadata: {e}")))?;
    Ok((
        Model {
            session: Mutex::new(session),
        },
        metadata,
    ))
}

impl Model {
    /// Runs the model on `inputs` (already checked against the declared dims).
    pub(super) fn run(&self, inputs: &[F32Tensor]) -> Result<Vec<F32Tensor>, String> {
        let values = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                TensorRef::from_array_view((t.shape.as_slice(), t.data.as_slice()))
                    .map(SessionInputValue::from)
                    .map_err(|e| format!("input {i}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        catch_unwind(AssertUnwindSafe(|| {
            let outs = session.run(values.as_slice()).map_err(|e| e.to_string())?;
            outs.iter()
                .enumerate()
                .map(|(i, (_, v))| {
                    let (shape, data) = v
                        .try_extract_tensor::<f32>()
                        .map_err(|e| format!("output {i} is not f32: {e}"))?;
                    let shape = shape
                        .iter()
                        .map(|&d| usize::try_from(d))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| format!("output {i} has shape {shape:?}"))?;
                    Ok(F32Tensor {
                        shape,
                        data: data.to_vec(),
                    })
                })
                .collect()
        }))
        .map_err(|_| "ONNX Runtime panicked".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_path_needs_a_named_existing_file() {
        let e = library_path(None, None).unwrap_err().to_string();
        assert!(
            e.contains("ORT_DYLIB_PATH") && e.contains("fetch_models.sh"),
            "{e}"
        );
        let e = library_path(None, Some(OsString::new()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ORT_DYLIB_PATH"), "{e}");
        let e = library_path(None, Some("/no/such/libonnxruntime.so".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/no/such/libonnxruntime.so") && e.contains("fetch_models.sh"),
            "{e}"
        );
        let dir = std::env::temp_dir();
        let e = library_path(Some(&dir), None).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // The option wins over the environment variable.
        let me = std::env::current_exe().unwrap();
        let got = library_path(Some(&me), Some("/no/such/lib.so".into())).unwrap();
        assert_eq!(got, std::fs::canonicalize(&me).unwrap());
    }

    /// The only test in this binary that reaches `ort`: a file that is no shared library fails `dlopen`, which
    /// leaves nothing loaded behind.
    #[test]
    fn a_file_that_is_not_a_library_is_an_error_naming_it() {
        let p = std::env::temp_dir().join(format!(
            "flint-onnx-{}-not_a_library.so",
            std::process::id()
        ));
        std::fs::write(&p, b"not an ELF file").unwrap();
        for _ in 0..2 {
            let e = ort_providers(Some(&p)).unwrap_err();
            let s = e.to_string();
            assert!(
                matches!(e, OnnxError::Backend { .. })
                    && s.contains("not_a_library.so")
                    && s.contains("could not be loaded")
                    && s.contains("fetch_models.sh"),
                "{s}"
            );
        }
        std::fs::remove_file(&p).ok();
        assert!(LOADED.lock().unwrap().is_none());
    }

    #[test]
    fn every_provider_but_cpu_registers_something() {
        for (short, full) in ORT_PROVIDERS {
            assert!(full.ends_with("ExecutionProvider"), "{full}");
            assert_eq!(dispatch(short).is_none(), *short == "cpu", "{short}");
        }
    }
}
