//! Content digests: [`ChunkId`] (BLAKE3) for chunks, [`Digest`] (sha256) for OCI blobs.

use std::fmt;

/// The BLAKE3 digest of a chunk's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// Hashes `data` with BLAKE3.
    pub fn of(data: &[u8]) -> Self {
        ChunkId(*blake3::hash(data).as_bytes())
    }

    /// Lower-case hex of the 32 bytes.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            use fmt::Write;
            let _ = write!(s, "{b:02x}");
        }
        s
    }
}

impl fmt::Display for ChunkId {
    /// Formats as `blake3:<hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.to_hex())
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_has_the_published_blake3_digest() {
        // The BLAKE3 digest of the empty string, from the BLAKE3 specification's test vectors.
        assert_eq!(
            ChunkId::of(b"").to_string(),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}

/// An OCI content digest: `sha256:<hex>` of a blob's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The sha256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Digest(sha2::Sha256::digest(data).into())
    }

    /// Lower-case hex of the 32 bytes (the blob's file name in a layout).
    pub fn hex(&self) -> String {
        ChunkId(self.0).to_hex()
    }

    /// Parses `sha256:<64 hex digits>`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:")?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a sha256 digest: {s:?}")))
    }
}

/// A `Write` that passes bytes on while computing their sha256 and count.
pub struct HashingWriter<W> {
    inner: W,
    /// `None` for a writer that only counts ([`HashingWriter::counting`]).
    hasher: Option<sha2::Sha256>,
    count: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        use sha2::Digest as _;
        HashingWriter {
            inner,
            hasher: Some(sha2::Sha256::new()),
            count: 0,
        }
    }

    /// Wraps `inner`, counting bytes but not hashing them: for bytes whose
    /// digest is computed elsewhere (an uncompressed layer is its tar).
    /// [`HashingWriter::peek`] and [`HashingWriter::finish`] must not be
    /// called; [`HashingWriter::finish_counted`] is.
    pub fn counting(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: None,
            count: 0,
        }
    }

    /// The inner writer and the byte count of what was written.
    pub fn finish_counted(self) -> (W, u64) {
        (self.inner, self.count)
    }

    /// The inner writer, for calls that do not write to it: bytes written
    /// through it would not be hashed.
    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The digest and byte count of what was written so far.
    pub fn peek(&self) -> (Digest, u64) {
        use sha2::Digest as _;
        let hasher = self.hasher.clone().expect("a hashing writer");
        (Digest(hasher.finalize().into()), self.count)
    }

    /// The inner writer, the digest and the byte count of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        use sha2::Digest as _;
        let hasher = self.hasher.expect("a hashing writer");
        (self.inner, Digest(hasher.finalize().into()), self.count)
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A `Read` that passes bytes on while computing their sha256 and count.
pub struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R: std::io::Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        use sha2::Digest as _;
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    /// The digest and the byte count of what was read so far.
    pub fn finish(self) -> (Digest, u64) {
        let (_, digest, count) = self.into_parts();
        (digest, count)
    }

    /// The inner reader, the digest and the byte count of what was read so far.
    pub fn into_parts(self) -> (R, Digest, u64) {
        use sha2::Digest as _;
        (
            self.inner,
            Digest(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod oci_digest_tests {
    use super::*;

    #[test]
    fn sha256_of_abc_round_trips() {
        let d = Digest::of(b"abc");
        let s = d.to_string();
        assert_eq!(
            s,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&s), Some(d));
        assert_eq!(Digest::parse("sha256:BA78"), None);
        assert_eq!(Digest::parse(&s.to_uppercase()), None);
        let mut w = HashingWriter::new(Vec::new());
        std::io::Write::write_all(&mut w, b"abc").unwrap();
        let (inner, digest, n) = w.finish();
        assert_eq!((inner.as_slice(), digest, n), (&b"abc"[..], d, 3));
        let mut r = HashingReader::new(&b"abc"[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(r.finish(), (d, 3));
    }
}
