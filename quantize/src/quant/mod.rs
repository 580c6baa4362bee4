//! `flint-quantize quantize`: a float `.flint` file in, a quantized one out, with a measured quality report.
//!
//! - Each 2-D matrix is quantized per block of 32 along its rows (`q8`, `q4`, `q4m`); vectors stay as they are;
//!   which matrix gets which type is decided up front (see [`plan`]) so a bad `--keep` fails before any work.
//!   Paging groups (MoE experts) are converted one group at a time and written as groups; a big tensor's rows are
//!   split over the cores (the bytes do not depend on how).
//! - Unless turned off (`--no-imatrix`), the reference first runs the calibration text with `flint_kernels`' tap on
//!   to collect each matrix's input statistics (see [`imatrix`]); q8 and q4 blocks then minimise the
//!   importance-weighted squared error. That pass keeps the reference's outputs (up to
//!   [`eval::KEEP_REFERENCE_BYTES`]) so the measurement need not run the reference again. The importance comes from the
//!   same text the loss is then measured on, unless `--imatrix-text` names another (then that text is run once for
//!   the statistics, and the reference runs again during the measurement).
//! - The calibration set is a text file or a folder (see [`calib`]): text, and images and WAVs for the towers a
//!   model has. Each medium is one prompt; the importance pass runs them too, so tower matrices and the decoder's
//!   image and audio rows shape the weighting, and the report gives their KL per modality.
//! - The loss is then measured (see [`eval`]) by running the input and the quantized model side by side through
//!   `flint_model` on calibration text. Both run from their files (mmap), so the quantized tensors are first written
//!   to a hidden temp file beside the output; after measuring, the final file is written from it with the report in
//!   its metadata, and the temp file is removed. The output appears only when everything succeeded (atomic rename);
//!   on any error neither it nor the temp file is left behind.
//! - The report records the final file's own size: the layout of the second write is that of the temp file, so the
//!   size is the temp's data and directory plus the new metadata's length, found by a short fixed-point iteration.

pub mod calib;
mod convert;
mod error;
pub mod eval;
pub mod imatrix;
pub mod mix;
pub mod plan;
pub mod report;
pub mod routing;

pub use error::QuantError;
pub use eval::{Eval, TokenSource};
pub use plan::KeepRule;
pub use report::Report;

use flint_format::{DType, FlintFile};
use flint_model::Model;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Metadata key of the report.
pub const KEY_QUANTIZATION: &str = "quantization";
/// The metadata key listing the experts `--experts auto` pruned, `{layer: [expert, ...]}` (the runtime masks them).
pub const KEY_PRUNED: &str = "moe.pruned_experts";

/// What to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// The type of the weight matrices: `q8`, `q4` or `q4m`.
    pub weights: DType,
    /// Per-tensor overrides, later rules winning.
    pub keep: Vec<KeepRule>,
    /// The calibration set: a text file or a folder of text, images and WAVs (see [`calib`]); `None` means
    /// `bench/calibration.txt` (in the current directory, else in this workspace).
    pub calib: Option<PathBuf>,
    /// Tokens per measurement chunk (capped at the model's context).
    pub ctx: usize,
    /// Weight q8 / q4 block errors by the calibration text's activation statistics (see [`imatrix`]).
    pub imatrix: bool,
    /// Text to collect the activation statistics on; `None` means the calibration text.
    pub imatrix_text: Option<PathBuf>,
    /// `--experts auto`: promote experts (matrices, in a dense model) from `weights` to q8 within this size (see
    /// [`mix`]). Needs the importance statistics.
    pub experts: Option<mix::Target>,
}

/// Which phase a progress callback is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Running the reference over the calibration text to collect activation statistics (counts chunks).
    Calibrate,
    /// Measuring each candidate matrix's error at every level for `--experts auto`, then each kind's sensitivity
    /// (counts matrix levels and probes).
    Choose,
    /// Converting tensors (counts tensors).
    Quantize,
    /// Running the reference over the calibration media prompts (counts prompts).
    CalibrateMedia,
    /// Running both models (counts chunks).
    Measure,
    /// Running both models over the media prompts (counts prompts).
    MeasureMedia,
    /// Writing the final file (counts tensors).
    Write,
}

