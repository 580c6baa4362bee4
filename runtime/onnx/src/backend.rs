//! The seam between the models and the inference engine: the only module that calls tract.
//!
//! A [`Session`] is one loaded model with f32 inputs and outputs. Input shapes are declared at load time with
//! [`Dim`]s, fixed or symbolic (a symbol is free at run time: the batch of the recogniser, the height and width
//! of the detector); the model is optimised once for them. [`Session::run`] takes and returns plain
//! [`F32Tensor`]s, so a second backend (onnxruntime through `ort`) can sit behind the same three methods
//! (`load`, `run`, `metadata`) without touching `vad` or `ocr`.

use crate::error::OnnxError;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tract_onnx::prelude::*;

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

type Plan = Arc<TypedRunnableModel>;

/// Concrete-shape plans kept when the model cannot be optimised with symbolic dimensions.
const SHAPE_CACHE: usize = 8;

/// How the model is planned.
enum Plans {
    /// One plan for every shape (all dims fixed, or tract could reason with the symbols).
    Symbolic(Plan),
    /// tract could not simplify the symbolic shapes (the text detector's up-sampling concat): one plan per
    /// concrete input shape, built on first use and kept for the last [`SHAPE_CACHE`] shapes.
    PerShape(Box<InferenceModel>, Mutex<Vec<(Vec<Vec<usize>>, Plan)>>),
}

/// One loaded, optimised model.
pub struct Session {
    path: PathBuf,
    plans: Plans,
    metadata: HashMap<String, String>,
    inputs: Vec<Vec<Dim>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("path", &self.path)
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Loads the ONNX file at `path` with one declared shape per model input, in the model's input order.
    /// `want` names the model in errors.
    pub fn load(path: &Path, want: &'static str, inputs: &[Vec<Dim>]) -> Result<Self, OnnxError> {
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
        let not_onnx = |e: TractError| OnnxError::NotOnnx {
            path: path.to_path_buf(),
            detail: format!("{e:#}"),
        };
        let unexpected = |detail: String| OnnxError::UnexpectedModel {
            path: path.to_path_buf(),
            want,
            detail,
        };
        let onnx = tract_onnx::onnx();
        // Parsing arbitrary bytes must not bring the process down: tract is not written against hostile files.
        let parsed = catch_unwind(AssertUnwindSafe(|| onnx.model_for_path(path)))
            .map_err(|_| OnnxError::NotOnnx {
                path: path.to_path_buf(),
                detail: "the ONNX parser panicked".into(),
            })?
            .map_err(not_onnx)?;
        let mut model = parsed;
        // Unnamed ONNX nodes all get tract's name "F0::anon" (15 of them in the Silero export); debug builds of
        // tract refuse duplicate names, so make them unique.
        let mut names = std::collections::HashSet::new();
        for (id, node) in model.nodes.iter_mut().enumerate() {
            if !names.insert(node.name.clone()) {
                node.name = format!("{}#{id}", node.name);
                names.insert(node.name.clone());
            }
        }
        let n_in = model.inputs.len();
        if n_in != inputs.len() {
            return Err(unexpected(format!("{n_in} inputs, want {}", inputs.len())));
        }
        let mut metadata = HashMap::new();
        for (k, v) in &model.properties {
            if let Some(key) = k.strip_prefix("onnx.metadata_props.") {
                if let Ok(s) = v
                    .try_as_plain_ram()
                    .and_then(|p| p.to_scalar::<String>().cloned())
                {
                    metadata.insert(key.to_string(), s);
                }
            }
        }
        let symbolic = {
            let mut m = model.clone();
            let dims_of = |m: &InferenceModel, dims: &[Dim]| -> Vec<TDim> {
                dims.iter()
                    .map(|d| match d {
                        Dim::Fixed(n) => TDim::from(*n),
                        Dim::Sym(s) => m.symbols.sym(s).into(),
                        Dim::Multiple(s, k) => TDim::from(m.symbols.sym(s)) * TDim::from(*k),
                    })
                    .collect()
            };
            let mut set = Ok(());
            for (i, dims) in inputs.iter().enumerate() {
                let fact = TypedFact::dt_shape(f32::datum_type(), dims_of(&m, dims));
                if let Err(e) = m.set_input_fact(i, fact.into()) {
                    set = Err(unexpected(format!(
                        "input {i} does not take {dims:?}: {e:#}"
                    )));
                    break;
                }
            }
            set?;
            optimise(m)
        };
        let plans = match symbolic {
            Ok(plan) => Plans::Symbolic(plan),
            Err(e)
                if inputs
                    .iter()
                    .all(|d| d.iter().all(|x| matches!(x, Dim::Fixed(_)))) =>
            {
                return Err(unexpected(e));
            }
            Err(_) => Plans::PerShape(Box::new(model), Mutex::new(Vec::new())),
        };
        Ok(Self {
            path: path.to_path_buf(),
            plans,
            metadata,
            inputs: inputs.to_vec(),
        })
    }

    fn plan_for(&self, inputs: &[F32Tensor]) -> Result<Plan, OnnxError> {
        let (model, cache) = match &self.plans {
            Plans::Symbolic(p) => return Ok(p.clone()),
            Plans::PerShape(m, c) => (m, c),
        };
        let key: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = cache.iter().position(|(k, _)| *k == key) {
            let hit = cache.remove(pos);
            let plan = hit.1.clone();
            cache.push(hit);
            return Ok(plan);
        }
        let mut m = (**model).clone();
        for (i, shape) in key.iter().enumerate() {
            m.set_input_fact(i, f32::fact(shape).into())
                .map_err(|e| OnnxError::Run {
                    path: self.path.clone(),
                    detail: format!("input {i} does not take {shape:?}: {e:#}"),
                })?;
        }
        let plan = optimise(m).map_err(|detail| OnnxError::Run {
            path: self.path.clone(),
            detail: format!("planning for input shapes {key:?}: {detail}"),
        })?;
        if cache.len() >= SHAPE_CACHE {
            cache.remove(0);
        }
        cache.push((key, plan.clone()));
        Ok(plan)
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ONNX `metadata_props` value under `key`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Runs the model on `inputs` (one per declared input, shapes matching the declared fixed dims) and
    /// returns every output as f32.
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
        let mut values: TVec<TValue> = tvec![];
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
            let tensor = Tensor::from_shape::<f32>(&t.shape, &t.data)
                .map_err(|e| run_err(format!("{e:#}")))?;
            values.push(tensor.into_tvalue());
        }
        let plan = self.plan_for(inputs)?;
        let outs = catch_unwind(AssertUnwindSafe(move || plan.run(values)))
            .map_err(|_| run_err("tract panicked".into()))?
            .map_err(|e| run_err(format!("{e:#}")))?;
        outs.iter()
            .enumerate()
            .map(|(i, v)| {
                let data = v
                    .try_as_plain_ram()
                    .and_then(|p| p.as_slice::<f32>().map(<[f32]>::to_vec))
                    .map_err(|e| run_err(format!("output {i} is not f32: {e:#}")))?;
                Ok(F32Tensor {
                    shape: v.shape().to_vec(),
                    data,
                })
            })
            .collect()
    }
}

/// Type-checks, optimises and plans `m` (panics inside tract become errors).
fn optimise(m: InferenceModel) -> Result<Plan, String> {
    catch_unwind(AssertUnwindSafe(move || {
        m.into_optimized().and_then(|m| m.into_runnable())
    }))
    .map_err(|_| "tract panicked while optimising the model".to_string())?
    .map_err(|e| format!("{e:#}"))
}
