//! The delta blob: parts back to back, then the lookup that says what each
//! part rebuilds from what. Format version 1, documented in docs/FORMAT.md;
//! golden vectors in testdata/golden/delta/.
//!
//! A *part* is one zstd frame compressed with a reference prefix: the
//! uncompressed content of some frames of OLD's layers, one after the
//! other. It decompresses to the uncompressed content of some frames of
//! NEW's layers, one after the other. Frames are named by position (layer
//! in the manifest, frame in that layer's chunk index), since a delta is
//! made for one OLD and one NEW, whose digests the lookup records; every
//! rebuilt frame is still checked against NEW's chunk index.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::index::{IndexLocation, TrailerKeys};
use crate::layer::wire::{decompress_bounded, put_varint, Cursor, Parsed};

/// The first bytes of the uncompressed lookup body.
pub const LOOKUP_MAGIC: &[u8; 8] = b"CHUNKAHD";
/// The format version written.
pub const LOOKUP_VERSION: u8 = 1;
/// The largest uncompressed lookup body accepted (64 MiB).
pub const MAX_LOOKUP_BODY: usize = 64 << 20;
/// The most content one part rebuilds, and the most reference it names
/// (64 MiB each): what a client holds in memory for one part.
pub const MAX_PART_BYTES: u64 = 64 << 20;
/// The zstd level the lookup body is compressed with.
const LOOKUP_LEVEL: i32 = 19;

/// Media type of the delta blob, and artifact type of the delta manifest.
pub const DELTA_MEDIA_TYPE: &str = "application/vnd.chunkah.delta.v1";
/// Delta manifest annotation: OLD's manifest digest (NEW's is the subject).
pub const BASE_ANNOTATION: &str = "dev.chunkah.delta.base";
/// The annotations on the delta blob's descriptor that locate the lookup.
pub const LOOKUP_KEYS: TrailerKeys = TrailerKeys {
    offset: "dev.chunkah.delta.lookup.offset",
    length: "dev.chunkah.delta.lookup.length",
    digest: "dev.chunkah.delta.lookup.digest",
};

/// Consecutive frames of one layer: `count` frames from `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Run {
    /// The layer's position in its manifest.
    pub layer: u32,
    /// The first frame's position in the layer's chunk index.
    pub first: u32,
    /// How many frames (at least 1).
    pub count: u32,
}

impl Run {
    /// The frame positions of the run.
    pub fn frames(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (self.first..self.first + self.count).map(|f| (self.layer as usize, f as usize))
    }
}

/// Appends frame `(layer, frame)` to `runs`, extending the last run when it
/// follows it.
pub fn push_frame(runs: &mut Vec<Run>, layer: usize, frame: usize) {
    let (layer, frame) = (layer as u32, frame as u32);
    match runs.last_mut() {
        Some(r) if r.layer == layer && r.first + r.count == frame => r.count += 1,
        _ => runs.push(Run {
            layer,
            first: frame,
            count: 1,
        }),
    }
}

/// One part of a delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Where its bytes start in the delta blob.
    pub offset: u64,
    /// Its compressed length.
    pub length: u64,
    /// What it decompresses to: the total length of its targets.
    pub content_len: u64,
    /// OLD's frames whose content, in this order, is the reference prefix
    /// (none: a part compressed on its own).
    pub reference: Vec<Run>,
    /// NEW's frames it rebuilds, in this order.
    pub targets: Vec<Run>,
}

/// A part that rebuilds the chunk index of a NEW layer: its uncompressed
/// body, against the body of an OLD layer's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPart {
    /// Where its bytes start in the delta blob (after the frame parts).
    pub offset: u64,
    /// Its compressed length.
    pub length: u64,
    /// The length of the index body it decompresses to.
    pub content_len: u64,
    /// The OLD layer whose index body is the reference.
    pub old_layer: u32,
    /// The NEW layer whose index it rebuilds.
    pub new_layer: u32,
}

/// The lookup of a delta blob: which OLD and NEW it is for, and its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaLookup {
    /// OLD's manifest digest.
    pub base: Digest,
    /// NEW's manifest digest.
    pub target: Digest,
    /// The parts, in blob order, back to back from offset 0.
    pub parts: Vec<Part>,
    /// The index parts, back to back after the parts.
    pub index_parts: Vec<IndexPart>,
}

impl DeltaLookup {
    /// Where the parts and index parts end (the lookup starts).
    pub fn parts_size(&self) -> u64 {
        match self.index_parts.last() {
            Some(p) => p.offset + p.length,
            None => self.parts.last().map_or(0, |p| p.offset + p.length),
        }
    }

    /// The index part that rebuilds NEW's layer `layer`, if there is one.
    pub fn index_part(&self, layer: usize) -> Option<&IndexPart> {
        self.index_parts
            .iter()
            .find(|p| p.new_layer as usize == layer)
    }

