//! An import plan: for each tensor of the `.flint` file, where its values come from and what shape they must have.
//! The plan is checked against the source before anything is written, so a missing tensor or a wrong shape is
//! reported by name, with the expected and the found shape, before any work is done.

use super::source::TensorSource;
use crate::ImportError;
use std::cell::RefCell;
use std::ops::Range;

/// How to get one output tensor from the source.
#[derive(Clone, Debug)]
pub enum Fetch {
    /// The whole source tensor, same shape.
    Whole(String),
    /// Rows `rows` of entry `index` of a 3-D source tensor `[n, R, C]` (fused experts).
    Slice {
        key: String,
        index: usize,
        rows: Range<usize>,
    },
    /// A source tensor stored with llama.cpp's q/k row permutation, undone for `heads` heads.
    Unpermute { key: String, heads: usize },
    /// Rows `rows` of a 2-D source `[R, C]`, or entries `rows` of a 1-D one (a fused q/k/v projection split).
    Rows { key: String, rows: Range<usize> },
    /// The whole source with every dimension after the first folded into one: `[d0, d1 · d2 · …]` (a
    /// convolution kernel over whole patches, read as a matrix).
    Flatten(String),
}

impl Fetch {
    pub fn key(&self) -> &str {
        match self {
            Fetch::Whole(k)
            | Fetch::Flatten(k)
            | Fetch::Slice { key: k, .. }
            | Fetch::Unpermute { key: k, .. }
            | Fetch::Rows { key: k, .. } => k,
        }
    }
}

/// Whether a tensor is a weight matrix (stored in the chosen dtype) or a small vector (always f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Matrix,
    Vector,
    /// A matrix the source model keeps in f32 whatever its dtype (MuseSpark's router): always f32.
    F32Matrix,
}

impl Kind {
    /// Whether the tensor is written as f32 whatever the import dtype.
    pub fn always_f32(self) -> bool {
        self != Kind::Matrix
    }
}

/// An elementwise function applied to a source tensor's values at write time, folding a checkpoint's
/// reparametrisation into the stored tensor.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Transform {
    /// The values as they are.
    #[default]
    Identity,
    /// `1 + w`, in f32 (the weight of a norm that scales by `1 + w`, as torch computes it for an f32 weight).
    OnePlus,
    /// A residual gate's `alpha`: with `w = g / temperature`, `sqrt(max(sigmoid(-w) * (1 + sigmoid(w)), 1e-3))`;
    /// computed in f64, rounded to f32.
    GateAlpha { temperature: f64 },
    /// A residual gate's `beta`: `sigmoid(g / temperature)`; computed in f64, rounded to f32.
    GateBeta { temperature: f64 },
}

impl Transform {
    /// Applies the transform in place.
    pub fn apply(self, v: &mut [f32]) {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        for x in v {
            *x = match self {
                Transform::Identity => *x,
                Transform::OnePlus => 1.0 + *x,
                Transform::GateAlpha { temperature } => {
                    let w = f64::from(*x) / temperature;
                    (sigmoid(-w) * (1.0 + sigmoid(w))).max(1e-3).sqrt() as f32
                }
                Transform::GateBeta { temperature } => sigmoid(f64::from(*x) / temperature) as f32,
            };
        }
    }
}

/// One output tensor.
#[derive(Clone, Debug)]
pub struct Item {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: Kind,
    pub fetch: Fetch,
    /// Applied to the fetched values before they are written.
    pub transform: Transform,
    /// Starts a new paging group (the first tensor of an expert).
    pub begin_group: bool,
    /// Last tensor of a group.
    pub end_group: bool,
    /// Columns `cols` of a source matrix `of` columns wide (a tower matrix split at a block boundary,
    /// [`Plan::split_tails`]); `shape` is the part's.
    pub split: Option<Split>,
}

/// Part of a split matrix: columns `cols` of the `of` the source has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub cols: Range<usize>,
    pub of: usize,
}

impl Item {
    /// The shape the fetch gives: the item's, or the whole matrix's when the item is part of one.
    fn fetched_shape(&self) -> Vec<usize> {
        match &self.split {
            Some(s) => vec![self.shape[0], s.of],
            None => self.shape.clone(),
        }
    }
}

/// The ordered list of output tensors.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    /// When set, `check` also requires every source tensor to be read by an item or to start with one of these
    /// prefixes (parts of the checkpoint deliberately not imported), so that nothing is dropped unnoticed.
    pub skip_prefixes: Option<Vec<String>>,
}

