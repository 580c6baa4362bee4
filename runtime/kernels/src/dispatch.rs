//! CPU feature detection, done once and cached, and the `FLINT_KERNELS` override.

use std::fmt;
use std::sync::OnceLock;

/// A kernel family. Each is a superset of the features of the ones listed before it on the same architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, the reference for every other path.
    Scalar,
    /// x86_64 AVX2 + FMA + F16C.
    Avx2,
    /// x86_64 AVX2 + FMA + F16C with AVX-512 VNNI on 256-bit registers (`vpdpbusd` ymm, AVX512VL): the AVX2
    /// kernels, except the interleaved q8x8/q4x8 matmuls, whose byte products add up in one instruction.
    Avx512Vnni,
    /// aarch64 Advanced SIMD.
    Neon,
    /// aarch64 NEON + SDOT (ARMv8.2 dotprod).
    Dotprod,
    /// aarch64 NEON + SDOT + SMMLA (ARMv8.6 i8mm). Matvec uses the dotprod kernels; matmul uses SMMLA.
    I8mm,
}

impl Isa {
    /// All families, in the order of preference (best last).
    pub const ALL: [Isa; 6] = [
        Isa::Scalar,
        Isa::Avx2,
        Isa::Avx512Vnni,
        Isa::Neon,
        Isa::Dotprod,
        Isa::I8mm,
    ];

    /// The name accepted by `FLINT_KERNELS`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Neon => "neon",
            Isa::Dotprod => "dotprod",
            Isa::I8mm => "i8mm",
        }
    }

    /// Parses a name as printed by [`Isa::name`].
    pub fn from_name(s: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == s)
    }

    /// Whether this CPU can run the family (checked at run time).
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.available()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::Dotprod => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::I8mm => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
                    && std::arch::is_aarch64_feature_detected!("i8mm")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Whether the family runs the AVX2 kernels (AVX2 itself, or a superset of it).
    pub fn has_avx2(self) -> bool {
        matches!(self, Isa::Avx2 | Isa::Avx512Vnni)
    }

    /// The best family this CPU runs.
    pub fn detect() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|i| i.available())
            .unwrap_or(Isa::Scalar)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why `FLINT_KERNELS` could not be honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectError {
    /// The value is not a known family name.
    Unknown(String),
    /// The family exists but this CPU (or build target) lacks it.
    Unavailable(Isa),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::Unknown(s) => write!(
                f,
                "FLINT_KERNELS={s:?} is not one of scalar, avx2, avx512vnni, neon, dotprod, i8mm"
            ),
            SelectError::Unavailable(i) => {
                write!(f, "FLINT_KERNELS={i}: this CPU or build target lacks {i}")
            }
        }
    }
}

impl std::error::Error for SelectError {}

/// The family named by `FLINT_KERNELS`, or the detected best one when it is unset or empty.
pub fn select_from_env() -> Result<Isa, SelectError> {
    match std::env::var("FLINT_KERNELS") {
        Ok(s) if !s.is_empty() => {
            let isa = Isa::from_name(&s).ok_or(SelectError::Unknown(s))?;
            if isa.available() {
                Ok(isa)
            } else {
                Err(SelectError::Unavailable(isa))
            }
        }
        _ => Ok(Isa::detect()),
    }
}

static ACTIVE: OnceLock<Isa> = OnceLock::new();

/// The family used by [`crate::matvec`] and friends, chosen once per process. A bad `FLINT_KERNELS` prints a
/// warning to stderr and falls back to detection; call [`select_from_env`] first to turn that into an error.
pub fn active_isa() -> Isa {
    *ACTIVE.get_or_init(|| match select_from_env() {
        Ok(i) => i,
        Err(e) => {
            let i = Isa::detect();
            eprintln!("warning: {e}; using {i}");
            i
        }
    })
}

/// Features found and the active family, for `flint info --cpu`.
pub fn cpu_report() -> String {
    let mut feats: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        for (n, b) in [
            ("sse4.1", has!("sse4.1")),
            ("avx", has!("avx")),
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("f16c", has!("f16c")),
            ("avx512f", has!("avx512f")),
        ] {
            if b {
                feats.push(n);
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        for (n, b) in [
            ("neon", has!("neon")),
            ("fp16", has!("fp16")),
            ("dotprod", has!("dotprod")),
            ("i8mm", has!("i8mm")),
            ("sve", has!("sve")),
            ("sve2", has!("sve2")),
        ] {
            if b {
                feats.push(n);
            }
        }
    }
    let avail: Vec<&str> = Isa::ALL
        .into_iter()
        .filter(|i| i.available())
        .map(Isa::name)
        .collect();
    format!(
        "arch: {}\nfeatures: {}\nkernel paths available: {}\nactive kernel path: {}\nthreads: {}",
        std::env::consts::ARCH,
        if feats.is_empty() {
            "-".to_string()
        } else {
            feats.join(" ")
        },
        avail.join(" "),
        active_isa(),
        crate::threads(),
    )
}
