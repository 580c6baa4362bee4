//! Routing statistics of an MoE model on the calibration set: per MoE layer and expert, how often the reference
//! model routed a token to it and with what mean gate weight, per modality (text tokens, image rows, audio rows).
//! Stored in the report (`eval.routing`); `flint info --experts` shows them. The per-expert precision and pruning
//! of the distilled experts read them too.

use flint_model::Trace;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One modality's routing in one layer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModalityRouting {
    /// Rows routed in this layer.
    pub tokens: u64,
    /// Per expert: rows routed to it.
    pub count: Vec<u64>,
    /// Per expert: mean gate weight over the rows routed to it (0 where none was).
    pub mean_weight: Vec<f64>,
}

/// One MoE layer's routing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRouting {
    /// The decoder layer.
    pub layer: usize,
    pub experts: usize,
    /// By modality: `text`, `image`, `audio`.
    pub modalities: BTreeMap<String, ModalityRouting>,
}

/// Routing of every MoE layer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    pub layers: Vec<LayerRouting>,
}

/// One modality's sums in one layer: rows, count per expert, weight sum per expert.
type Sums = (u64, Vec<u64>, Vec<f64>);

/// Sums while the reference runs.
#[derive(Clone, Debug, Default)]
pub struct RoutingAcc {
    /// Per MoE layer (in trace order), per modality.
    layers: Vec<BTreeMap<&'static str, Sums>>,
}

impl RoutingAcc {
    /// Adds a traced run: `modality(row)` names each row's modality.
    pub fn add(&mut self, trace: &Trace, modality: impl Fn(usize) -> &'static str) {
        if self.layers.len() < trace.routes.len() {
            self.layers.resize_with(trace.routes.len(), BTreeMap::new);
        }
        for (l, (routes, logits)) in trace.routes.iter().zip(&trace.router_logits).enumerate() {
            let experts = logits.len() / routes.len().max(1);
            for (row, choice) in routes.iter().enumerate() {
                let m = self.layers[l]
                    .entry(modality(row))
                    .or_insert_with(|| (0, vec![0; experts], vec![0.0; experts]));
                m.0 += 1;
                for &(e, w) in choice {
                    if e < m.1.len() {
                        m.1[e] += 1;
                        m.2[e] += w as f64;
                    }
                }
            }
        }
    }

    /// Adds another accumulator's sums (same model).
    pub fn merge(&mut self, o: RoutingAcc) {
        if self.layers.len() < o.layers.len() {
            self.layers.resize_with(o.layers.len(), BTreeMap::new);
        }
        for (mine, theirs) in self.layers.iter_mut().zip(o.layers) {
            for (k, (t, c, w)) in theirs {
                let m = mine
                    .entry(k)
                    .or_insert_with(|| (0, vec![0; c.len()], vec![0.0; c.len()]));
                m.0 += t;
                m.1.iter_mut().zip(&c).for_each(|(a, b)| *a += b);
                m.2.iter_mut().zip(&w).for_each(|(a, b)| *a += b);
            }
        }
    }

    /// The statistics, with each MoE layer's decoder index from `moe_layers` (the model's MoE layers in order).
    pub fn finish(&self, moe_layers: &[usize]) -> Option<Routing> {
        if self.layers.is_empty() {
            return None;
        }
        let layers = self
            .layers
            .iter()
            .zip(moe_layers)
            .map(|(mods, &layer)| LayerRouting {
                layer,
                experts: mods.values().map(|m| m.1.len()).max().unwrap_or(0),
                modalities: mods
                    .iter()
                    .map(|(name, (tokens, count, wsum))| {
                        (
                            name.to_string(),
                            ModalityRouting {
                                tokens: *tokens,
                                count: count.clone(),
                                mean_weight: count
                                    .iter()
                                    .zip(wsum)
                                    .map(|(&c, &w)| if c > 0 { w / c as f64 } else { 0.0 })
                                    .collect(),
                            },
                        )
                    })
                    .collect(),
            })
            .collect();
        Some(Routing { layers })
    }
}
