//! The chunk index of a seekable layer: every zstd frame of the blob, and
//! every file with the frames that hold its content. Format version 1,
//! documented in docs/FORMAT.md; golden vectors in testdata/golden/index/.
//!
//! In the blob the index is one zstd *skippable frame* after the last data
//! frame, so any zstd decoder passes over it. Its payload is zstd-compressed;
//! decoding checks every count against the bytes that are left before
//! allocating, every frame and file against the others, and refuses an
//! uncompressed body above [`MAX_INDEX_BODY`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::wire::{decompress_bounded, put_varint, Cursor, Parsed};
use crate::chunker::{Algorithm, ChunkerConfig};
use crate::digest::{ChunkId, Digest};
use crate::error::{Error, Result};

/// The skippable-frame magic number the index is stored under
/// (`0x184D2A5E`, one of the sixteen zstd reserves for skippable frames).
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// The first bytes of the uncompressed index body.
pub const INDEX_MAGIC: &[u8; 8] = b"CHUNKAHI";
/// The format version written.
pub const INDEX_VERSION: u8 = 1;
/// The largest uncompressed index body accepted (256 MiB).
pub const MAX_INDEX_BODY: usize = 256 << 20;
/// The zstd level an index body is compressed with: 19 up to
/// [`INDEX_HIGH_LEVEL_MAX`] bytes (every layer of the Debian series: 3.4%
/// smaller than level 3), 3 above it, where level 19 gained 1.4% (the body
/// is mostly frame digests) for 18% of pack's CPU on 300,000 small files
/// (BENCHMARKS.md, "A million small files").
fn index_level(body_len: usize) -> i32 {
    match body_len <= INDEX_HIGH_LEVEL_MAX {
        true => 19,
        false => 3,
    }
}

/// The largest index body compressed at level 19.
const INDEX_HIGH_LEVEL_MAX: usize = 128 << 10;

/// Layer annotation: offset of the index's skippable frame in the blob.
pub const INDEX_OFFSET_ANNOTATION: &str = "dev.chunkah.index.offset";
/// Layer annotation: length of the index's skippable frame.
pub const INDEX_LENGTH_ANNOTATION: &str = "dev.chunkah.index.length";
/// Layer annotation: sha256 of the index's skippable frame.
pub const INDEX_DIGEST_ANNOTATION: &str = "dev.chunkah.index.digest";

/// The three annotations that locate a trailer of a blob: its offset,
/// length and sha256.
#[derive(Clone, Copy, Debug)]
pub struct TrailerKeys {
    /// The offset's annotation.
    pub offset: &'static str,
    /// The length's annotation.
    pub length: &'static str,
    /// The digest's annotation.
    pub digest: &'static str,
}

/// The annotations of a layer's chunk index.
pub const INDEX_KEYS: TrailerKeys = TrailerKeys {
    offset: INDEX_OFFSET_ANNOTATION,
    length: INDEX_LENGTH_ANNOTATION,
    digest: INDEX_DIGEST_ANNOTATION,
};

/// Where a layer's chunk index is in its blob, as the layer's descriptor
/// annotates it ([`INDEX_OFFSET_ANNOTATION`], [`INDEX_LENGTH_ANNOTATION`],
/// [`INDEX_DIGEST_ANNOTATION`]). The one place these annotations are written
/// and read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexLocation {
    /// Offset of the index's skippable frame in the blob.
    pub offset: u64,
    /// Its length: the frame ends the blob.
    pub length: u64,
    /// sha256 of its bytes.
    pub digest: Digest,
}

impl IndexLocation {
    /// Adds the three annotations that locate the index to `annotations`.
    pub fn annotate(&self, annotations: &mut BTreeMap<String, String>) {
        self.annotate_as(&INDEX_KEYS, annotations);
    }

    /// Adds the three annotations `keys` names, locating a trailer of a
    /// blob like the index (a binary delta's lookup, say).
    pub fn annotate_as(&self, keys: &TrailerKeys, annotations: &mut BTreeMap<String, String>) {
        annotations.insert(keys.offset.into(), self.offset.to_string());
        annotations.insert(keys.length.into(), self.length.to_string());
        annotations.insert(keys.digest.into(), self.digest.to_string());
    }

