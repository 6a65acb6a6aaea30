//! Seekable zstd: a layer blob as a run of independent zstd frames, one per
//! tar header run and one per content chunk, then the chunk index in a
//! skippable frame. Any zstd decoder reads the blob as one stream; a client
//! holding the index can fetch any frame by byte range.

use std::io::{self, Write};

use super::index::{ChunkIndex, Frame, FrameKind, IndexedFile};
use super::IndexLocation;
use crate::chunker::ChunkerConfig;
use crate::digest::{ChunkId, Digest};

/// Collects tar bytes and compresses them as one frame at each cut.
pub(super) struct Framer<W: Write> {
    out: W,
    pending: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
    level: i32,
    pub(super) frames: Vec<Frame>,
    tar_offset: u64,
    blob_offset: u64,
}

/// The zstd library version frames are compressed with.
pub fn zstd_version() -> u32 {
    zstd::zstd_safe::version_number()
}

/// A compressor that makes the frames of a seekable layer at `level`: no
/// checksum, the content size in the header. The same zstd version and
/// level give the same bytes, which is what lets a client rebuild frames.
pub fn frame_compressor(level: i32) -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    compressor.include_checksum(false)?;
    compressor.include_contentsize(true)?;
    Ok(compressor)
}

impl<W: Write> Framer<W> {
    pub(super) fn new(out: W, level: i32) -> io::Result<Self> {
        let compressor = frame_compressor(level)?;
        Ok(Framer {
            out,
            pending: Vec::with_capacity(512 << 10),
            compressor,
            level,
            frames: Vec::new(),
            tar_offset: 0,
            blob_offset: 0,
        })
    }

    /// Bytes written since the last cut.
    pub(super) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Compresses the bytes written since the last cut as one frame.
    pub(super) fn cut(&mut self, kind: FrameKind) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let packed = self.compressor.compress(&self.pending)?;
        self.out.write_all(&packed)?;
        let frame = Frame {
            kind,
            tar_offset: self.tar_offset,
            tar_len: self.pending.len() as u64,
            blob_offset: self.blob_offset,
            blob_len: packed.len() as u64,
            id: ChunkId::of(&self.pending),
        };
        self.tar_offset += frame.tar_len;
        self.blob_offset += frame.blob_len;
        self.frames.push(frame);
        self.pending.clear();
        Ok(())
    }

    /// Ends the last frame and appends the index.
    pub(super) fn finish(
        mut self,
        files: Vec<IndexedFile>,
        chunker: ChunkerConfig,
    ) -> io::Result<(W, IndexLocation)> {
        self.cut(FrameKind::Trailer)?;
        let index = ChunkIndex {
            zstd_version: zstd_version(),
            level: self.level,
            chunker,
            frames: self.frames,
            files,
        };
        let bytes = index.encode();
        self.out.write_all(&bytes)?;
        Ok((
            self.out,
            IndexLocation {
                offset: self.blob_offset,
                length: bytes.len() as u64,
                digest: Digest::of(&bytes),
            },
        ))
    }
}

impl<W: Write> Write for Framer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