impl Plan {
    fn push(&mut self, name: String, shape: Vec<usize>, kind: Kind, fetch: Fetch, t: Transform) {
        self.items.push(Item {
            name,
            shape,
            kind,
            fetch,
            transform: t,
            begin_group: false,
            end_group: false,
            split: None,
        });
    }
    pub fn matrix(&mut self, name: String, shape: [usize; 2], fetch: Fetch) {
        self.push(
            name,
            shape.to_vec(),
            Kind::Matrix,
            fetch,
            Transform::Identity,
        );
    }
    /// A matrix always stored as f32.
    pub fn f32_matrix(&mut self, name: String, shape: [usize; 2], fetch: Fetch) {
        self.f32_tensor(name, &shape, fetch);
    }
    /// A tensor of any rank in the source's own shape, always stored as f32 (a convolution kernel).
    pub fn f32_tensor(&mut self, name: String, shape: &[usize], fetch: Fetch) {
        self.push(
            name,
            shape.to_vec(),
            Kind::F32Matrix,
            fetch,
            Transform::Identity,
        );
    }
    pub fn vector(&mut self, name: String, len: usize, fetch: Fetch) {
        self.vector_with(name, len, fetch, Transform::Identity);
    }
    /// A vector whose values go through `t`.
    pub fn vector_with(&mut self, name: String, len: usize, fetch: Fetch, t: Transform) {
        self.push(name, vec![len], Kind::Vector, fetch, t);
    }
    /// Marks the items added by `f` as one paging group.
    pub fn group(&mut self, f: impl FnOnce(&mut Plan)) {
        let start = self.items.len();
        f(self);
        if self.items.len() > start {
            self.items[start].begin_group = true;
            let last = self.items.len() - 1;
            self.items[last].end_group = true;
        }
    }

    /// Stores each matrix `wants(name, cols)` picks as two items: `name` with the first `cols - cols % 32` columns
    /// and `tail(name)` with the rest (`flint_model::config::vision::names::splits_tail`).
    pub fn split_tails(
        &mut self,
        wants: impl Fn(&str, usize) -> bool,
        tail: impl Fn(&str) -> String,
    ) {
        let mut out = Vec::with_capacity(self.items.len());
        for it in std::mem::take(&mut self.items) {
            let (rows, cols) = match it.shape[..] {
                [r, c] if it.kind == Kind::Matrix && it.split.is_none() && wants(&it.name, c) => {
                    (r, c)
                }
                _ => {
                    out.push(it);
                    continue;
                }
            };
            let main = cols - cols % 32;
            let mut rest = it.clone();
            rest.name = tail(&it.name);
            rest.shape = vec![rows, cols - main];
            rest.split = Some(Split {
                cols: main..cols,
                of: cols,
            });
            rest.begin_group = false;
            let mut head = it;
            head.shape = vec![rows, main];
            head.split = Some(Split {
                cols: 0..main,
                of: cols,
            });
            rest.end_group = std::mem::take(&mut head.end_group);
            out.push(head);
            out.push(rest);
        }
        self.items = out;
    }

