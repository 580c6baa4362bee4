//! Reading a preprocessor_config.json: the file is capped in size and must be a JSON object; every field the
//! processors use is read through [`Fields`], which checks its JSON type and its range (caps in
//! [`crate::limits`]) and names the file and the key in any error. A missing field takes the class default of
//! transformers 5.23.

use crate::error::{read_capped, MediaError};
use crate::limits;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The fields of one preprocessor config, with the file they came from (and, for a nested object such as
/// `size`, the key path errors name: `size.longest_edge`).
#[derive(Debug)]
pub struct Fields {
    path: PathBuf,
    prefix: String,
    map: Map<String, Value>,
}

impl Fields {
    /// Reads and parses `path` (at most [`limits::MAX_CONFIG_BYTES`]).
    pub fn read(path: &Path) -> Result<Self, MediaError> {
        let bytes = read_capped(path, limits::MAX_CONFIG_BYTES)?;
        Self::parse(path, &bytes)
    }

    /// Parses config bytes; `path` names them in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, MediaError> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| MediaError::config(path, "(file)", format!("not valid JSON: {e}")))?;
        let Value::Object(map) = v else {
            return Err(MediaError::config(path, "(file)", "not a JSON object"));
        };
        Ok(Fields {
            path: path.to_path_buf(),
            prefix: String::new(),
            map,
        })
    }

    /// The nested object at `key` (`size`, ...) as fields of its own, `None` if absent or null.
    pub fn object(&self, key: &str) -> Result<Option<Fields>, MediaError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields {
                path: self.path.clone(),
                prefix: format!("{}{key}.", self.prefix),
                map: map.clone(),
            })),
            Some(v) => Err(self.err(key, format!("{v} is not a JSON object"))),
        }
    }

    /// Whether `key` is present and not null.
    pub fn has(&self, key: &str) -> bool {
        !matches!(self.map.get(key), None | Some(Value::Null))
    }

    /// The file these fields came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error about `field` (named with this object's key path).
    pub fn err(&self, field: &str, why: impl Into<String>) -> MediaError {
        MediaError::config(&self.path, &format!("{}{field}", self.prefix), why)
    }

    /// The `type` key (`image_processor_type`, ...) if present, which must then equal `want`.
    pub fn expect_type(&self, key: &str, want: &str) -> Result<(), MediaError> {
        self.expect_type_of(key, &[want])
    }

    /// The `type` key if present, which must then be one of `wants`.
    pub fn expect_type_of(&self, key: &str, wants: &[&str]) -> Result<(), MediaError> {
        match self.map.get(key) {
            None => Ok(()),
            Some(Value::String(s)) if wants.contains(&s.as_str()) => Ok(()),
            Some(v) if wants.len() == 1 => Err(self.err(key, format!("{v} is not {:?}", wants[0]))),
            Some(v) => Err(self.err(key, format!("{v} is not one of {wants:?}"))),
        }
    }

    /// An integer in `min..=max`.
    pub fn int(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, MediaError> {
        let v = match self.map.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| self.err(key, format!("{n} is not a non-negative integer")))?,
            Some(v) => return Err(self.err(key, format!("{v} is not an integer"))),
        };
        if v < min || v > max {
            return Err(self.err(key, format!("{v} is outside {min}..={max}")));
        }
        Ok(v)
    }

    /// A finite number in `min..=max`.
    pub fn float(&self, key: &str, default: f64, min: f64, max: f64) -> Result<f64, MediaError> {
        let v = match self.map.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| self.err(key, format!("{n} is not a number")))?,
            Some(v) => return Err(self.err(key, format!("{v} is not a number"))),
        };
        if !(v.is_finite() && v >= min && v <= max) {
            return Err(self.err(key, format!("{v} is outside {min}..={max}")));
        }
        Ok(v)
    }

    /// A boolean.
    pub fn boolean(&self, key: &str, default: bool) -> Result<bool, MediaError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(key, format!("{v} is not true or false"))),
        }
    }

    /// A string.
    pub fn string(&self, key: &str, default: &str) -> Result<String, MediaError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(s)) if s.len() <= 256 => Ok(s.clone()),
            Some(Value::String(_)) => Err(self.err(key, "longer than 256 bytes")),
            Some(v) => Err(self.err(key, format!("{v} is not a string"))),
        }
    }

    /// Three per-channel values (a list of three numbers, or one number for all channels), each in
    /// `min..=max`.
    pub fn triple(
        &self,
        key: &str,
        default: [f64; 3],
        min: f64,
        max: f64,
    ) -> Result<[f64; 3], MediaError> {
        let vals = match self.map.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => [n.as_f64().unwrap_or(f64::NAN); 3],
            Some(Value::Array(a)) if a.len() == 3 => {
                let mut out = [0.0; 3];
                for (o, v) in out.iter_mut().zip(a) {
                    *o = v
                        .as_f64()
                        .ok_or_else(|| self.err(key, format!("{v} is not a number")))?;
                }
                out
            }
            Some(v) => {
                return Err(self.err(key, format!("{v} is not a number or a list of 3 numbers")))
            }
        };
        for v in vals {
            if !(v.is_finite() && v >= min && v <= max) {
                return Err(self.err(key, format!("{v} is outside {min}..={max}")));
            }
        }
        Ok(vals)
    }

    /// `sampling_rate`, within the accepted rates.
    pub fn sampling_rate(&self, default: u32) -> Result<u32, MediaError> {
        let r = self.int(
            "sampling_rate",
            u64::from(default),
            u64::from(limits::MIN_SAMPLE_RATE),
            u64::from(limits::MAX_SAMPLE_RATE),
        )?;
        u32::try_from(r).map_err(|_| self.err("sampling_rate", "out of range"))
    }
}

/// `usize` from a value already checked against a cap far below `usize::MAX` on every supported target.
/// `patch_size`, `temporal_patch_size` and `merge_size` of an image processor's config (defaults 14, 2, 2).
pub(crate) fn patch_geometry(f: &Fields) -> Result<(usize, usize, usize), MediaError> {
    use crate::limits;
    Ok((
        to_usize(f.int("patch_size", 14, 1, limits::MAX_PATCH)?),
        to_usize(f.int("temporal_patch_size", 2, 1, limits::MAX_TEMPORAL_PATCH)?),
        to_usize(f.int("merge_size", 2, 1, limits::MAX_MERGE)?),
    ))
}

pub(crate) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}
