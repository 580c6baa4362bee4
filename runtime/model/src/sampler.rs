//! Token sampling: greedy, or temperature with top-k and top-p (nucleus) filtering, from a seeded generator so runs
//! repeat exactly; optionally under a grammar ([`flint_constrain::Constraint`]: every other token's logit is
//! masked before the draw), and keeping the mean probability of what it drew (a confidence for escalation).

use crate::ModelError;
use flint_constrain::Constraint;

/// Sampling settings. `temperature == 0` means greedy.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p` (1 = all).
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// A sampler with its own random state (cloning it forks the state, the constraint's too).
#[derive(Debug, Clone)]
pub struct Sampler {
    cfg: SamplerConfig,
    state: u64,
    constraint: Option<Constraint>,
    /// Sum of the drawn tokens' probabilities (softmax of the raw logits) and their count, when tracked.
    confidence: Option<(f64, usize)>,
    masked: Vec<f32>,
    /// Time spent in the constraint (masking and advancing).
    constraint_time: std::time::Duration,
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Sampler {
        let state = cfg.seed ^ 0x9E37_79B9_7F4A_7C15;
        Sampler {
            cfg,
            state,
            constraint: None,
            confidence: None,
            masked: Vec::new(),
            constraint_time: Default::default(),
        }
    }

    /// Draws only tokens `c` allows, and tells it each one drawn.
    pub fn with_constraint(mut self, c: Constraint) -> Sampler {
        self.constraint = Some(c);
        self
    }

    pub fn constraint(&self) -> Option<&Constraint> {
        self.constraint.as_ref()
    }

    /// Time the constraint took so far (masking the logits and advancing its state).
    pub fn constraint_time(&self) -> std::time::Duration {
        self.constraint_time
    }

    /// Keeps the mean probability the model gave the tokens drawn (see [`Sampler::mean_prob`]).
    pub fn track_confidence(mut self) -> Sampler {
        self.confidence = Some((0.0, 0));
        self
    }

    /// The mean probability of the tokens drawn so far, under the model's own distribution (temperature 1, no
    /// filters or mask), if tracked and anything was drawn.
    pub fn mean_prob(&self) -> Option<f64> {
        self.confidence
            .filter(|c| c.1 > 0)
            .map(|(sum, n)| sum / n as f64)
    }

    /// Tokens that entered the sequence without a draw (forced text): the constraint must accept them too.
    pub fn observe(&mut self, ids: &[u32]) -> Result<(), ModelError> {
        if let Some(c) = &mut self.constraint {
            for &id in ids {
                c.accept(id)
                    .map_err(|e| ModelError::Constraint(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Picks the next token from one row of logits: under the constraint, if any (an error when the grammar leaves
    /// no token), then tells the constraint.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32, ModelError> {
        let t = self.constraint.is_some().then(std::time::Instant::now);
        let id = match &mut self.constraint {
            Some(c) if c.is_active() => {
                let mut masked = std::mem::take(&mut self.masked);
                masked.clear();
                masked.extend_from_slice(logits);
                c.mask(&mut masked)
                    .map_err(|e| ModelError::Constraint(e.to_string()))?;
                let id = self.draw(&masked);
                self.masked = masked;
                id
            }
            _ => self.draw(logits),
        };
        if let Some(c) = &mut self.constraint {
            c.accept(id)
                .map_err(|e| ModelError::Constraint(e.to_string()))?;
        }
        if let Some(t) = t {
            self.constraint_time += t.elapsed();
        }
        if let Some((sum, n)) = &mut self.confidence {
            *sum += prob_of(logits, id as usize);
            *n += 1;
        }
        Ok(id)
    }

    /// SplitMix64: small, fast, and good enough to draw one token at a time.
    fn next_f32(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    fn draw(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.temperature <= 0.0 {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.cfg.temperature;
        if self.cfg.top_k == 0 && self.cfg.top_p >= 1.0 {
            // No filter: draw from the whole softmax in index order, without sorting the vocabulary.
            let mut w: Vec<f32> = logits.iter().map(|&l| l * inv_t).collect();
            flint_kernels::ops::softmax(&mut w, logits.len());
            let total: f32 = w.iter().sum();
            let mut r = self.next_f32() * total;
            for (i, &p) in w.iter().enumerate() {
                r -= p;
                if r <= 0.0 {
                    return i as u32;
                }
            }
            return argmax(logits);
        }
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l * inv_t))
            .collect();
        let desc = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if self.cfg.top_k > 0 && self.cfg.top_k < cand.len() {
            // Only the k best need ordering.
            cand.select_nth_unstable_by(self.cfg.top_k - 1, desc);
            cand.truncate(self.cfg.top_k);
        }
        cand.sort_by(desc);
        let m = cand[0].1;
        let mut sum = 0.0;
        for c in cand.iter_mut() {
            c.1 = (c.1 - m).exp();
            sum += c.1;
        }
        for c in cand.iter_mut() {
            c.1 /= sum;
        }
        if self.cfg.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = cand.len();
            for (i, c) in cand.iter().enumerate() {
                acc += c.1;
                if acc >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep);
        }
        let total: f32 = cand.iter().map(|c| c.1).sum();
        let mut r = self.next_f32() * total;
        for c in &cand {
            r -= c.1;
            if r <= 0.0 {
                return c.0;
            }
        }
        cand[cand.len() - 1].0
    }
}

/// softmax(logits)[i], computed stably.
fn prob_of(logits: &[f32], i: usize) -> f64 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !m.is_finite() {
        return 0.0;
    }
    let sum: f64 = logits.iter().map(|&l| ((l - m) as f64).exp()).sum();
    logits.get(i).map_or(0.0, |&l| ((l - m) as f64).exp() / sum)
}

/// Index of the largest value (the first on ties).
pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_filters() {
        let logits = [0.1, 3.0, 2.9, -1.0];
        assert_eq!(
            Sampler::new(SamplerConfig::default())
                .sample(&logits)
                .unwrap(),
            1
        );
        // top_k = 1 at any temperature is greedy.
        let mut s = Sampler::new(SamplerConfig {
            temperature: 5.0,
            top_k: 1,
            top_p: 1.0,
            seed: 3,
        });
        assert!((0..50).all(|_| s.sample(&logits).unwrap() == 1));
        // top_p small keeps only the best.
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.01,
            seed: 3,
        });
        assert!((0..50).all(|_| s.sample(&logits).unwrap() == 1));
        // A warm sampler visits both likely tokens, and the same seed repeats.
        let cfg = SamplerConfig {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            seed: 9,
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(cfg.clone());
            (0..200).map(|_| s.sample(&logits).unwrap()).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(cfg);
            (0..200).map(|_| s.sample(&logits).unwrap()).collect()
        };
        assert_eq!(a, b);
        assert!(a.contains(&1) && a.contains(&2) && !a.contains(&0) && !a.contains(&3));
    }
}