    /// Reads the location from a layer's `annotations` (`None` without
    /// them: a layer with no index), checked against the blob's size: the
    /// index ends the blob and is at most [`MAX_INDEX_BODY`] long. `what`
    /// names the layer in errors.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
        blob_size: u64,
        what: &str,
    ) -> Result<Option<IndexLocation>> {
        Self::from_annotations_as(&INDEX_KEYS, annotations, blob_size, what)
    }

    /// [`IndexLocation::from_annotations`] under the annotations `keys` names.
    pub fn from_annotations_as(
        keys: &TrailerKeys,
        annotations: &BTreeMap<String, String>,
        blob_size: u64,
        what: &str,
    ) -> Result<Option<IndexLocation>> {
        let get = |key: &str| annotations.get(key);
        let (Some(off), Some(len), Some(digest)) =
            (get(keys.offset), get(keys.length), get(keys.digest))
        else {
            return Ok(None);
        };
        let bad = |why: &str| Error::malformed(what, why);
        let offset: u64 = off
            .parse()
            .map_err(|_| bad("bad index offset annotation"))?;
        let length: u64 = len
            .parse()
            .map_err(|_| bad("bad index length annotation"))?;
        let digest = Digest::parse(digest).ok_or_else(|| bad("bad index digest annotation"))?;
        if offset
            .checked_add(length)
            .is_none_or(|end| end != blob_size)
            || length > MAX_INDEX_BODY as u64
        {
            return Err(bad("the index annotations do not fit the blob"));
        }
        Ok(Some(IndexLocation {
            offset,
            length,
            digest,
        }))
    }

    /// Checks `bytes`, read from this location, against the annotated
    /// digest, decodes them, and checks that the frames end where the index
    /// starts. `what` names the index in errors.
    pub fn decode(&self, bytes: &[u8], what: &str) -> Result<ChunkIndex> {
        let got = Digest::of(bytes);
        if got != self.digest {
            return Err(Error::digest_mismatch(
                format!("{what} (its annotation)"),
                self.digest,
                got,
            ));
        }
        let index = ChunkIndex::decode(bytes, what)?;
        if index.data_size() != self.offset {
            return Err(Error::malformed(
                what,
                "the index's frames do not end where the index starts",
            ));
        }
        Ok(index)
    }
}

/// An index body compressed into the skippable frame that ends a layer
/// blob: the same body gives the same bytes with the same zstd version.
pub fn frame_of_body(body: &[u8]) -> Vec<u8> {
    // zstd's tables grow with the input: layers written in parallel
    // compress their indexes one at a time, so these do not add up.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let packed =
        zstd::bulk::compress(body, index_level(body.len())).expect("compressing to memory");
    drop(turn);
    let mut out = Vec::with_capacity(8 + packed.len());
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
    out.extend_from_slice(&packed);
    out
}

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Whole entries: tar headers (after the padding of the file before),
    /// and the content of small files. A large file's header ends one.
    Entries,
    /// One content-defined chunk of a file's content.
    Chunk,
    /// The last padding and the end-of-archive blocks.
    Trailer,
}

impl FrameKind {
    fn code(self) -> u8 {
        match self {
            FrameKind::Entries => 0,
            FrameKind::Chunk => 1,
            FrameKind::Trailer => 2,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => FrameKind::Entries,
            1 => FrameKind::Chunk,
            2 => FrameKind::Trailer,
            _ => return None,
        })
    }
}

/// One zstd frame of a layer blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// What it holds.
    pub kind: FrameKind,
    /// Where its bytes are in the uncompressed tar.
    pub tar_offset: u64,
    /// How many uncompressed bytes it holds.
    pub tar_len: u64,
    /// Where the frame is in the blob.
    pub blob_offset: u64,
    /// The frame's compressed length.
    pub blob_len: u64,
    /// BLAKE3 of its uncompressed bytes.
    pub id: ChunkId,
}

/// What makes two frames' compressed bytes identical, whatever layer or
/// image holds them: the same uncompressed content (and so the same
/// length) compressed to the same length by the same zstd version at the
/// same level. A frame of an old image with the key of a new image's frame
/// stands in for it byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameKey {
    /// BLAKE3 of the uncompressed bytes.
    pub id: ChunkId,
    /// The compressed length.
    pub blob_len: u64,
    /// The zstd library version that compressed it.
    pub zstd_version: u32,
    /// The zstd level it was compressed at.
    pub level: i32,
}

