//! Chunking a `Read` stream (a pipe) with bounded memory.

use std::io::Read;

use super::{Chunk, Chunker};
use crate::error::{Error, Result};

/// Reads a stream and hands out its chunks one at a time, holding at most
/// about two maximum-size chunks in memory. Cut points equal those of
/// [`Chunker::chunks`] on the whole input.
pub struct StreamChunker<R> {
    chunker: Chunker,
    reader: R,
    buf: Vec<u8>,
    /// Start of the next chunk in `buf`.
    pos: usize,
    /// Bytes of `buf` that hold data.
    filled: usize,
    eof: bool,
    /// Offset in the stream of `buf[0]`.
    base: u64,
}

impl<R: Read> StreamChunker<R> {
    /// Chunks `reader` with `chunker`.
    pub fn new(chunker: Chunker, reader: R) -> Self {
        let cap = 2 * chunker.config().max();
        StreamChunker {
            chunker,
            reader,
            buf: vec![0; cap],
            pos: 0,
            filled: 0,
            eof: false,
            base: 0,
        }
    }

    /// Fills the buffer until it holds a maximum-size chunk past `pos`, or the end.
    fn fill(&mut self) -> Result<()> {
        let max = self.chunker.config().max();
        if self.filled - self.pos >= max || self.eof {
            return Ok(());
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.base += self.pos as u64;
            self.filled -= self.pos;
            self.pos = 0;
        }
        while self.filled < max && !self.eof {
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Stream(e)),
            }
        }
        Ok(())
    }

    /// The next chunk and its bytes, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<(Chunk, &[u8])>> {
        self.fill()?;
        if self.pos == self.filled {
            return Ok(None);
        }
        let window = &self.buf[..self.filled];
        let end = self.chunker.next_cut(window, self.pos);
        let start = self.pos;
        self.pos = end;
        let chunk = Chunk {
            offset: self.base + start as u64,
            length: (end - start) as u64,
        };
        Ok(Some((chunk, &self.buf[start..end])))
    }
}
