//! Content-defined chunking: configuration, backend dispatch and the driver.
//!
//! The driver owns every rule of a chunk's shape (minimum size skipped, strict
//! mask below the average, relaxed mask from it, forced cut at the maximum).
//! Kernels only report candidate positions, so one driver serves every
//! backend and both algorithms:
//!
//! * [`Algorithm::FastCdc`]: cut points identical to `fastcdc::v2020::FastCDC`.
//! * [`Algorithm::Vector`]: a 32-bit gear hash built for SIMD (`docs/VECTOR.md`).
//!
//! The driver cuts one chunk at a time ([`Chunker::next_cut`]). For FastCDC
//! over a large input it runs four chunkers at once instead, in the backend's
//! lockstep kernel (`lockstep.rs`); both take FastCDC's size rules
//! from one place (`FastCdcSpan`), and a large input split across threads is
//! joined the same exact way (`parallel.rs`).

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod backend;
mod file;
pub mod gear;
mod lanes;
mod lockstep;
mod parallel;
pub mod scalar;
mod stream;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::fmt;
use std::str::FromStr;

pub use backend::Backend;
pub use file::MappedFile;
pub use stream::StreamChunker;

use crate::digest::ChunkId;
use crate::error::{Error, Result};
use backend::Kernels;

/// Which rolling hash decides cut points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// FastCDC v2020, cut points identical to the `fastcdc` crate.
    FastCdc,
    /// A 32-bit gear hash designed for SIMD, with the same size rules.
    #[default]
    Vector,
}

impl Algorithm {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::FastCdc => "fastcdc",
            Algorithm::Vector => "vector",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fastcdc" => Ok(Algorithm::FastCdc),
            "vector" => Ok(Algorithm::Vector),
            _ => Err(Error::UnknownName {
                what: "algorithm",
                value: s.to_string(),
                expected: "fastcdc, vector",
            }),
        }
    }
}

/// Smallest accepted minimum chunk size.
pub const MIN_SIZE_RANGE: (usize, usize) = (64, 1 << 20);
/// Accepted range of the average chunk size.
pub const AVG_SIZE_RANGE: (usize, usize) = (256, 4 << 20);
/// Accepted range of the maximum chunk size.
pub const MAX_SIZE_RANGE: (usize, usize) = (1024, 16 << 20);

/// Validated chunking parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkerConfig {
    min: usize,
    avg: usize,
    max: usize,
    normalization: u32,
    algorithm: Algorithm,
}

impl Default for ChunkerConfig {
    /// 16 KiB / 64 KiB / 256 KiB, normalization level 1, the vector algorithm.
    fn default() -> Self {
        ChunkerConfig {
            min: 16 << 10,
            avg: 64 << 10,
            max: 256 << 10,
            normalization: 1,
            algorithm: Algorithm::default(),
        }
    }
}

impl ChunkerConfig {
    /// Validates sizes (bytes) and a normalization level (0 to 3).
    ///
    /// Sizes must be even (FastCDC tests positions in pairs), within
    /// [`MIN_SIZE_RANGE`], [`AVG_SIZE_RANGE`] and [`MAX_SIZE_RANGE`], and
    /// ordered `min <= avg <= max`.
    pub fn new(min: usize, avg: usize, max: usize, normalization: u32) -> Result<Self> {
        let check = |name: &str, v: usize, (lo, hi): (usize, usize)| {
            if v < lo || v > hi {
                Err(Error::Config(format!(
                    "{name} size {v} is outside {lo}..={hi}"
                )))
            } else if !v.is_multiple_of(2) {
                Err(Error::Config(format!("{name} size {v} must be even")))
            } else {
                Ok(())
            }
        };
        check("minimum", min, MIN_SIZE_RANGE)?;
        check("average", avg, AVG_SIZE_RANGE)?;
        check("maximum", max, MAX_SIZE_RANGE)?;
        if !(min <= avg && avg <= max) {
            return Err(Error::Config(format!(
                "sizes must satisfy min <= avg <= max (got {min}, {avg}, {max})"
            )));
        }
        if normalization > 3 {
            return Err(Error::Config(format!(
                "normalization level {normalization} is outside 0..=3"
            )));
        }
        Ok(ChunkerConfig {
            min,
            avg,
            max,
            normalization,
            algorithm: Algorithm::default(),
        })
    }

    /// Sizes around an average: a quarter of it as minimum, four times as
    /// maximum, normalization level 1 (as [`ChunkerConfig::default`] around
    /// 64 KiB).
    pub fn around(avg: usize) -> Result<Self> {
        ChunkerConfig::new(avg / 4, avg, avg.saturating_mul(4), 1)
    }