/// The default calibration text, in the order tried.
fn default_calibration() -> [PathBuf; 2] {
    [
        PathBuf::from("bench/calibration.txt"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/calibration.txt"),
    ]
}

fn read_calibration(calib: Option<&Path>) -> Result<calib::CalibSet, QuantError> {
    let path = match calib {
        Some(p) => p.to_path_buf(),
        None => default_calibration()
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| QuantError::Calibration {
                path: PathBuf::from("bench/calibration.txt"),
                msg: "not found in the current directory or the workspace; pass --calib FILE|DIR"
                    .into(),
            })?,
    };
    calib::read(&path)
}

/// Deletes a file when dropped (the unmeasured temp file, on success and on error alike).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Tensor `i` of `src` (read from `input`) converted to `to`, weighted by `imp`; errors name the tensor.
fn tensor_as<'a>(
    src: &'a FlintFile,
    input: &Path,
    i: usize,
    to: DType,
    imp: Option<&[f32]>,
) -> Result<Cow<'a, [u8]>, QuantError> {
    let t = &src.tensors()[i];
    let view = src.tensor(&t.name)?;
    convert::convert(t, view.bytes, to, imp).map_err(|msg| QuantError::Tensor {
        path: input.to_path_buf(),
        name: t.name.clone(),
        msg,
    })
}