/// A regular file with content, and the frames that hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedFile {
    /// Its path in the layer (relative, as in the tar).
    pub path: PathBuf,
    /// Content size.
    pub size: u64,
    /// A large file: index of its first chunk frame. A small file: index
    /// of the entries frame that holds it.
    pub first_frame: usize,
    /// A large file: how many chunk frames hold its content, one after the
    /// other. A small file: 0.
    pub frame_count: usize,
    /// A small file: BLAKE3 of its content (a large file's content is
    /// named by its chunks).
    pub digest: Option<ChunkId>,
}

impl IndexedFile {
    /// A name for the file's content: BLAKE3 of a small file's content, or
    /// of the concatenated chunk digests of a large file.
    pub fn content_id(&self, index: &ChunkIndex) -> ChunkId {
        match self.digest {
            Some(d) => d,
            None => {
                let mut h = blake3::Hasher::new();
                for f in &index.frames[self.first_frame..self.first_frame + self.frame_count] {
                    h.update(&f.id.0);
                }
                ChunkId(*h.finalize().as_bytes())
            }
        }
    }
}

/// The chunk index of one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkIndex {
    /// The zstd library version that compressed the frames
    /// (`major * 10000 + minor * 100 + patch`).
    pub zstd_version: u32,
    /// The zstd level of the frames.
    pub level: i32,
    /// How file content was cut into chunks.
    pub chunker: ChunkerConfig,
    /// Every data frame of the blob, in order, from offset 0.
    pub frames: Vec<Frame>,
    /// Files with content, in tar order.
    pub files: Vec<IndexedFile>,
}

impl ChunkIndex {
    /// Whether frames of `other` are byte-identical to frames of `self` with
    /// the same uncompressed content: same compressor, same level.
    pub fn same_compressor(&self, other: &ChunkIndex) -> bool {
        self.zstd_version == other.zstd_version && self.level == other.level
    }

    /// The key of `frame`, one of this index's frames.
    pub fn key(&self, frame: &Frame) -> FrameKey {
        FrameKey {
            id: frame.id,
            blob_len: frame.blob_len,
            zstd_version: self.zstd_version,
            level: self.level,
        }
    }

    /// Uncompressed tar size.
    pub fn tar_size(&self) -> u64 {
        self.frames.last().map_or(0, |f| f.tar_offset + f.tar_len)
    }

    /// Bytes of the data frames (the index frame starts there).
    pub fn data_size(&self) -> u64 {
        self.frames.last().map_or(0, |f| f.blob_offset + f.blob_len)
    }

    /// The index as a skippable frame, ready to append to the blob.
    pub fn encode(&self) -> Vec<u8> {
        frame_of_body(&self.body())
    }

    /// The uncompressed body of the index (what [`ChunkIndex::encode`]
    /// compresses into the frame).
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64 + self.frames.len() * 40 + self.files.len() * 32);
        body.extend_from_slice(INDEX_MAGIC);
        body.push(INDEX_VERSION);
        put_varint(&mut body, u64::from(self.zstd_version));
        put_varint(&mut body, zigzag(self.level));
        body.push(match self.chunker.algorithm() {
            Algorithm::FastCdc => 0,
            Algorithm::Vector => 1,
        });
        put_varint(&mut body, self.chunker.min() as u64);
        put_varint(&mut body, self.chunker.avg() as u64);
        put_varint(&mut body, self.chunker.max() as u64);
        body.push(self.chunker.normalization() as u8);
        put_varint(&mut body, self.frames.len() as u64);
        for f in &self.frames {
            body.push(f.kind.code());
            put_varint(&mut body, f.tar_len);
            put_varint(&mut body, f.blob_len);
            body.extend_from_slice(&f.id.0);
        }
        put_varint(&mut body, self.files.len() as u64);
        let mut previous: &[u8] = b"";
        let mut next_frame = 0usize;
        for file in &self.files {
            use std::os::unix::ffi::OsStrExt;
            let path = file.path.as_os_str().as_bytes();
            let shared = previous
                .iter()
                .zip(path)
                .take_while(|(a, b)| a == b)
                .count();
            put_varint(&mut body, shared as u64);
            put_varint(&mut body, (path.len() - shared) as u64);
            body.extend_from_slice(&path[shared..]);
            put_varint(&mut body, file.size);
            // Files are in frame order: the gap from where the previous file
            // ended (small files share their frame with the next one).
            put_varint(&mut body, (file.first_frame - next_frame) as u64);
            put_varint(&mut body, file.frame_count as u64);
            if let Some(d) = file.digest {
                body.extend_from_slice(&d.0);
            }
            next_frame = file.first_frame + file.frame_count;
            previous = path;
        }
        body
    }

    /// Decodes an index's skippable frame; `what` names it in errors.
    pub fn decode(bytes: &[u8], what: &str) -> Result<ChunkIndex> {
        let bad = |why: String| Error::malformed(what, format!("chunk index: {why}"));
        if bytes.len() < 8 || bytes[..4] != SKIPPABLE_MAGIC.to_le_bytes() {
            return Err(bad("not a chunkah index frame".into()));
        }
        let size = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
        if bytes.len() - 8 != size {
            return Err(bad(format!(
                "frame says {size} bytes, {} are there",
                bytes.len() - 8
            )));
        }
        let body =
            decompress_bounded(&bytes[8..], MAX_INDEX_BODY).map_err(|e| bad(e.to_string()))?;
        parse_body(&body).map_err(bad)
    }
}