    /// The same sizes with another algorithm.
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Minimum chunk size in bytes (the last chunk of an input may be shorter).
    pub fn min(&self) -> usize {
        self.min
    }
    /// Average (target) chunk size in bytes.
    pub fn avg(&self) -> usize {
        self.avg
    }
    /// Maximum chunk size in bytes.
    pub fn max(&self) -> usize {
        self.max
    }
    /// Normalization level, 0 to 3.
    pub fn normalization(&self) -> u32 {
        self.normalization
    }
    /// The rolling hash.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Which positions FastCDC tests for the chunk that starts at `start`, and
/// with which mask: the size rules every FastCDC driver follows.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastCdcSpan {
    /// The chunk's first byte.
    pub(crate) start: usize,
    /// The first position tested; the chunk's hash is rolled from zero here.
    pub(crate) first: usize,
    /// Positions below this are tested (in pairs: an odd last byte never is).
    pub(crate) end: usize,
    /// The strict mask tests positions below this, the relaxed one the rest.
    pub(crate) avg_at: usize,
    /// The chunk's end if no tested position hits.
    pub(crate) forced: usize,
}

impl FastCdcSpan {
    /// The mask that tests position `i`, of the (strict, relaxed) `masks`.
    #[inline]
    pub(crate) fn mask_at(&self, i: usize, (strict, relaxed): (u64, u64)) -> u64 {
        if i < self.avg_at {
            strict
        } else {
            relaxed
        }
    }
}

impl ChunkerConfig {
    /// The span of the chunk that starts at `start` in an input of `len`
    /// bytes, or `None` if at most `min` bytes are left (the chunk runs to
    /// the end).
    pub(crate) fn fastcdc_span(&self, start: usize, len: usize) -> Option<FastCdcSpan> {
        let n = len - start;
        if n <= self.min {
            return None;
        }
        let r = n.min(self.max);
        Some(FastCdcSpan {
            start,
            first: start + self.min,
            end: start + (r & !1),
            avg_at: start + self.avg,
            forced: start + r,
        })
    }
}

/// One chunk of an input: a byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// Offset of the first byte in the input.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

/// A chunk and the BLAKE3 digest of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DigestedChunk {
    /// Where the chunk is.
    pub chunk: Chunk,
    /// BLAKE3 of its bytes.
    pub id: ChunkId,
}

/// Positions scanned per kernel call, by algorithm. Smaller wastes less
/// scanning past a cut; larger amortises a kernel's warm-up. Measured with
/// `examples/throughput.rs` (BENCHMARKS.md): for FastCDC's four chains, 3 KiB
/// beat 2, 4, 6, 8, 16 and 32 KiB (power-of-two spacing of the chains was
/// consistently slower).
const FASTCDC_SCAN_BLOCK: usize = scalar::ILP_BLOCK;
const VECTOR_SCAN_BLOCK: usize = 8 << 10;

/// The scan block of `algorithm`.
fn scan_block(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::FastCdc => FASTCDC_SCAN_BLOCK,
        Algorithm::Vector => VECTOR_SCAN_BLOCK,
    }
}

/// A chunker: a validated configuration bound to an available backend.
#[derive(Clone, Copy)]
pub struct Chunker {
    config: ChunkerConfig,
    backend: Backend,
    kernels: Kernels,
    fastcdc_masks: (u64, u64),
    vector_masks: (u32, u32),
}

impl fmt::Debug for Chunker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunker")
            .field("config", &self.config)
            .field("backend", &self.backend)
            .finish()
    }
}

impl Chunker {
    /// A chunker on `backend`; an error if this CPU lacks it.
    pub fn new(config: ChunkerConfig, backend: Backend) -> Result<Self> {
        let kernels = backend.kernels()?;
        Ok(Chunker {
            config,
            backend,
            kernels,
            fastcdc_masks: gear::fastcdc_masks(config.avg, config.normalization),
            vector_masks: gear::vector_masks(config.avg, config.normalization),
        })
    }

    /// A chunker on the backend whose kernel for the configured algorithm
    /// is fastest on this CPU ([`Backend::fastest`]).
    pub fn auto(config: ChunkerConfig) -> Self {
        Chunker::new(config, Backend::fastest(config.algorithm))
            .expect("the measured backend is available")
    }