    /// The lookup as it ends the delta blob: a zstd frame of the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(128 + self.parts.len() * 16);
        body.extend_from_slice(LOOKUP_MAGIC);
        body.push(LOOKUP_VERSION);
        body.extend_from_slice(&self.base.0);
        body.extend_from_slice(&self.target.0);
        put_varint(&mut body, self.parts.len() as u64);
        for p in &self.parts {
            put_varint(&mut body, p.length);
            put_varint(&mut body, p.content_len);
            for runs in [&p.reference, &p.targets] {
                put_varint(&mut body, runs.len() as u64);
                for r in runs.iter() {
                    put_varint(&mut body, u64::from(r.layer));
                    put_varint(&mut body, u64::from(r.first));
                    put_varint(&mut body, u64::from(r.count));
                }
            }
        }
        put_varint(&mut body, self.index_parts.len() as u64);
        for p in &self.index_parts {
            put_varint(&mut body, p.length);
            put_varint(&mut body, p.content_len);
            put_varint(&mut body, u64::from(p.old_layer));
            put_varint(&mut body, u64::from(p.new_layer));
        }
        zstd::bulk::compress(&body, LOOKUP_LEVEL).expect("compressing to memory")
    }

    /// Decodes a lookup read from `location` of a delta blob (its digest
    /// checked first); `what` names it in errors.
    pub fn decode(location: &IndexLocation, bytes: &[u8], what: &str) -> Result<DeltaLookup> {
        let got = Digest::of(bytes);
        if got != location.digest {
            return Err(Error::digest_mismatch(
                format!("{what} (its annotation)"),
                location.digest,
                got,
            ));
        }
        let bad = |why: String| Error::malformed(what, format!("delta lookup: {why}"));
        let body = decompress_bounded(bytes, MAX_LOOKUP_BODY).map_err(|e| bad(e.to_string()))?;
        let lookup = parse_body(&body).map_err(bad)?;
        if lookup.parts_size() != location.offset {
            return Err(bad("the parts do not end where the lookup starts".into()));
        }
        Ok(lookup)
    }
}

fn parse_body(body: &[u8]) -> Parsed<DeltaLookup> {
    let mut c = Cursor { data: body, pos: 0 };
    let (base, target) = parse_header(&mut c)?;
    // A part record is at least 4 bytes: length, content, two run counts.
    let n = c.count(4, "parts")?;
    let mut parts = Vec::with_capacity(n);
    let mut offset = 0u64;
    for i in 0..n {
        let part = parse_part(&mut c, i, offset)?;
        offset = next_offset(offset, part.length)?;
        parts.push(part);
    }
    // An index part record is at least 4 bytes.
    let n = c.count(4, "index parts")?;
    let mut index_parts: Vec<IndexPart> = Vec::with_capacity(n);
    for i in 0..n {
        let part = parse_index_part(&mut c, i, offset)?;
        if index_parts.iter().any(|p| p.new_layer == part.new_layer) {
            return Err(format!("two index parts for layer {}", part.new_layer));
        }
        offset = next_offset(offset, part.length)?;
        index_parts.push(part);
    }
    if c.left() != 0 {
        return Err(format!("{} bytes after the last part", c.left()));
    }
    Ok(DeltaLookup {
        base,
        target,
        parts,
        index_parts,
    })
}

/// The magic and version, then the base and target digests.
fn parse_header(c: &mut Cursor<'_>) -> Parsed<(Digest, Digest)> {
    if c.bytes(8, "magic")? != LOOKUP_MAGIC {
        return Err("bad magic".into());
    }
    let version = c.byte("version")?;
    if version != LOOKUP_VERSION {
        return Err(format!(
            "version {version}, this chunkah reads version {LOOKUP_VERSION}"
        ));
    }
    let mut digest = |what: &str| -> Parsed<Digest> {
        Ok(Digest(c.bytes(32, what)?.try_into().expect("32 bytes")))
    };
    let base = digest("base digest")?;
    let target = digest("target digest")?;
    Ok((base, target))
}

/// The offset after a part of `length` bytes at `offset`.
fn next_offset(offset: u64, length: u64) -> Parsed<u64> {
    offset
        .checked_add(length)
        .ok_or_else(|| "part lengths overflow".to_string())
}

/// A part's length and content length: neither 0, the content at most
/// [`MAX_PART_BYTES`]; `what` names the part in errors.
fn parse_lengths(c: &mut Cursor<'_>, kind: &str, what: &str) -> Parsed<(u64, u64)> {
    let length = c.varint(&format!("{kind} length"))?;
    let content_len = c.varint(&format!("{kind} content length"))?;
    if length == 0 || content_len == 0 || content_len > MAX_PART_BYTES {
        return Err(format!(
            "{what}: {length} bytes for {content_len} (at most {MAX_PART_BYTES})"
        ));
    }
    Ok((length, content_len))
}

