//! chunkah turns a root file system into an OCI image whose layers survive
//! updates, and tells what a client must download to go from one image
//! version to the next.
//!
//! # Jobs
//!
//! Each job is one call in [`jobs`], with typed options in and a typed
//! report out; the `chunkah` binary is a thin layer over them.
//!
//! Pack a root file system (here the sample tarball of the repository) into
//! an image layout. Every job takes a [`jobs::JobContext`]: scratch space
//! and registry settings, threads, the architecture, a cancel flag and a
//! listener for progress events.
//!
//! ```
//! use chunkah::jobs::{pack, JobContext, Input, PackJob, PackOptions};
//! use chunkah::{ImageRef, StoreConfig};
//!
//! let dir = std::env::temp_dir().join(format!("chunkah-doc-{}", std::process::id()));
//! let ctx = JobContext {
//!     store: StoreConfig { scratch_dir: Some(std::env::temp_dir()), ..StoreConfig::default() },
//!     ..JobContext::default()
//! };
//! let job = |tag: &str, max_layers| PackJob {
//!     source: Input::Tar("testdata/sample-rootfs.tar".into()),
//!     dest: ImageRef::Layout { dir: dir.clone(), tag: Some(tag.into()) },
//!     options: PackOptions { max_layers, source_date_epoch: Some(1_700_000_000), ..PackOptions::default() },
//! };
//! let v1 = pack(&job("v1", 64), &ctx)?;
//! assert_eq!((v1.components, v1.layers.len()), (4, 4));
//! // The same tree packed into fewer layers: another image.
//! let v2 = pack(&job("v2", 2), &ctx)?;
//! assert_eq!(v2.layers.len(), 2);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), chunkah::Error>(())
//! ```
//!
//! Plan the download from one version to another, then rebuild the new one
//! from the old one and only the byte ranges the plan names:
//!
//! ```
//! # use chunkah::jobs::{pack, PackJob, PackOptions};
//! use chunkah::jobs::{apply, diff, ApplyJob, DiffJob, Input, JobContext};
//! use chunkah::{ImageRef, StoreConfig};
//! # let dir = std::env::temp_dir().join(format!("chunkah-doc-plan-{}", std::process::id()));
//! let ctx = JobContext {
//!     store: StoreConfig { scratch_dir: Some(std::env::temp_dir()), ..StoreConfig::default() },
//!     ..JobContext::default()
//! };
//! # for (tag, max_layers) in [("v1", 64), ("v2", 2)] {
//! #     pack(&PackJob {
//! #         source: Input::Tar("testdata/sample-rootfs.tar".into()),
//! #         dest: ImageRef::Layout { dir: dir.clone(), tag: Some(tag.into()) },
//! #         options: PackOptions { max_layers, source_date_epoch: Some(1_700_000_000), ..PackOptions::default() },
//! #     }, &ctx)?;
//! # }
//! let image = |tag: &str| ImageRef::Layout { dir: dir.clone(), tag: Some(tag.into()) };
//! let report = diff(&DiffJob {
//!     old: Input::Image(image("v1")),
//!     new: Input::Image(image("v2")),
//!     options: Default::default(),
//!     source_date_epoch: None,
//!     packages: false,
//! }, &ctx)?;
//! assert!(!report.same);
//! // Regrouped layers share every chunk: the chunk level is far below the layer level.
//! assert!(report.levels.chunk.bytes < report.levels.layer.bytes);
//!
//! let applied = apply(&ApplyJob {
//!     from: image("v1"),
//!     source: image("v2"),
//!     dest: image("v2-rebuilt"),
//!     options: Default::default(),
//! }, &ctx)?;
//! assert_eq!(applied.report.bytes_read, report.levels.chunk.bytes);
//! assert_eq!(applied.report.manifest, report.plan.unwrap().manifest.digest);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), chunkah::Error>(())
//! ```
//!
//! The chunker alone:
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
//!
//! # The house
//!
//! Data flows one way, and so do imports: each module uses only those
//! listed before it (`tests/layering.rs` checks this). The public face is
//! [`jobs`], [`chunker`], the image references ([`ImageRef`],
//! [`StoreConfig`], [`Transport`], and `RegistryRef` with the `registry`
//! feature) and [`Error`]; the stages below are reachable for the binary,
//! tests and fuzz targets but hidden from these docs, with no stability
//! promise.
//!
//! | module | what it holds |
//! |---|---|
//! | `error`, `digest`, `io` | the [`Error`] type; [`ChunkId`] (BLAKE3) and [`Digest`] (sha256); file regions, scratch files, decompression, atomic writes |
//! | [`chunker`] | content-defined chunking: FastCDC and the vector gear hash, SIMD kernels |
//! | `walk` | a directory or tar streams become a sorted tree of entries |
//! | `component` | which package owns each path (dpkg, rpm, apk, pacman) |
//! | `grouping` | files into components, components into at most N layers (a plan) |
//! | `layer` | tar writing, zstd frames, the chunk index and its annotations |
//! | `oci` | OCI JSON types, layouts and archives on this machine, an image's layers applied |
//! | `sbom` | the packages of a tree as SPDX 2.3 and CycloneDX 1.6 JSON documents |
//! | `registry` | the OCI distribution client (feature `registry`), knowing only OCI's JSON types |
//! | `store` | references resolved to a layout, an archive or a registry; reading and writing any of them; an image as planning sees it |
//! | `delta` | binary deltas: made from two images, found beside an image |
//! | `update` | what a client holding one image fetches for another (the plan at every level), and rebuilding it |
//! | [`jobs`] | the jobs, driving all of the above |
//!
//! The library never prints, never exits and reads no environment variable:
//! scratch space, registry credentials and the epoch come in the options.
//!
//! # Features
//!
//! - `cli` (default): the `chunkah` binary and what only it needs (clap,
//!   indicatif, anyhow).
//! - `registry` (default): `docker://` references and the registry client
//!   (ureq, rustls). Without it images are read and written in layouts and
//!   archives, and a `docker://` reference is [`Error::Unsupported`].

#![deny(missing_docs)]

pub mod chunker;
pub mod jobs;

// The stages below the jobs. Public only so that the `chunkah` binary, the
// tests, benches and fuzz targets reach them: hidden from the docs, no
// stability promise.
#[doc(hidden)]
pub mod component;
#[doc(hidden)]
pub mod delta;
#[doc(hidden)]
pub mod digest;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod grouping;
#[doc(hidden)]
pub mod io;
#[doc(hidden)]
pub mod layer;
#[doc(hidden)]
pub mod oci;
#[cfg(feature = "registry")]
#[doc(hidden)]
pub mod registry;
#[doc(hidden)]
pub mod sbom;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod update;
#[doc(hidden)]
pub mod walk;

pub use digest::{ChunkId, Digest};
pub use error::{Error, Result};
#[cfg(feature = "registry")]
pub use registry::{default_auth_files, ClientConfig, Credentials, RegistryRef, Target};
pub use store::{ImageRef, StoreConfig, Transport};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
