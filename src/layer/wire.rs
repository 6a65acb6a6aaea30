//! The small pieces of chunkah's binary formats (the chunk index, the
//! binary delta's lookup): LEB128 varints, a cursor whose reads are
//! checked, and bounded decompression.

/// Decompresses the zstd stream `data`, refusing more than `max` bytes.
pub(crate) fn decompress_bounded(data: &[u8], max: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    let decoder = zstd::stream::read::Decoder::new(data)?;
    decoder.take(max as u64 + 1).read_to_end(&mut out)?;
    if out.len() > max {
        return Err(std::io::Error::other("the body is too large"));
    }
    Ok(out)
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over a body with checked reads.
pub(crate) struct Cursor<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
}

pub(crate) type Parsed<T> = std::result::Result<T, String>;

impl<'a> Cursor<'a> {
    pub(crate) fn left(&self) -> usize {
        self.data.len() - self.pos
    }
    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Parsed<&'a [u8]> {
        if self.left() < n {
            return Err(format!("truncated in {what}"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn byte(&mut self, what: &str) -> Parsed<u8> {
        Ok(self.bytes(1, what)?[0])
    }
    pub(crate) fn varint(&mut self, what: &str) -> Parsed<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(format!("{what} overflows"));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{what} overflows"))
    }
    /// A count of records of at least `min_size` bytes each, checked
    /// against what is left before anything is allocated for them.
    pub(crate) fn count(&mut self, min_size: usize, what: &str) -> Parsed<usize> {
        let n = self.varint(what)?;
        if n > (self.left() / min_size) as u64 {
            return Err(format!("{n} {what} cannot fit in {} bytes", self.left()));
        }
        Ok(n as usize)
    }
    pub(crate) fn usize(&mut self, what: &str) -> Parsed<usize> {
        usize::try_from(self.varint(what)?).map_err(|_| format!("{what} is too large"))
    }
}
