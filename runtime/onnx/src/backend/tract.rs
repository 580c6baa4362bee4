//! The tract engine behind [`super::Session`]: the only module that calls tract.
//!
//! The model is type-checked and optimised once at load time for the declared input shapes; when tract cannot
//! reason with the symbolic dimensions (the text detector's up-sampling concat), it is planned per concrete
//! input shape on first use instead.

use super::{not_onnx, unexpected, Dim, F32Tensor};
use crate::error::OnnxError;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

/// Concrete-shape plans kept when the model cannot be optimised with symbolic dimensions.
const SHAPE_CACHE: usize = 8;

/// How the model is planned.
pub(super) enum Model {
    /// One plan for every shape (all dims fixed, or tract could reason with the symbols).
    Symbolic(Plan),
    /// tract could not simplify the symbolic shapes: one plan per concrete input shape, built on first use and
    /// kept for the last [`SHAPE_CACHE`] shapes.
    PerShape(Box<InferenceModel>, Mutex<Vec<(Vec<Vec<usize>>, Plan)>>),
}

/// Parses and plans the ONNX file at `path` (already checked to be a readable file) for `inputs`; also returns
/// its `metadata_props`.
pub(super) fn load(
    path: &Path,
    want: &'static str,
    inputs: &[Vec<Dim>],
) -> Result<(Model, HashMap<String, String>), OnnxError> {
    let onnx = tract_onnx::onnx();
    // Parsing arbitrary bytes must not bring the process down: tract is not written against hostile files.
    let parsed = catch_unwind(AssertUnwindSafe(|| onnx.model_for_path(path)))
        .map_err(|_| not_onnx(path, "the ONNX parser panicked".into()))?
        .map_err(|e| not_onnx(path, format!("{e:#}")))?;
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
        return Err(unexpected(
            path,
            want,
            format!("{n_in} inputs, want {}", inputs.len()),
        ));
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
        for (i, dims) in inputs.iter().enumerate() {
            let fact = TypedFact::dt_shape(f32::datum_type(), dims_of(&m, dims));
            m.set_input_fact(i, fact.into()).map_err(|e| {
                unexpected(
                    path,
                    want,
                    format!("input {i} does not take {dims:?}: {e:#}"),
                )
            })?;
        }
        optimise(m)
    };
    let plans = match symbolic {
        Ok(plan) => Model::Symbolic(plan),
        Err(e)
            if inputs
                .iter()
                .all(|d| d.iter().all(|x| matches!(x, Dim::Fixed(_)))) =>
        {
            return Err(unexpected(path, want, e));
        }
        Err(_) => Model::PerShape(Box::new(model), Mutex::new(Vec::new())),
    };
    Ok((plans, metadata))
}

impl Model {
    fn plan_for(&self, inputs: &[F32Tensor]) -> Result<Plan, String> {
        let (model, cache) = match self {
            Model::Symbolic(p) => return Ok(p.clone()),
            Model::PerShape(m, c) => (m, c),
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
                .map_err(|e| format!("input {i} does not take {shape:?}: {e:#}"))?;
        }
        let plan = optimise(m).map_err(|e| format!("planning for input shapes {key:?}: {e}"))?;
        if cache.len() >= SHAPE_CACHE {
            cache.remove(0);
        }
        cache.push((key, plan.clone()));
        Ok(plan)
    }

    /// Runs the model on `inputs` (already checked against the declared dims).
    pub(super) fn run(&self, inputs: &[F32Tensor]) -> Result<Vec<F32Tensor>, String> {
        let mut values: TVec<TValue> = tvec![];
        for t in inputs {
            let tensor =
                Tensor::from_shape::<f32>(&t.shape, &t.data).map_err(|e| format!("{e:#}"))?;
            values.push(tensor.into_tvalue());
        }
        let plan = self.plan_for(inputs)?;
        let outs = catch_unwind(AssertUnwindSafe(move || plan.run(values)))
            .map_err(|_| "tract panicked".to_string())?
            .map_err(|e| format!("{e:#}"))?;
        outs.iter()
            .enumerate()
            .map(|(i, v)| {
                let data = v
                    .try_as_plain_ram()
                    .and_then(|p| p.as_slice::<f32>().map(<[f32]>::to_vec))
                    .map_err(|e| format!("output {i} is not f32: {e:#}"))?;
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