/// Part `i`, at `offset` of the blob.
fn parse_part(c: &mut Cursor<'_>, i: usize, offset: u64) -> Parsed<Part> {
    let (length, content_len) = parse_lengths(c, "part", &format!("part {i}"))?;
    let reference = parse_runs(c, i, "reference")?;
    let targets = parse_runs(c, i, "target")?;
    if targets.is_empty() {
        return Err(format!("part {i} rebuilds nothing"));
    }
    Ok(Part {
        offset,
        length,
        content_len,
        reference,
        targets,
    })
}

/// The `what` runs (reference or target) of part `i`.
fn parse_runs(c: &mut Cursor<'_>, i: usize, what: &str) -> Parsed<Vec<Run>> {
    // A run is at least 3 bytes.
    let n = c.count(3, what)?;
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        let mut field = |name: &str| -> Parsed<u32> {
            u32::try_from(c.varint(name)?).map_err(|_| format!("{what}: {name} too large"))
        };
        let (layer, first, count) = (field("layer")?, field("frame")?, field("count")?);
        if count == 0 || first.checked_add(count).is_none() {
            return Err(format!(
                "part {i}: a {what} run of {count} frames at {first}"
            ));
        }
        runs.push(Run {
            layer,
            first,
            count,
        });
    }
    Ok(runs)
}

/// Index part `i`, at `offset` of the blob.
fn parse_index_part(c: &mut Cursor<'_>, i: usize, offset: u64) -> Parsed<IndexPart> {
    let (length, content_len) = parse_lengths(c, "index part", &format!("index part {i}"))?;
    let mut layer = |name: &str| -> Parsed<u32> {
        u32::try_from(c.varint(name)?).map_err(|_| format!("index part {i}: {name} too large"))
    };
    let (old_layer, new_layer) = (layer("old layer")?, layer("new layer")?);
    Ok(IndexPart {
        offset,
        length,
        content_len,
        old_layer,
        new_layer,
    })
}

/// The zstd parameters a part is compressed with: level, long-distance
/// matching, and a window that covers reference and content.
pub fn compress_part(level: i32, reference: &[u8], content: &[u8]) -> std::io::Result<Vec<u8>> {
    use zstd::zstd_safe::CParameter;
    let err = |code: usize| std::io::Error::other(zstd::zstd_safe::get_error_name(code));
    let mut cctx = zstd::zstd_safe::CCtx::create();
    let total = (reference.len() + content.len()).max(1) as u64;
    let window = (64 - (total - 1).leading_zeros()).clamp(10, 30);
    for p in [
        CParameter::CompressionLevel(level),
        CParameter::WindowLog(window),
        CParameter::EnableLongDistanceMatching(true),
        CParameter::ChecksumFlag(false),
        CParameter::ContentSizeFlag(true),
    ] {
        cctx.set_parameter(p).map_err(err)?;
    }
    if !reference.is_empty() {
        cctx.ref_prefix(reference).map_err(err)?;
    }
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(content.len()));
    cctx.compress2(&mut out, content).map_err(err)?;
    Ok(out)
}

