//! chunkah turns a root file system into an OCI image whose layers survive
//! updates, and tells what a client must download to go from one image
//! version to the next.
//!
//! This release holds the first stage of that pipeline: content-defined
//! chunking with FastCDC (cut points identical to the `fastcdc` crate's
//! v2020 algorithm) and a SIMD-native gear hash, with BLAKE3 chunk digests.
//!
//! ```
//! use chunkah::chunker::{Algorithm, Chunker, ChunkerConfig};
//!
//! let data: Vec<u8> = (0..1_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
//! let config = ChunkerConfig::new(16 << 10, 64 << 10, 256 << 10, 1)?
//!     .with_algorithm(Algorithm::FastCdc);
//! let chunker = Chunker::auto(config);
//! let chunks = chunker.chunks(&data);
//! assert_eq!(chunks.iter().map(|c| c.length).sum::<u64>(), data.len() as u64);
//! for c in chunkah::chunker::digest_chunks(&data, &chunks) {
//!     println!("{} {} {}", c.chunk.offset, c.chunk.length, c.id);
//! }
//! # Ok::<(), chunkah::Error>(())
//! ```

#![warn(missing_docs)]

pub mod build;
pub mod chunker;
pub mod component;
pub mod delta;
pub mod digest;
pub mod error;
pub mod io;
pub mod layer;
pub mod oci;
pub mod pack;
#[cfg(feature = "registry")]
pub mod registry;
pub mod store;
pub mod walk;

pub use digest::{ChunkId, Digest};
pub use error::{Error, Result};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