/// Quantizes `input` into `output` (see the module docs) and returns the report stored in it.
pub fn quantize(
    input: &Path,
    output: &Path,
    opts: &Options,
    mut progress: impl FnMut(Stage, usize, usize),
) -> Result<Report, QuantError> {
    if !opts.weights.is_quantized() || opts.weights.block_rows() > 1 {
        return Err(QuantError::Options(format!(
            "--weights {} is not one of q8, q4, q4m, q2m (the interleaved layouts are chosen per matrix)",
            opts.weights
        )));
    }
    if opts.ctx == 0 {
        return Err(QuantError::Options("--ctx must be at least 1".into()));
    }
    let src = FlintFile::open(input)?;
    let reference = Model::load(src.clone())?;
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(QuantError::Options(format!(
                "the output {} is the input file",
                output.display()
            )));
        }
    }
    let set = read_calibration(opts.calib.as_deref())?;
    let calib_path = set.path.clone();
    let (tokens, token_source) = eval::calibration_tokens(&reference, &set.text)?;
    let (media, media_skipped) = eval::media_cases(&reference, &set)?;
    let mut choices = plan::choose(input, src.tensors(), opts.weights, &opts.keep)?;
    if opts.experts.is_some() && !opts.imatrix {
        return Err(QuantError::Options(
            "--experts auto measures each expert on the calibration set's activation statistics; drop --no-imatrix"
                .into(),
        ));
    }

    // Activation statistics, keeping the reference's outputs for the measurement.
    let tc = Instant::now();
    // Another text for the statistics: its outputs are of no use to the measurement, so none are kept.
    let (imx_path, imx_tokens) = match (&opts.imatrix_text, opts.imatrix) {
        (Some(p), true) => {
            let t = read_calibration(Some(p))?;
            (
                t.path,
                Some(eval::calibration_tokens(&reference, &t.text)?.0),
            )
        }
        _ => (calib_path.clone(), None),
    };
    // The routing of the importance text, for `--experts auto` (each expert's output is scaled by its gate weight).
    let mut imx_routing = routing::RoutingAcc::default();
    let (cached, importance) = if opts.imatrix {
        let (cached, imp) = imatrix::collect(&src, || {
            let cached = eval::reference_pass(
                &reference,
                imx_tokens.as_deref().unwrap_or(&tokens),
                opts.ctx,
                match imx_tokens {
                    Some(_) => 0,
                    None => eval::KEEP_REFERENCE_BYTES,
                },
                opts.experts.map(|_| &mut imx_routing),
                |d, n| progress(Stage::Calibrate, d, n),
            )?;
            // The media prompts too: their tower matmuls and the decoder's rows of image and audio tokens.
            for (i, case) in media.iter().enumerate() {
                eval::media_logits(&reference, case, None)?;
                progress(Stage::CalibrateMedia, i + 1, media.len());
            }
            Ok::<_, QuantError>(cached)
        });
        let cached = cached?;
        (
            if imx_tokens.is_some() {
                Vec::new()
            } else {
                cached
            },
            Some(imp),
        )
    } else {
        (Vec::new(), None)
    };
    let calibrate_seconds = tc.elapsed().as_secs_f64();
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mix = match (opts.experts, &importance) {
        (Some(target), Some(imp)) => {
            // Probes for each kind's sensitivity: the first PROBE_TOKENS of the importance text, whose KL against
            // the reference is measured with some matrices quantized (in a temp file beside the output).
            let imx = imx_tokens.as_deref().unwrap_or(&tokens);
            let probe_tokens = &imx[..imx.len().min(mix::PROBE_TOKENS)];
            let want = eval::reference_logits(&reference, probe_tokens, opts.ctx)?;
            let mut probe = |types: &[DType]| -> Result<f64, QuantError> {
                let tmp = TempFile(dir.join(format!(".{name}.probe-{}.flint", std::process::id())));
                let types: Vec<Option<DType>> = types.iter().map(|&d| Some(d)).collect();
                convert::write_file(
                    &src,
                    &tmp.0,
                    src.metadata().clone(),
                    &types,
                    |i| {
                        let to = types[i].unwrap_or(DType::F32);
                        tensor_as(&src, input, i, to, imp.get(i).filter(|_| to.is_quantized()))
                    },
                    |_, _| {},
                )?;
                let m = Model::load(FlintFile::open(&tmp.0)?)?;
                eval::mean_kl(&want, &m, probe_tokens, opts.ctx)
            };
            Some(mix::choose(
                &src,
                &mut choices,
                opts.weights,
                imp,
                imx_routing.finish(&reference.moe_layers()).as_ref(),
                target,
                &mut probe,
                |d, n| progress(Stage::Choose, d, n),
            )?)
        }
        _ => None,
    };
    // The report speaks of logical types (q8, q4); the file stores the interleaved layout where it applies.
    let types: Vec<DType> = choices
        .iter()
        .zip(src.tensors())
        .map(|(c, t)| convert::stored_type(c.to, &t.shape))
        .collect();
    // The importance each tensor is quantized with: q8 / q4 matrices that some matmul read.
    let weighted = |i: usize| {
        let c = &choices[i];
        let imp = importance.as_ref()?.get(i)?;
        matches!(c.to, DType::Q8 | DType::Q4 | DType::Q2M).then_some(imp)
    };

    // Pass 1: convert into a hidden temp file beside the output.
    let t0 = Instant::now();
    let tmp = TempFile(dir.join(format!(".{name}.unmeasured-{}.flint", std::process::id())));
    let mut meta = src.metadata().clone();
    if let Some(o) = meta.as_object_mut() {
        o.insert("general.weight_type".into(), opts.weights.name().into());
        o.insert(
            "general.writer".into(),
            concat!("flint-quantize ", env!("CARGO_PKG_VERSION")).into(),
        );
        o.remove(KEY_QUANTIZATION);
        if let Some(m) = mix.as_ref().filter(|m| !m.pruned_experts.is_empty()) {
            o.insert(
                KEY_PRUNED.into(),
                serde_json::to_value(&m.pruned_experts).unwrap_or_default(),
            );
        }
    }
    // Pruned experts are left out of the file.
    let dropped: std::collections::HashSet<usize> = mix
        .as_ref()
        .map(|m| m.dropped.iter().copied().collect())
        .unwrap_or_default();
    let write_types: Vec<Option<DType>> = types
        .iter()
        .enumerate()
        .map(|(i, &d)| (!dropped.contains(&i)).then_some(d))
        .collect();
    convert::write_file(
        &src,
        &tmp.0,
        meta,
        &write_types,
        |i| tensor_as(&src, input, i, types[i], weighted(i)),
        |d, n| progress(Stage::Quantize, d, n),
    )?;
    let quantize_seconds = t0.elapsed().as_secs_f64();

    // Measure.
    let t1 = Instant::now();
    let qfile = FlintFile::open(&tmp.0)?;
    let quant = Model::load(qfile.clone())?;
    let mut eval = eval::evaluate(
        &reference,
        cached,
        &quant,
        &tokens,
        token_source,
        opts.ctx,
        |d, n| progress(Stage::Measure, d, n),
    )?;
    eval::evaluate_media(&reference, &quant, &media, &mut eval, |d, n| {
        progress(Stage::MeasureMedia, d, n)
    })?;
    eval.media_skipped = media_skipped;
    drop(quant);
    let eval_seconds = t1.elapsed().as_secs_f64();

    let mut report = build_report(input, &src, &qfile, opts, &choices, eval);
    report.calibration = calib_path.display().to_string();
    report.imatrix = importance.as_ref().map(|_| {
        let (mut count, mut uniform) = (0, Vec::new());
        for (i, (t, c)) in src.tensors().iter().zip(&choices).enumerate() {
            if matches!(c.to, DType::Q8 | DType::Q4 | DType::Q2M) {
                match weighted(i) {
                    Some(_) => count += 1,
                    None => uniform.push(t.name.clone()),
                }
            }
        }
        report::Imatrix {
            text: imx_path.display().to_string(),
            tokens: imx_tokens.as_ref().map_or(tokens.len(), Vec::len),
            weighted: count,
            uniform,
        }
    });
    report.experts = mix;
    report.calibrate_seconds = calibrate_seconds;
    report.quantize_seconds = quantize_seconds;
    report.eval_seconds = eval_seconds;

    // Pass 2: the final file, with the report (and its own size) in the metadata.
    let mut meta = qfile.metadata().clone();
    let base = qfile.file_len() as u64 - qfile.header().meta_len;
    for _ in 0..8 {
        let value = serde_json::to_value(&report)
            .map_err(|e| QuantError::Options(format!("report: {e}")))?;
        if let Some(o) = meta.as_object_mut() {
            o.insert(KEY_QUANTIZATION.into(), value);
        }
        let len = serde_json::to_vec(&meta)
            .map_err(|e| QuantError::Options(format!("metadata: {e}")))?
            .len() as u64;
        if report.file_bytes == base + len {
            break;
        }
        report.file_bytes = base + len;
    }
    let qtypes: Vec<Option<DType>> = qfile.tensors().iter().map(|t| Some(t.dtype)).collect();
    let qtensors = qfile.tensors();
    convert::write_file(
        &qfile,
        output,
        meta,
        &qtypes,
        |i| Ok(Cow::Borrowed(qfile.tensor(&qtensors[i].name)?.bytes)),
        |d, n| progress(Stage::Write, d, n),
    )?;
    Ok(report)
}

