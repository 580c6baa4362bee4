//! `flint info --experts [--plot PNG]`: the routing statistics the quantizer recorded on its calibration set
//! (`quantization.eval.routing`), as a table per MoE layer and modality, and as a heat map (one row per layer, one
//! column per expert, brightness = the expert's share of the layer's routed rows; one panel per modality).

use anyhow::{bail, Context};
use flint_format::FlintFile;
use std::path::Path;

/// Pixels per heat-map cell side.
const CELL: usize = 12;
/// Rows of background between panels.
const GAP: usize = 6;

struct Panel {
    modality: String,
    /// Per layer: (decoder layer, rows routed, count per expert).
    layers: Vec<(u64, u64, Vec<u64>)>,
}

fn panels(f: &FlintFile, path: &Path) -> anyhow::Result<Vec<Panel>> {
    let Some(r) = f
        .meta("quantization")
        .and_then(|q| q.get("eval"))
        .and_then(|e| e.get("routing"))
    else {
        bail!(
            "{}: no routing statistics (quantization.eval.routing): only `flint-quantize quantize` of an MoE \
             model records them",
            path.display()
        );
    };
    let bad = || format!("{}: quantization.eval.routing is malformed", path.display());
    let mut out: Vec<Panel> = Vec::new();
    for l in r["layers"].as_array().with_context(bad)? {
        let layer = l["layer"].as_u64().with_context(bad)?;
        for (m, v) in l["modalities"].as_object().with_context(bad)? {
            let tokens = v["tokens"].as_u64().with_context(bad)?;
            let count: Vec<u64> = v["count"]
                .as_array()
                .with_context(bad)?
                .iter()
                .map(|c| c.as_u64().with_context(bad))
                .collect::<anyhow::Result<_>>()?;
            let p = match out.iter().position(|p| &p.modality == m) {
                Some(i) => &mut out[i],
                None => {
                    out.push(Panel {
                        modality: m.clone(),
                        layers: Vec::new(),
                    });
                    out.last_mut().expect("just pushed")
                }
            };
            p.layers.push((layer, tokens, count));
        }
    }
    Ok(out)
}

/// Per MoE layer, per expert: the share of the layer's calibration rows (all modalities) routed to it, for the
/// pinned paging policy.
pub fn routing_frequency(f: &FlintFile) -> anyhow::Result<Vec<Vec<f64>>> {
    let panels = panels(f, f.path())?;
    let mut out: Vec<(u64, u64, Vec<u64>)> = Vec::new();
    for p in &panels {
        for (layer, tokens, count) in &p.layers {
            match out.iter_mut().find(|o| o.0 == *layer) {
                Some(o) => {
                    o.1 += tokens;
                    o.2.iter_mut().zip(count).for_each(|(a, b)| *a += b);
                }
                None => out.push((*layer, *tokens, count.clone())),
            }
        }
    }
    out.sort_by_key(|o| o.0);
    Ok(out
        .into_iter()
        .map(|(_, t, c)| c.iter().map(|&n| n as f64 / t.max(1) as f64).collect())
        .collect())
}

pub fn run(path: &Path, plot: Option<&Path>) -> anyhow::Result<()> {
    let f = FlintFile::open(path)?;
    let panels = panels(&f, path)?;
    println!("routing on the calibration set ({}):", path.display());
    println!(
        "layer  modality  rows  experts used  top experts (share of routed slots)  never chosen"
    );
    for p in &panels {
        for (layer, tokens, count) in &p.layers {
            let slots: u64 = count.iter().sum();
            let mut order: Vec<usize> = (0..count.len()).collect();
            order.sort_by_key(|&e| std::cmp::Reverse(count[e]));
            let top: Vec<String> = order
                .iter()
                .take(3)
                .filter(|&&e| count[e] > 0)
                .map(|&e| format!("e{e} {:.1}%", 100.0 * count[e] as f64 / slots.max(1) as f64))
                .collect();
            let unused: Vec<String> = (0..count.len())
                .filter(|&e| count[e] == 0)
                .map(|e| e.to_string())
                .collect();
            println!(
                "{layer:<6} {:<9} {tokens:<5} {:>3}/{:<8} {:<36} {}",
                p.modality,
                count.len() - unused.len(),
                count.len(),
                top.join(", "),
                if unused.is_empty() {
                    "-".to_string()
                } else {
                    unused.join(" ")
                }
            );
        }
    }
    if let Some(out) = plot {
        let png = heat_map(&panels);
        crate::common::write_atomic(out, &flint_media::decode::encode_png(&png))?;
        println!("heat map: {}", out.display());
    }
    Ok(())
}

/// The panels stacked top to bottom: each cell's brightness is its expert's share of the layer's routed slots,
/// relative to the largest share in the panel (dark blue = never chosen, yellow = the most used).
fn heat_map(panels: &[Panel]) -> flint_media::RgbImage {
    let experts = panels
        .iter()
        .flat_map(|p| p.layers.iter().map(|l| l.2.len()))
        .max()
        .unwrap_or(1)
        .max(1);
    let rows: usize = panels.iter().map(|p| p.layers.len()).sum::<usize>().max(1);
    let (w, h) = (
        experts * CELL,
        rows * CELL + GAP * panels.len().saturating_sub(1),
    );
    let mut data = vec![255u8; w * h * 3];
    let mut y0 = 0;
    for p in panels {
        let share = |c: &Vec<u64>, e: usize| {
            let s: u64 = c.iter().sum();
            c.get(e).copied().unwrap_or(0) as f64 / s.max(1) as f64
        };
        let top = p
            .layers
            .iter()
            .flat_map(|l| (0..l.2.len()).map(move |e| share(&l.2, e)))
            .fold(0f64, f64::max)
            .max(1e-12);
        for (r, l) in p.layers.iter().enumerate() {
            for e in 0..experts {
                let t = (share(&l.2, e) / top).clamp(0.0, 1.0);
                // Dark blue (30, 30, 90) to yellow (250, 220, 40).
                let c = [
                    (30.0 + 220.0 * t) as u8,
                    (30.0 + 190.0 * t) as u8,
                    (90.0 - 50.0 * t) as u8,
                ];
                for y in 0..CELL {
                    for x in 0..CELL {
                        let i = ((y0 + r * CELL + y) * w + e * CELL + x) * 3;
                        data[i..i + 3].copy_from_slice(&c);
                    }
                }
            }
        }
        y0 += p.layers.len() * CELL + GAP;
    }
    flint_media::RgbImage {
        width: w,
        height: h,
        data,
    }
}