    /// The configuration.
    pub fn config(&self) -> &ChunkerConfig {
        &self.config
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The end (exclusive) of the chunk that starts at `start` in `data`,
    /// where `data` ends at the end of the input.
    ///
    /// Only `data[start..]` is read, and at most `max` bytes of it, so a
    /// stream reader may pass any window that holds `max` bytes (or the end).
    pub fn next_cut(&self, data: &[u8], start: usize) -> usize {
        let c = &self.config;
        let n = data.len() - start;
        if n <= c.min {
            return data.len();
        }
        let r = n.min(c.max);
        let mut cands = Vec::new();
        match c.algorithm {
            Algorithm::FastCdc => {
                let masks = self.fastcdc_masks;
                let span = c
                    .fastcdc_span(start, data.len())
                    .expect("more than min bytes left");
                // The chunk's hash starts from zero at `min`: until it has rolled a whole
                // window it differs from the steady-state hash, so test these positions here.
                let exact_end = span.end.min(span.first + gear::FASTCDC_WINDOW - 1);
                let mut h = 0u64;
                for (&b, i) in data[span.first..exact_end].iter().zip(span.first..) {
                    h = scalar::roll64(h, b);
                    if h & span.mask_at(i, masks) == 0 {
                        return i;
                    }
                }
                let mut from = exact_end;
                while from < span.end {
                    let to = span.end.min(from + FASTCDC_SCAN_BLOCK);
                    cands.clear();
                    self.kernels
                        .scan_fastcdc(data, from, to, masks.0 & masks.1, &mut cands);
                    for &i in &cands {
                        if scalar::fastcdc_hash_at(data, i) & span.mask_at(i, masks) == 0 {
                            return i;
                        }
                    }
                    from = to;
                }
                return span.forced;
            }
            Algorithm::Vector => {
                let (mask_s, mask_l) = self.vector_masks;
                let end = start + r;
                let avg_at = start + c.avg;
                let mut from = start + c.min;
                while from < end {
                    let to = end.min(from + VECTOR_SCAN_BLOCK);
                    cands.clear();
                    // The relaxed mask is a subset of the strict one: candidates for both.
                    self.kernels.scan_vector(data, from, to, mask_l, &mut cands);
                    for &i in &cands {
                        if i >= avg_at || scalar::vector_hash_at(data, i) & mask_s == 0 {
                            return i;
                        }
                    }
                    from = to;
                }
            }
        }
        start + r
    }

    /// Chunk ends (exclusive offsets) of a whole input, in one thread.
    pub fn cut_points(&self, data: &[u8]) -> Vec<usize> {
        self.chain(data, 0, data.len())
    }

    /// The cut points of the chain of chunks that starts at `begin` (taken
    /// as a chunk start) and runs until a cut reaches `end`.
    pub(crate) fn chain(&self, data: &[u8], begin: usize, end: usize) -> Vec<usize> {
        if self.lanes_suit() && end - begin >= 4 * lockstep::MIN_REGION {
            return lockstep::chain(self, data, begin, end, self.kernels.lockstep);
        }
        self.chain_by_chunk(data, begin, end)
    }

    /// [`Chunker::chain`] one chunk at a time ([`Chunker::next_cut`]).
    fn chain_by_chunk(&self, data: &[u8], begin: usize, end: usize) -> Vec<usize> {
        let mut cuts = Vec::with_capacity((end - begin) / self.config.avg + 1);
        let mut pos = begin;
        while pos < end {
            pos = self.next_cut(data, pos);
            cuts.push(pos);
        }
        cuts
    }

    /// Whether the algorithm and masks suit the lockstep driver.
    fn lanes_suit(&self) -> bool {
        let (strict, relaxed) = self.fastcdc_masks;
        self.config.algorithm == Algorithm::FastCdc
            && (strict & relaxed).count_ones() >= lockstep::MIN_COMMON_MASK_BITS
    }

    /// The chunks of a whole input, in one thread.
    pub fn chunks(&self, data: &[u8]) -> Vec<Chunk> {
        chunks_from_cuts(&self.cut_points(data))
    }

    /// The chunks of a whole input, split across the current rayon pool's
    /// threads. The cut points equal those of [`Chunker::chunks`].
    pub fn chunks_parallel(&self, data: &[u8]) -> Vec<Chunk> {
        chunks_from_cuts(&parallel::cut_points(
            self,
            data,
            rayon::current_num_threads(),
        ))
    }

    /// Chunks and their BLAKE3 digests, both computed on the current rayon pool.
    pub fn digest_chunks_parallel(&self, data: &[u8]) -> Vec<DigestedChunk> {
        digest_chunks(data, &self.chunks_parallel(data))
    }

    /// Maps a file and returns its chunks with digests (see [`MappedFile`]).
    pub fn digest_file(&self, path: impl AsRef<std::path::Path>) -> Result<Vec<DigestedChunk>> {
        let file = MappedFile::open(path)?;
        Ok(self.digest_chunks_parallel(&file))
    }
}

/// The input generator of the golden vectors (`testdata/golden/chunker.json`),
/// also used by tests and benchmarks for reproducible pseudo-random bytes:
/// xorshift64 (13, 7, 17) from `seed | 1`, one byte per step, bits 24..32.
pub fn golden_input(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Turns a list of chunk ends into chunks.
fn chunks_from_cuts(cuts: &[usize]) -> Vec<Chunk> {
    let mut prev = 0;
    cuts.iter()
        .map(|&end| {
            let c = Chunk {
                offset: prev as u64,
                length: (end - prev) as u64,
            };
            prev = end;
            c
        })
        .collect()
}

/// BLAKE3 digests of `chunks` of `data`, computed on the current rayon pool.
pub fn digest_chunks(data: &[u8], chunks: &[Chunk]) -> Vec<DigestedChunk> {
    use rayon::prelude::*;
    chunks
        .par_iter()
        .map(|&chunk| DigestedChunk {
            chunk,
            id: ChunkId::of(&data[chunk.offset as usize..(chunk.offset + chunk.length) as usize]),
        })
        .collect()
}
