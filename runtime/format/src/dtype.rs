//! Element types a tensor may hold, with their on-disk ids and sizes.
//!
//! Ids never change once released: new types take new ids.

/// The type of a tensor's elements. Quantized types store blocks of `block_elems()` values in `block_bytes()` bytes
/// along the last dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    F32,
    F16,
    BF16,
    /// 32 int8 values and an f16 scale: 34 bytes, 8.5 bits per weight.
    Q8,
    /// 32 int4 values (offset 8) and an f16 scale: 18 bytes, 4.5 bits per weight.
    Q4,
    /// 32 uint4 values, an f16 scale and an f16 minimum: 20 bytes, 5.0 bits per weight.
    Q4M,
}

impl DType {
    /// All types, in id order.
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::Q8,
        DType::Q4,
        DType::Q4M,
    ];

    /// The on-disk id.
    pub fn id(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
            DType::Q8 => 16,
            DType::Q4 => 17,
            DType::Q4M => 18,
        }
    }

    /// The type with this on-disk id, if any.
    pub fn from_id(id: u8) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.id() == id)
    }

    /// Lower-case name used in metadata, CLIs and error messages.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::Q8 => "q8",
            DType::Q4 => "q4",
            DType::Q4M => "q4m",
        }
    }

    /// Parses a name as printed by [`DType::name`].
    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Values per block along the last dimension (1 for plain types).
    pub fn block_elems(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => 1,
            DType::Q8 | DType::Q4 | DType::Q4M => 32,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Q8 => 34,
            DType::Q4 => 18,
            DType::Q4M => 20,
        }
    }

    /// Bits per weight.
    pub fn bits_per_weight(self) -> f64 {
        (self.block_bytes() * 8) as f64 / self.block_elems() as f64
    }

    /// Whether values are stored as quantized blocks.
    pub fn is_quantized(self) -> bool {
        self.block_elems() > 1
    }

    /// Byte size of a tensor of this type and shape, or `None` if the shape does not fit the type (last dimension not
    /// a multiple of the block) or the size overflows.
    pub fn byte_size(self, shape: &[u64]) -> Option<u64> {
        let mut n: u64 = 1;
        for &d in shape {
            n = n.checked_mul(d)?;
        }
        let be = self.block_elems() as u64;
        if be > 1 {
            let last = *shape.last()?;
            if last % be != 0 {
                return None;
            }
        }
        (n / be).checked_mul(self.block_bytes() as u64)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
