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
}

impl Fetch {
    pub fn key(&self) -> &str {
        match self {
            Fetch::Whole(k) | Fetch::Slice { key: k, .. } | Fetch::Unpermute { key: k, .. } => k,
        }
    }
}

/// Whether a tensor is a weight matrix (stored in the chosen dtype) or a small vector (always f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Matrix,
    Vector,
}

/// One output tensor.
#[derive(Clone, Debug)]
pub struct Item {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: Kind,
    pub fetch: Fetch,
    /// Starts a new paging group (the first tensor of an expert).
    pub begin_group: bool,
    /// Last tensor of a group.
    pub end_group: bool,
}

/// The ordered list of output tensors.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
}

impl Plan {
    pub fn matrix(&mut self, name: String, shape: [usize; 2], fetch: Fetch) {
        self.items.push(Item {
            name,
            shape: shape.to_vec(),
            kind: Kind::Matrix,
            fetch,
            begin_group: false,
            end_group: false,
        });
    }
    pub fn vector(&mut self, name: String, len: usize, fetch: Fetch) {
        self.items.push(Item {
            name,
            shape: vec![len],
            kind: Kind::Vector,
            fetch,
            begin_group: false,
            end_group: false,
        });
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

    /// Checks every item against the source: present, and of the expected shape.
    pub fn check(&self, src: &dyn TensorSource) -> Result<(), ImportError> {
        let path = src.path().display().to_string();
        for it in &self.items {
            let key = it.fetch.key();
            let found = src.shape(key).ok_or_else(|| ImportError::MissingTensor {
                path: path.clone(),
                name: key.to_string(),
            })?;
            let expected = match &it.fetch {
                Fetch::Whole(_) | Fetch::Unpermute { .. } => it.shape.clone(),
                Fetch::Slice { index, rows, .. } => {
                    // Only the row count of the 3-D tensor is implied by the slice; check the rest against it.
                    let ok = found.len() == 3
                        && *index < found[0]
                        && rows.end <= found[1]
                        && found[2] == it.shape[1];
                    if ok {
                        continue;
                    }
                    vec![index + 1, rows.end, it.shape[1]]
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
        Ok(())
    }
}

/// Reads plan items, keeping the last whole source tensor so that slicing a fused tensor per expert reads it once.
#[allow(missing_debug_implementations)]
pub struct Fetcher<'a> {
    src: &'a dyn TensorSource,
    last: RefCell<Option<(String, std::rc::Rc<Vec<f32>>)>>,
}

impl<'a> Fetcher<'a> {
    pub fn new(src: &'a dyn TensorSource) -> Self {
        Fetcher {
            src,
            last: RefCell::new(None),
        }
    }

    fn whole(&self, key: &str) -> Result<std::rc::Rc<Vec<f32>>, ImportError> {
        if let Some((k, v)) = self.last.borrow().as_ref() {
            if k == key {
                return Ok(v.clone());
            }
        }
        let v = std::rc::Rc::new(self.src.load_f32(key)?);
        *self.last.borrow_mut() = Some((key.to_string(), v.clone()));
        Ok(v)
    }

    /// The item's values, f32, in the item's shape.
    pub fn fetch(&self, it: &Item) -> Result<Vec<f32>, ImportError> {
        match &it.fetch {
            Fetch::Whole(k) => Ok(self.src.load_f32(k)?),
            Fetch::Slice { key, index, rows } => {
                let all = self.whole(key)?;
                let shape = self.src.shape(key).unwrap_or_default();
                let (r, c) = (shape[1], shape[2]);
                let base = index * r * c;
                Ok(all[base + rows.start * c..base + rows.end * c].to_vec())
            }
            Fetch::Unpermute { key, heads } => {
                let w = self.src.load_f32(key)?;
                Ok(unpermute_rows(&w, *heads, it.shape[0], it.shape[1]))
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