fn zigzag(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

fn unzigzag(v: u64) -> Option<i32> {
    let v = u32::try_from(v).ok()?;
    Some(((v >> 1) as i32) ^ -((v & 1) as i32))
}

fn parse_body(body: &[u8]) -> Parsed<ChunkIndex> {
    let mut c = Cursor { data: body, pos: 0 };
    let header = parse_header(&mut c)?;
    let frames = parse_frames(&mut c)?;
    let files = parse_files(&mut c, &frames)?;
    if c.left() != 0 {
        return Err(format!("{} bytes after the last record", c.left()));
    }
    Ok(ChunkIndex {
        zstd_version: header.zstd_version,
        level: header.level,
        chunker: header.chunker,
        frames,
        files,
    })
}

/// What an index body says before its frames: how the frames were
/// compressed and how file content was cut.
struct BodyHeader {
    zstd_version: u32,
    level: i32,
    chunker: ChunkerConfig,
}

/// The magic, the version, the compressor and the chunker.
fn parse_header(c: &mut Cursor<'_>) -> Parsed<BodyHeader> {
    if c.bytes(8, "magic")? != INDEX_MAGIC {
        return Err("bad magic".into());
    }
    let version = c.byte("version")?;
    if version != INDEX_VERSION {
        return Err(format!(
            "version {version}, this chunkah reads version {INDEX_VERSION}"
        ));
    }
    let zstd_version =
        u32::try_from(c.varint("zstd version")?).map_err(|_| "zstd version is too large")?;
    let level = unzigzag(c.varint("level")?).ok_or("level is out of range")?;
    let algorithm = match c.byte("algorithm")? {
        0 => Algorithm::FastCdc,
        1 => Algorithm::Vector,
        a => return Err(format!("unknown chunking algorithm {a}")),
    };
    let (min, avg, max) = (c.usize("min")?, c.usize("avg")?, c.usize("max")?);
    let normalization = u32::from(c.byte("normalization")?);
    let chunker = ChunkerConfig::new(min, avg, max, normalization)
        .map_err(|e| e.to_string())?
        .with_algorithm(algorithm);
    Ok(BodyHeader {
        zstd_version,
        level,
        chunker,
    })
}

/// The frame records, each placed after the one before in the tar and in
/// the blob.
fn parse_frames(c: &mut Cursor<'_>) -> Parsed<Vec<Frame>> {
    // A frame record is at least 1 + 1 + 1 + 32 bytes.
    let n_frames = c.count(35, "frames")?;
    let mut frames = Vec::with_capacity(n_frames);
    let (mut tar_offset, mut blob_offset) = (0u64, 0u64);
    for _ in 0..n_frames {
        let kind = FrameKind::from_code(c.byte("frame kind")?).ok_or("unknown frame kind")?;
        let tar_len = c.varint("frame length")?;
        let blob_len = c.varint("frame size")?;
        if blob_len == 0 {
            return Err("a frame of 0 bytes".into());
        }
        let id = ChunkId(c.bytes(32, "frame digest")?.try_into().expect("32 bytes"));
        frames.push(Frame {
            kind,
            tar_offset,
            tar_len,
            blob_offset,
            blob_len,
            id,
        });
        tar_offset = tar_offset
            .checked_add(tar_len)
            .ok_or("the tar size overflows")?;
        blob_offset = blob_offset
            .checked_add(blob_len)
            .ok_or("the blob size overflows")?;
    }
    Ok(frames)
}

/// The file records, checked against `frames`: paths share a prefix with
/// the path before, frames follow on from where the file before ended.
fn parse_files(c: &mut Cursor<'_>, frames: &[Frame]) -> Parsed<Vec<IndexedFile>> {
    use std::os::unix::ffi::OsStrExt;
    // A file record is at least 5 bytes.
    let n_files = c.count(5, "files")?;
    let mut files = Vec::with_capacity(n_files);
    let mut previous: Vec<u8> = Vec::new();
    let mut next_frame = 0usize;
    for _ in 0..n_files {
        let shared = c.usize("shared prefix")?;
        if shared > previous.len() {
            return Err("a path shares more than the previous path has".into());
        }
        let rest = c.usize("path length")?;
        let mut path = previous[..shared].to_vec();
        path.extend_from_slice(c.bytes(rest, "path")?);
        let size = c.varint("file size")?;
        let gap = c.usize("frame gap")?;
        let count = c.usize("frame count")?;
        let first = next_frame
            .checked_add(gap)
            .filter(|f| f.checked_add(count).is_some_and(|end| end <= frames.len()))
            .ok_or_else(|| format!("a file's frames lie past the {} frames", frames.len()))?;
        let digest = parse_file_digest(c, frames, first, count, size)?;
        next_frame = first + count;
        files.push(IndexedFile {
            path: PathBuf::from(std::ffi::OsStr::from_bytes(&path)),
            size,
            first_frame: first,
            frame_count: count,
            digest,
        });
        previous = path;
    }
    Ok(files)
}

/// The digest of a file whose content starts at frame `first` and has
/// `count` frames of its own, checked against `frames`: a small file
/// (`count` 0) lies inside the entries frame at `first` and has its digest
/// next in the body; a large file's chunk frames add up to its `size`.
fn parse_file_digest(
    c: &mut Cursor<'_>,
    frames: &[Frame],
    first: usize,
    count: usize,
    size: u64,
) -> Parsed<Option<ChunkId>> {
    if count == 0 {
        let frame = frames
            .get(first)
            .ok_or_else(|| format!("a file's frame lies past the {} frames", frames.len()))?;
        if frame.kind != FrameKind::Entries || size >= frame.tar_len {
            return Err("a small file is not inside an entries frame".into());
        }
        return Ok(Some(ChunkId(
            c.bytes(32, "file digest")?.try_into().expect("32 bytes"),
        )));
    }
    let own = &frames[first..first + count];
    if own.iter().any(|f| f.kind != FrameKind::Chunk) {
        return Err("a file's frames are not all chunk frames".into());
    }
    if own.iter().map(|f| f.tar_len).sum::<u64>() != size {
        return Err("a file's chunks do not add up to its size".into());
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_bodies_up_to_128_kib_get_level_19_larger_ones_level_3() {
        // Like a body: digests, and paths that share prefixes.
        let text = |len: usize| -> Vec<u8> {
            let digests = crate::chunker::golden_input(5, len);
            (0..len)
                .map(|i| match i % 64 < 32 {
                    true => digests[i],
                    false => b"usr/share/doc/"[i % 14] ^ (i / 4099) as u8,
                })
                .collect()
        };
        for (len, level) in [
            (1_000, 19),
            (INDEX_HIGH_LEVEL_MAX, 19),
            (INDEX_HIGH_LEVEL_MAX + 1, 3),
        ] {
            let body = text(len);
            let frame = frame_of_body(&body);
            let want = zstd::bulk::compress(&body, level).unwrap();
            assert_eq!(frame[8..], want[..], "{len} bytes");
            let other = zstd::bulk::compress(&body, 22 - level).unwrap();
            assert_ne!(other, want, "{len} bytes: the levels give the same frame");
        }
    }

    fn sample() -> ChunkIndex {
        let frame = |kind, tar_offset, tar_len, blob_offset, blob_len, seed: u8| Frame {
            kind,
            tar_offset,
            tar_len,
            blob_offset,
            blob_len,
            id: ChunkId::of(&[seed]),
        };
        ChunkIndex {
            zstd_version: 10507,
            level: 3,
            chunker: ChunkerConfig::default(),
            frames: vec![
                frame(FrameKind::Entries, 0, 512, 0, 40, 0),
                frame(FrameKind::Chunk, 512, 70_000, 40, 30_000, 1),
                frame(FrameKind::Chunk, 70_512, 5, 30_040, 14, 2),
                frame(FrameKind::Entries, 70_517, 1019, 30_054, 50, 3),
                frame(FrameKind::Chunk, 71_536, 3, 30_104, 12, 4),
                frame(FrameKind::Entries, 71_539, 1533, 30_116, 20, 5),
                frame(FrameKind::Trailer, 73_072, 1024, 30_136, 15, 6),
            ],
            files: vec![
                IndexedFile {
                    path: "usr/bin/tool".into(),
                    size: 70_005,
                    first_frame: 1,
                    frame_count: 2,
                    digest: None,
                },
                IndexedFile {
                    path: "usr/bin/tool2".into(),
                    size: 3,
                    first_frame: 4,
                    frame_count: 1,
                    digest: None,
                },
                IndexedFile {
                    path: "usr/bin/tool3".into(),
                    size: 100,
                    first_frame: 5,
                    frame_count: 0,
                    digest: Some(ChunkId::of(b"tool3")),
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let index = sample();
        let bytes = index.encode();
        assert_eq!(bytes[..4], SKIPPABLE_MAGIC.to_le_bytes());
        assert_eq!(ChunkIndex::decode(&bytes, "x").unwrap(), index);
        assert_eq!(index.tar_size(), 74_096);
        assert_eq!(index.data_size(), 30_151);
        for v in [0, 1, -1, 22, -7, i32::MAX, i32::MIN] {
            assert_eq!(unzigzag(zigzag(v)), Some(v));
        }
    }

    #[test]
    fn golden_index_vector() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/golden/index-v1.bin");
        let bytes = sample().encode();
        if std::env::var_os("CHUNKAH_BLESS").is_some() {
            std::fs::write(path, &bytes).unwrap();
        }
        let golden = std::fs::read(path).expect("testdata/golden/index-v1.bin");
        assert_eq!(bytes, golden, "the encoding changed: bump INDEX_VERSION");
        assert_eq!(ChunkIndex::decode(&golden, path).unwrap(), sample());
    }

    #[test]
    fn damaged_indexes_are_errors_not_panics() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(ChunkIndex::decode(&bytes[..len], "x").is_err());
        }
        for pos in 0..bytes.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[pos] ^= flip;
                let _ = ChunkIndex::decode(&b, "x");
            }
        }
        // Bodies that decompress fine but lie.
        let body = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = Vec::new();
            b.extend_from_slice(INDEX_MAGIC);
            b.push(1);
            f(&mut b);
            let packed = zstd::bulk::compress(&b, 1).unwrap();
            let mut out = SKIPPABLE_MAGIC.to_le_bytes().to_vec();
            out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            out.extend_from_slice(&packed);
            ChunkIndex::decode(&out, "x").unwrap_err().to_string()
        };
        let header = |b: &mut Vec<u8>| {
            for v in [10507u64, 6, 1, 16384, 65536, 262144] {
                put_varint(b, v);
            }
            b.push(1);
        };
        let err = body(&|b| {
            header(b);
            put_varint(b, u64::MAX / 2);
        });
        assert!(err.contains("cannot fit"), "{err}");
        let err = body(&|b| {
            header(b);
            put_varint(b, 0);
            put_varint(b, 1);
            put_varint(b, 0);
            put_varint(b, 1);
            b.push(b'a');
            put_varint(b, 0);
            put_varint(b, 0);
            put_varint(b, 5);
        });
        assert!(err.contains("past the 0 frames"), "{err}");
        let err = body(&|b| {
            for v in [10507u64, 6, 1, 3, 65536, 262144] {
                put_varint(b, v);
            }
            b.push(1);
        });
        assert!(err.contains("invalid configuration"), "{err}");
        let err = body(&|b| b.push(0x80));
        assert!(err.contains("truncated"), "{err}");
    }
}
