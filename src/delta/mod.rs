//! Binary deltas: NEW's missing content encoded against content OLD
//! already has, published beside NEW as an OCI artifact.
//!
//! Where the chunk level fetches every frame of NEW that OLD lacks, a delta
//! holds *parts*: zstd frames compressed with a reference prefix made of
//! OLD frames (the old version of a file, found by path or by path with
//! its version numbers changed; for tar headers and small files, OLD's
//! frames holding the same paths). A part decompresses to the uncompressed
//! content of NEW frames, which the client compresses again at the level
//! NEW's chunk index records and checks against the index and the blob's
//! digest. [`mod@format`] is the blob and its lookup; [`make`] writes one;
//! [`find`] looks for one beside NEW. Using one is part of the update:
//! `update::delta_level` takes the parts that pay, `update::rebuild` turns
//! them into NEW's frames.

pub mod find;
pub mod format;
pub mod make;

pub use format::{DeltaLookup, IndexPart, Part, Run};