fn build_report(
    input: &Path,
    src: &FlintFile,
    quant: &FlintFile,
    opts: &Options,
    choices: &[plan::Choice],
    eval: Eval,
) -> Report {
    let (mut matrix_bytes, mut matrix_params) = (0u64, 0u64);
    let mut matrix_types = BTreeMap::new();
    let mut kept = Vec::new();
    let mut tensors = BTreeMap::new();
    for (t, c) in src.tensors().iter().zip(choices) {
        // Pruned experts are not in the file.
        if !quant.has(&t.name) {
            continue;
        }
        let stored = convert::stored_type(c.to, &t.shape);
        tensors.insert(t.name.clone(), stored.name().to_string());
        if t.shape.len() != 2 {
            continue;
        }
        let bytes = stored
            .byte_size(&[t.shape[0] as u64, t.shape[1] as u64])
            .unwrap_or(0);
        matrix_bytes += bytes;
        matrix_params += t.numel() as u64;
        *matrix_types.entry(stored.name().to_string()).or_insert(0) += 1;
        if c.to != opts.weights {
            kept.push(report::Kept {
                name: t.name.clone(),
                dtype: c.to.name().to_string(),
                reason: c.reason.describe(t.shape[1]),
            });
        }
    }
    Report {
        version: report::REPORT_VERSION,
        weights: opts.weights.name().to_string(),
        keep: opts.keep.iter().map(|k| k.to_string()).collect(),
        source: report::Source {
            path: input.display().to_string(),
            weight_type: src
                .meta("general.weight_type")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            file_bytes: src.file_len() as u64,
        },
        file_bytes: quant.file_len() as u64,
        matrix_bytes,
        matrix_params,
        bits_per_weight: if matrix_params > 0 {
            8.0 * matrix_bytes as f64 / matrix_params as f64
        } else {
            0.0
        },
        matrix_types,
        kept,
        tensors,
        calibration: String::new(),
        imatrix: None,
        experts: None,
        calibrate_seconds: 0.0,
        quantize_seconds: 0.0,
        eval_seconds: 0.0,
        eval,
    }
}
