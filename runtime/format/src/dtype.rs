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
    /// q8 with 8 rows interleaved: 8 rows x 32 values, 8 f16 scales, 272 bytes, 8.5 bits per weight.
    Q8X8,
    /// q4 with 8 rows interleaved: 8 rows x 32 values, 8 f16 scales, 144 bytes, 4.5 bits per weight.
    Q4X8,
    /// 32 uint2 values, an f16 scale and an f16 minimum: 12 bytes, 3.0 bits per weight.
    Q2M,
}

impl DType {
    /// All types, in id order.
    pub const ALL: [DType; 9] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::Q8,
        DType::Q4,
        DType::Q4M,
        DType::Q8X8,
        DType::Q4X8,
        DType::Q2M,
    ];

    /// The on-disk id.
    pub const fn id(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
            DType::Q8 => 16,
            DType::Q4 => 17,
            DType::Q4M => 18,
            DType::Q8X8 => 19,
            DType::Q4X8 => 20,
            DType::Q2M => 21,
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
            DType::Q8X8 => "q8x8",
            DType::Q4X8 => "q4x8",
            DType::Q2M => "q2m",
        }
    }

    /// Parses a name as printed by [`DType::name`].
    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Values per block along the last dimension (1 for plain types).
    pub const fn block_elems(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => 1,
            DType::Q8 | DType::Q4 | DType::Q4M | DType::Q8X8 | DType::Q4X8 | DType::Q2M => 32,
        }
    }

    /// Rows one block spans along the second-to-last dimension (8 for the interleaved types, else 1).
    pub const fn block_rows(self) -> usize {
        match self {
            DType::Q8X8 | DType::Q4X8 => 8,
            _ => 1,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Q8 => 34,
            DType::Q4 => 18,
            DType::Q4M => 20,
            DType::Q8X8 => 272,
            DType::Q4X8 => 144,
            DType::Q2M => 12,
        }
    }

    /// Values per block (elements along the row times the rows a block spans).
    pub const fn block_values(self) -> usize {
        self.block_elems() * self.block_rows()
    }

    /// Bits per weight.
    pub fn bits_per_weight(self) -> f64 {
        (self.block_bytes() * 8) as f64 / (self.block_elems() * self.block_rows()) as f64
    }

    /// Whether values are stored as quantized blocks.
    pub const fn is_quantized(self) -> bool {
        self.block_elems() > 1
    }

    /// Byte size of a tensor of this type and shape, or `None` if the shape does not fit the type (last dimension not
    /// a multiple of the block, or for interleaved types fewer than 2 dimensions or a second-to-last dimension not a
    /// multiple of the block's rows) or the size overflows.
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
        let br = self.block_rows() as u64;
        if br > 1 {
            let rows = *shape.len().checked_sub(2).and_then(|i| shape.get(i))?;
            if rows % br != 0 {
                return None;
            }
        }
        (n / (be * br)).checked_mul(self.block_bytes() as u64)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