/// Decompresses a part against its reference into exactly `content_len`
/// bytes; anything else is an error naming `what`. The decoder holds only
/// the reference and the output: the frame is decoded in one call.
pub fn decompress_part(
    reference: &[u8],
    data: &[u8],
    content_len: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let bad = |why: String| Error::malformed(what, why);
    if content_len > MAX_PART_BYTES {
        return Err(bad(format!("{content_len} bytes is above the part limit")));
    }
    // The frame says how much it holds; it must say exactly content_len.
    match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(n)) if n == content_len => {}
        Ok(n) => {
            return Err(bad(format!(
                "the part's frame holds {n:?} bytes, the lookup says {content_len}"
            )))
        }
        Err(_) => return Err(bad("not a zstd frame".into())),
    }
    let err = |code: usize| {
        bad(format!(
            "does not decompress: {}",
            zstd::zstd_safe::get_error_name(code)
        ))
    };
    let mut dctx = zstd::zstd_safe::DCtx::create();
    if !reference.is_empty() {
        dctx.ref_prefix(reference).map_err(err)?;
    }
    let mut out: Vec<u8> = Vec::with_capacity(content_len as usize);
    let n = dctx.decompress(&mut out, data).map_err(err)?;
    if n as u64 != content_len {
        return Err(bad(format!("decompressed to {n} bytes, not {content_len}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeltaLookup {
        DeltaLookup {
            base: Digest::of(b"old"),
            target: Digest::of(b"new"),
            parts: vec![
                Part {
                    offset: 0,
                    length: 100,
                    content_len: 4000,
                    reference: vec![Run {
                        layer: 0,
                        first: 3,
                        count: 2,
                    }],
                    targets: vec![
                        Run {
                            layer: 1,
                            first: 0,
                            count: 1,
                        },
                        Run {
                            layer: 1,
                            first: 7,
                            count: 300,
                        },
                    ],
                },
                Part {
                    offset: 100,
                    length: 50,
                    content_len: 9,
                    reference: vec![],
                    targets: vec![Run {
                        layer: 2,
                        first: 1,
                        count: 1,
                    }],
                },
            ],
            index_parts: vec![IndexPart {
                offset: 150,
                length: 20,
                content_len: 600,
                old_layer: 0,
                new_layer: 1,
            }],
        }
    }

    fn located(bytes: &[u8], offset: u64) -> IndexLocation {
        IndexLocation {
            offset,
            length: bytes.len() as u64,
            digest: Digest::of(bytes),
        }
    }

    /// Writes `bytes` to the golden vector `name` under CHUNKAH_BLESS, and
    /// returns the vector as stored.
    fn golden(name: &str, bytes: &[u8]) -> Vec<u8> {
        let path = format!("{}/testdata/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("CHUNKAH_BLESS").is_some() {
            std::fs::write(&path, bytes).unwrap();
        }
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn golden_lookup_vector() {
        let bytes = sample().encode();
        let stored = golden("delta-lookup-v1.bin", &bytes);
        assert_eq!(bytes, stored, "the encoding changed: bump LOOKUP_VERSION");
        assert_eq!(
            DeltaLookup::decode(&located(&stored, 170), &stored, "golden").unwrap(),
            sample()
        );
    }

    /// The reference and content of the golden part: a file, and its next
    /// version with a few bytes changed and a tail added.
    fn golden_pair() -> (Vec<u8>, Vec<u8>) {
        let reference = crate::chunker::golden_input(11, 100_000);
        let mut content = reference.clone();
        for at in (500..content.len()).step_by(9_000) {
            content[at] ^= 0x5a;
        }
        content.extend_from_slice(b"and a new tail");
        (reference, content)
    }

    #[test]
    fn golden_part_vector() {
        let (reference, content) = golden_pair();
        let part = compress_part(19, &reference, &content).unwrap();
        let stored = golden("delta-part-v1.bin", &part);
        assert_eq!(part, stored, "parts compress differently: zstd changed");
        assert!(stored.len() < 400, "{} bytes", stored.len());
        let n = content.len() as u64;
        assert_eq!(
            decompress_part(&reference, &stored, n, "golden").unwrap(),
            content
        );
    }

    #[test]
    fn lookup_round_trips() {
        let l = sample();
        let bytes = l.encode();
        assert_eq!(
            DeltaLookup::decode(&located(&bytes, 170), &bytes, "t").unwrap(),
            l
        );
        // The parts must end where the lookup starts.
        assert!(DeltaLookup::decode(&located(&bytes, 150), &bytes, "t").is_err());
        // Another digest is refused before anything is decoded.
        let mut loc = located(&bytes, 170);
        loc.digest = Digest::of(b"x");
        assert!(DeltaLookup::decode(&loc, &bytes, "t").is_err());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_a_valid_lookup() {
        let l = sample();
        let packed = l.encode();
        let body = decompress_bounded(&packed, MAX_LOOKUP_BODY).unwrap();
        for n in 0..body.len() {
            assert!(parse_body(&body[..n]).is_err(), "truncated at {n}");
        }
        for i in 0..body.len() {
            for bit in 0..8 {
                let mut b = body.clone();
                b[i] ^= 1 << bit;
                if let Ok(l) = parse_body(&b) {
                    assert!(l.parts.iter().all(|p| !p.targets.is_empty()));
                }
            }
        }
    }

    #[test]
    fn parts_round_trip_with_and_without_reference() {
        let reference: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut content = reference.clone();
        content[1000] ^= 0xff;
        content.extend_from_slice(b"tail");
        let with = compress_part(19, &reference, &content).unwrap();
        let alone = compress_part(19, &[], &content).unwrap();
        assert!(
            with.len() * 4 < alone.len(),
            "{} vs {}",
            with.len(),
            alone.len()
        );
        let n = content.len() as u64;
        assert_eq!(decompress_part(&reference, &with, n, "t").unwrap(), content);
        assert_eq!(decompress_part(&[], &alone, n, "t").unwrap(), content);
        // Another length, another reference, a cut frame: errors or other bytes, never a panic.
        assert!(decompress_part(&reference, &with, n - 1, "t").is_err());
        assert!(decompress_part(&reference, &with[..with.len() / 2], n, "t").is_err());
        let other = vec![7u8; reference.len()];
        if let Ok(out) = decompress_part(&other, &with, n, "t") {
            assert_ne!(out, content);
        }
    }
}
