//! The fixed header and the directory entry encoding (docs/FORMAT.md is the spec).

/// First 8 bytes of every `.flint` file. The CR LF catches text-mode transfers.
pub const MAGIC: [u8; 8] = *b"FLINT\0\r\n";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 80;
/// Alignment of every tensor's data.
pub const TENSOR_ALIGN: u64 = 64;
/// Alignment of the first tensor of a group (one expert) and of the data section.
pub const PAGE_ALIGN: u64 = 4096;

/// Caps that keep a hostile file from making the reader allocate without bound.
pub const MAX_TENSORS: u64 = 1 << 20;
pub const MAX_NAME_LEN: usize = 512;
pub const MAX_NDIM: usize = 8;
pub const MAX_METADATA_LEN: u64 = 256 << 20;

/// The decoded fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub flags: u32,
    pub data_off: u64,
    pub data_len: u64,
    pub meta_off: u64,
    pub meta_len: u64,
    pub dir_off: u64,
    pub dir_len: u64,
    pub tensor_count: u64,
    pub index_crc: u32,
}

impl Header {
    /// Encodes the header; `index_crc` is written as stored in `self`.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        let fields = [
            self.data_off,
            self.data_len,
            self.meta_off,
            self.meta_len,
            self.dir_off,
            self.dir_len,
            self.tensor_count,
        ];
        for (i, v) in fields.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        b[72..76].copy_from_slice(&self.index_crc.to_le_bytes());
        b
    }

    /// Decodes the header fields; the magic is checked by the caller so it can name the error.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        Header {
            version: u32_at(8),
            flags: u32_at(12),
            data_off: u64_at(16),
            data_len: u64_at(24),
            meta_off: u64_at(32),
            meta_len: u64_at(40),
            dir_off: u64_at(48),
            dir_len: u64_at(56),
            tensor_count: u64_at(64),
            index_crc: u32_at(72),
        }
    }
}

/// The checksum that covers the header (bytes 0..72), the metadata and the directory.
pub fn index_crc(header: &[u8], meta: &[u8], dir: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[..72]);
    h.update(meta);
    h.update(dir);
    h.finalize()
}

/// Rounds `x` up to a multiple of `align` (a power of two).
pub fn align_up(x: u64, align: u64) -> u64 {
    (x + align - 1) & !(align - 1)
}
