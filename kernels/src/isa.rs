//! Which instruction set the kernel table is built for, and whether this CPU can run it.
//!
//! Detection happens once (in `QuantKernels::detect`), never inside a kernel. With the `std`
//! feature the CPU is asked at run time; without it only what the binary was compiled for
//! (`-C target-feature`) counts as supported, so a `no_std` build is never handed code it cannot run.

use core::fmt;

/// An instruction-set level for the kernel table. `Scalar` is a real backend that tests and
/// benches select on purpose, not only a fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable reference kernels (`quant::reference`).
    Scalar,
    /// x86-64 AVX2 + FMA + F16C (Haswell and later).
    Avx2,
    /// x86-64 AVX-512 F + BW + VL on top of `Avx2`; VNNI (`vpdpbusd`) is used where present.
    Avx512,
    /// AArch64 Advanced SIMD; the dotprod extension (`sdot`, ARMv8.2+) is used where present.
    Neon,
}

/// A requested ISA this CPU (or this build) cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedIsa(pub Isa);

impl fmt::Display for UnsupportedIsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction set {} is not supported by this CPU or build", self.0.name())
    }
}

/// A name that is not one of `Isa::NAMES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownIsaName;

impl fmt::Display for UnknownIsaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown instruction set name (expected one of: scalar, avx2, avx512, neon)")
    }
}

impl Isa {
    /// Every level, slowest first; tests iterate over it and skip what the CPU lacks.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The lower-case name used by `FOVEA_ISA` and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a name as written in `FOVEA_ISA` (case-insensitive, surrounding spaces ignored).
    pub fn from_name(name: &str) -> Result<Isa, UnknownIsaName> {
        let name = name.trim();
        Isa::ALL.into_iter().find(|isa| isa.name().eq_ignore_ascii_case(name)).ok_or(UnknownIsaName)
    }

    /// The best level this CPU can run.
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon].into_iter().find(|isa| isa.is_supported()).unwrap_or(Isa::Scalar)
    }

    /// Whether kernels of this level may run here. Every function behind the level's
    /// `#[target_feature]` relies on this check having passed.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => x86_features::avx2(),
            Isa::Avx512 => x86_features::avx2() && x86_features::avx512(),
            Isa::Neon => arm_features::neon(),
        }
    }

    /// `Ok(self)` when supported, so a requested level fails with an error instead of a crash.
    pub fn require(self) -> Result<Isa, UnsupportedIsa> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(UnsupportedIsa(self))
        }
    }
}

impl core::str::FromStr for Isa {
    type Err = UnknownIsaName;

    /// Same as [`Isa::from_name`], so `"avx2".parse::<Isa>()` works.
    fn from_str(name: &str) -> Result<Isa, UnknownIsaName> {
        Isa::from_name(name)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Feature queries, each answering for the exact `#[target_feature]` set the kernels enable.
pub(crate) mod x86_features {
    /// AVX2 + FMA + F16C, what `x86::avx2` enables.
    pub fn avx2() -> bool {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
        }
        #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
        {
            cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c"))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// AVX-512 F + BW + VL, what `x86::avx512` enables (on top of `avx2()`).
    pub fn avx512() -> bool {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
        }
        #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
        {
            cfg!(all(target_feature = "avx512f", target_feature = "avx512bw", target_feature = "avx512vl"))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// AVX-512 VNNI (`vpdpbusd`), used by the `_vnni` variants in `x86::avx512`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the x86 tables ask
    pub fn avx512_vnni() -> bool {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            avx512() && std::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
        {
            avx512() && cfg!(target_feature = "avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// Feature queries for AArch64, each answering for the exact `#[target_feature]` set the
/// kernels in `arm::neon` enable.
pub(crate) mod arm_features {
    /// Advanced SIMD, what the plain `arm::neon` kernels enable. Part of the base AArch64 ABI
    /// on Linux, but asked anyway so the table never assumes it.
    pub fn neon() -> bool {
        #[cfg(all(target_arch = "aarch64", feature = "std"))]
        {
            std::arch::is_aarch64_feature_detected!("neon")
        }
        #[cfg(all(target_arch = "aarch64", not(feature = "std")))]
        {
            cfg!(target_feature = "neon")
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            false
        }
    }

    /// The dotprod extension (`sdot`, ARMv8.2+; not on ARMv8.0 cores such as the Cortex-A72),
    /// what the `_dotprod` variants enable on top of `neon()`.
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))] // only the aarch64 tables ask
    pub fn dotprod() -> bool {
        #[cfg(all(target_arch = "aarch64", feature = "std"))]
        {
            neon() && std::arch::is_aarch64_feature_detected!("dotprod")
        }
        #[cfg(all(target_arch = "aarch64", not(feature = "std")))]
        {
            neon() && cfg!(target_feature = "dotprod")
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_fail() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Ok(isa));
        }
        assert_eq!(Isa::from_name(" AVX2 "), Ok(Isa::Avx2));
        assert_eq!(Isa::from_name("Neon"), Ok(Isa::Neon));
        assert_eq!(Isa::from_name("sse"), Err(UnknownIsaName));
        assert_eq!(Isa::from_name(""), Err(UnknownIsaName));
    }

    #[test]
    fn detected_isa_is_supported_and_scalar_always_is() {
        assert!(Isa::detect().is_supported());
        assert_eq!(Isa::Scalar.require(), Ok(Isa::Scalar));
        for isa in Isa::ALL {
            assert_eq!(isa.require().is_ok(), isa.is_supported());
        }
    }
}