    /// Checks every item against the source: present, and of the expected shape.
    pub fn check(&self, src: &dyn TensorSource) -> Result<(), ImportError> {
        let path = src.path().display().to_string();
        for it in &self.items {
            let key = it.fetch.key();
            let shape = it.fetched_shape();
            let found = src.shape(key).ok_or_else(|| ImportError::MissingTensor {
                path: path.clone(),
                name: key.to_string(),
            })?;
            let expected = match &it.fetch {
                Fetch::Whole(_) | Fetch::Unpermute { .. } => shape.clone(),
                Fetch::Slice { index, rows, .. } => {
                    // Only the row count of the 3-D tensor is implied by the slice; check the rest against it.
                    let ok = found.len() == 3
                        && *index < found[0]
                        && rows.end <= found[1]
                        && found[2] == shape[1];
                    if ok {
                        continue;
                    }
                    vec![index + 1, rows.end, shape[1]]
                }
                Fetch::Rows { rows, .. } => {
                    let ok = rows.end <= found.first().copied().unwrap_or(0)
                        && rows.len() == shape[0]
                        && found.get(1) == shape.get(1)
                        && found.len() == shape.len();
                    if ok {
                        continue;
                    }
                    let mut want = shape.clone();
                    want[0] = rows.end;
                    want
                }
                Fetch::Flatten(_) => {
                    let rest = found.get(1..).map(|r| {
                        r.iter()
                            .try_fold(1usize, |a, &d| a.checked_mul(d))
                            .unwrap_or(usize::MAX)
                    });
                    if found.len() >= 2 && found[0] == shape[0] && rest == shape.get(1).copied() {
                        continue;
                    }
                    shape.clone()
                }
            };
            if found != expected {
                return Err(ImportError::Shape {
                    path: path.clone(),
                    name: key.to_string(),
                    expected,
                    found,
                });
            }
        }
        if let Some(skip) = &self.skip_prefixes {
            let used: std::collections::HashSet<&str> =
                self.items.iter().map(|it| it.fetch.key()).collect();
            let mut names = src.names();
            names.sort();
            if let Some(n) = names.iter().find(|n| {
                !used.contains(n.as_str()) && !skip.iter().any(|p| n.starts_with(p.as_str()))
            }) {
                return Err(ImportError::UnusedTensor {
                    path,
                    name: n.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Reads plan items, keeping the last two whole source tensors so that slicing fused tensors per expert reads each
/// once.
#[allow(missing_debug_implementations)]
pub struct Fetcher<'a> {
    src: &'a dyn TensorSource,
    /// The last [`CACHED`] whole 3-D sources read, newest last: an expert's gate, up and down come from two
    /// fused tensors in turn, so one entry would reload both for every expert.
    last: RefCell<Vec<(String, std::rc::Rc<Vec<f32>>)>>,
}

/// Fused source tensors a [`Fetcher`] keeps (gate_up and down of one layer).
const CACHED: usize = 2;

impl<'a> Fetcher<'a> {
    pub fn new(src: &'a dyn TensorSource) -> Self {
        Fetcher {
            src,
            last: RefCell::new(Vec::new()),
        }
    }

    fn whole(&self, key: &str) -> Result<std::rc::Rc<Vec<f32>>, ImportError> {
        if let Some((_, v)) = self.last.borrow().iter().find(|(k, _)| k == key) {
            return Ok(v.clone());
        }
        let v = std::rc::Rc::new(self.src.load_f32(key)?);
        let mut last = self.last.borrow_mut();
        if last.len() == CACHED {
            last.remove(0);
        }
        last.push((key.to_string(), v.clone()));
        Ok(v)
    }

    /// The item's values, f32, in the item's shape.
    pub fn fetch(&self, it: &Item) -> Result<Vec<f32>, ImportError> {
        let mut v = self.fetch_raw(it)?;
        if let Some(s) = &it.split {
            v = v
                .chunks_exact(s.of)
                .flat_map(|row| row[s.cols.clone()].iter().copied())
                .collect();
        }
        it.transform.apply(&mut v);
        Ok(v)
    }

    fn fetch_raw(&self, it: &Item) -> Result<Vec<f32>, ImportError> {
        match &it.fetch {
            Fetch::Whole(k) => Ok(self.src.load_f32(k)?),
            Fetch::Slice { key, index, rows } => {
                let all = self.whole(key)?;
                let shape = self.src.shape(key).unwrap_or_default();
                let (r, c) = (shape[1], shape[2]);
                let base = index * r * c;
                Ok(all[base + rows.start * c..base + rows.end * c].to_vec())
            }
            Fetch::Flatten(k) => Ok(self.src.load_f32(k)?),
            Fetch::Rows { key, rows } => {
                let all = self.whole(key)?;
                let cols = self
                    .src
                    .shape(key)
                    .and_then(|s| s.get(1).copied())
                    .unwrap_or(1);
                Ok(all[rows.start * cols..rows.end * cols].to_vec())
            }
            Fetch::Unpermute { key, heads } => {
                let w = self.src.load_f32(key)?;
                let shape = it.fetched_shape();
                Ok(unpermute_rows(&w, *heads, shape[0], shape[1]))
            }
        }
    }
}

/// Undoes llama.cpp's `permute` of q/k rows: within each head, GGUF stores the rows as (half, 2) interleaved pairs
/// where transformers stores (2, half) — the first half of the head then the second half.
pub fn unpermute_rows(w: &[f32], heads: usize, rows: usize, cols: usize) -> Vec<f32> {
    let hd = rows / heads;
    let half = hd / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                // GGUF row (i, j) came from transformers row (j, i).
                let src = h * hd + i * 2 + j;
                let dst = h * hd + j * half + i;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}
