//! Backends: which kernels run, detected once and dispatched in one place.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use super::scalar;
use crate::error::{Error, Result};

/// An instruction set the chunker's kernels are built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Portable code, the reference every other backend is tested against.
    Scalar,
    /// x86_64 with AVX2 (and BMI2).
    Avx2,
    /// x86_64 with AVX-512 F, BW, VBMI and VNNI (Ice Lake, Zen 4 and later).
    Avx512,
    /// aarch64 with NEON.
    Neon,
}

impl Backend {
    /// Every backend, available here or not.
    pub const ALL: [Backend; 4] = [
        Backend::Scalar,
        Backend::Avx2,
        Backend::Avx512,
        Backend::Neon,
    ];

    /// The name used by `--backend` and `CHUNKAH_BACKEND`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
        }
    }

    /// Why this backend cannot run here, or `None` if it can.
    pub fn unavailable_reason(self) -> Option<String> {
        match self {
            Backend::Scalar => None,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => (!(std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("bmi2")))
            .then(|| "this CPU lacks AVX2 or BMI2".to_string()),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => (!(std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vbmi")
                && std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("bmi2")))
            .then(|| "this CPU lacks AVX-512 F/BW/VBMI/VNNI".to_string()),
            #[cfg(target_arch = "aarch64")]
            Backend::Neon => (!std::arch::is_aarch64_feature_detected!("neon"))
                .then(|| "this CPU lacks NEON".to_string()),
            #[allow(unreachable_patterns)]
            _ => Some(format!(
                "it is not built for this architecture ({})",
                std::env::consts::ARCH
            )),
        }
    }

    /// Whether this backend can run on this CPU.
    pub fn is_available(self) -> bool {
        self.unavailable_reason().is_none()
    }

    /// Every backend this CPU can run, best last.
    pub fn available() -> Vec<Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_available())
            .collect()
    }

    /// The best backend for this CPU, detected once.
    pub fn detect() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| {
            [Backend::Avx512, Backend::Avx2, Backend::Neon]
                .into_iter()
                .find(|b| b.is_available())
                .unwrap_or(Backend::Scalar)
        })
    }

    /// The backend whose kernel for `algorithm` ran fastest on this CPU,
    /// measured once per process (a few scans of 256 KiB, well under a
    /// millisecond). Kernels of every backend give the same cut points, so
    /// the choice changes speed only; it is made by measurement because
    /// the feature names do not say which is fastest (on an Intel Xeon the
    /// AVX2 build of the FastCDC kernel beat the AVX-512 one).
    pub fn fastest(algorithm: super::Algorithm) -> Backend {
        static FASTEST: [OnceLock<Backend>; 2] = [OnceLock::new(), OnceLock::new()];
        let slot = match algorithm {
            super::Algorithm::FastCdc => 0,
            super::Algorithm::Vector => 1,
        };
        *FASTEST[slot].get_or_init(|| {
            let timings = Backend::measure(algorithm);
            timings
                .iter()
                .min_by_key(|(_, t)| *t)
                .map_or(Backend::detect(), |(b, _)| *b)
        })
    }

    /// The time of each available backend's kernel for `algorithm` over the
    /// same 256 KiB of noise (best of five), scanned in blocks as the chunker
    /// scans.
    pub fn measure(algorithm: super::Algorithm) -> Vec<(Backend, std::time::Duration)> {
        let data = super::golden_input(0x5eed, 256 << 10);
        let config = super::ChunkerConfig::default();
        let (fs, fl) = super::gear::fastcdc_masks(config.avg(), config.normalization());
        let (_, vl) = super::gear::vector_masks(config.avg(), config.normalization());
        let block = super::scan_block(algorithm);
        let mut out = Vec::new();
        Backend::available()
            .into_iter()
            .filter_map(|b| Some((b, b.kernels().ok()?)))
            .map(|(b, k)| {
                let best = (0..5)
                    .map(|_| {
                        let t = std::time::Instant::now();
                        for from in (0..data.len()).step_by(block) {
                            out.clear();
                            let to = (from + block).min(data.len());
                            match algorithm {
                                super::Algorithm::FastCdc => {
                                    k.scan_fastcdc(&data, from, to, fs & fl, &mut out)
                                }
                                super::Algorithm::Vector => {
                                    k.scan_vector(&data, from, to, vl, &mut out)
                                }
                            }
                            std::hint::black_box(&out);
                        }
                        t.elapsed()
                    })
                    .min()
                    .expect("five runs");
                (b, best)
            })
            .collect()
    }

    /// Parses a backend name; `auto` means [`Backend::detect`]. A backend this
    /// CPU lacks is an error.
    pub fn from_name(name: &str) -> Result<Backend> {
        let backend = match name {
            "auto" => return Ok(Backend::detect()),
            "scalar" => Backend::Scalar,
            "avx2" => Backend::Avx2,
            "avx512" => Backend::Avx512,
            "neon" => Backend::Neon,
            _ => {
                return Err(Error::UnknownName {
                    what: "backend",
                    value: name.to_string(),
                    expected: "scalar, avx2, avx512, neon, auto",
                })
            }
        };
        backend.require()
    }

    /// Returns `self` if it can run here, else a clear error.
    pub fn require(self) -> Result<Backend> {
        match self.unavailable_reason() {
            None => Ok(self),
            Some(reason) => Err(Error::BackendUnavailable {
                backend: self.name(),
                reason,
            }),
        }
    }

    /// The kernels of an available backend.
    pub(crate) fn kernels(self) -> Result<Kernels> {
        self.require()?;
        Ok(match self {
            Backend::Scalar => Kernels {
                fastcdc: scalar::scan_fastcdc,
                vector: scalar::scan_vector,
                lockstep: scalar::roll_fastcdc_chains,
            },
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => Kernels {
                fastcdc: super::x86::scan_fastcdc_avx2,
                vector: super::x86::scan_vector_avx2,
                lockstep: super::x86::roll_fastcdc_chains,
            },
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => Kernels {
                fastcdc: super::x86::scan_fastcdc_avx512,
                vector: super::x86::scan_vector_avx512,
                lockstep: super::x86::roll_fastcdc_chains,
            },
            #[cfg(target_arch = "aarch64")]
            Backend::Neon => Kernels {
                fastcdc: super::aarch64::scan_fastcdc_neon,
                vector: super::aarch64::scan_vector_neon,
                // The portable kernel: its aarch64 code keeps the four chains
                // in registers and rolls a byte with one shifted add. Tested
                // under qemu; not yet timed on an aarch64 machine.
                lockstep: scalar::roll_fastcdc_chains,
            },
            #[allow(unreachable_patterns)]
            _ => unreachable!("require() rejected backends not built for this architecture"),
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Backend::from_name(s)
    }
}

/// A candidate scan over `data[from..to]` (see [`scalar`] for the contract).
pub(crate) type ScanFn<M> = unsafe fn(&[u8], usize, usize, M, &mut Vec<usize>);

/// A lockstep kernel: rolls four FastCDC hash chains, chain `l` from the
/// byte at `pos[l]` with `h[l]`, each by at most `steps` bytes (even, at
/// least 2; every chain's bytes inside `data`), testing each hash against
/// `mask`, and stops at the first hash with no bit of `mask` set or once every
/// chain has rolled `steps` bytes. On return `pos[l]` is chain `l`'s next
/// byte and `h[l]` its hash. Chain 0 has rolled at least one byte, and the
/// chains have rolled as many bytes each unless one hit; whatever they rolled,
/// only a chain's last hash can have hit (those before it were tested).
/// The lockstep tests hold every kernel to this contract, the simplest
/// (`scalar::roll_fastcdc4`, in tests) among them.
pub(crate) type RollFn = fn(&[u8], &mut [usize; 4], &mut [u64; 4], usize, u64);

/// The kernels of one backend. Only [`Backend::kernels`] makes these, after
/// checking that the CPU has the backend's features.
#[derive(Clone, Copy)]
pub(crate) struct Kernels {
    fastcdc: ScanFn<u64>,
    vector: ScanFn<u32>,
    /// For FastCDC over large inputs (see [`super::lockstep`]).
    pub(crate) lockstep: RollFn,
}

impl Kernels {
    #[inline]
    pub(crate) fn scan_fastcdc(
        &self,
        data: &[u8],
        from: usize,
        to: usize,
        mask: u64,
        out: &mut Vec<usize>,
    ) {
        assert!(from <= to && to <= data.len());
        // SAFETY: `Kernels` is only built by `Backend::kernels`, after
        // `require()` confirmed the CPU features the kernel is compiled for;
        // the range was bounds-checked just above.
        unsafe { (self.fastcdc)(data, from, to, mask, out) }
    }

    #[inline]
    pub(crate) fn scan_vector(
        &self,
        data: &[u8],
        from: usize,
        to: usize,
        mask: u32,
        out: &mut Vec<usize>,
    ) {
        assert!(from <= to && to <= data.len());
        // SAFETY: as in `scan_fastcdc`.
        unsafe { (self.vector)(data, from, to, mask, out) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::Algorithm;

    #[test]
    fn the_fastest_backend_is_one_measured_here() {
        for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
            let measured = Backend::measure(algorithm);
            assert_eq!(
                measured.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
                Backend::available()
            );
            assert!(measured.iter().all(|(_, t)| !t.is_zero()));
            let fastest = Backend::fastest(algorithm);
            assert!(fastest.is_available());
            assert_eq!(fastest, Backend::fastest(algorithm), "chosen once");
        }
    }
}
