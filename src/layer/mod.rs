//! Layers: tar archives of entries, compressed, with their digests.

pub mod tar;
