//! Layers: tar archives of entries, compressed, with their digests.

mod frames;
pub mod index;
pub mod tar;
pub(crate) mod wire;

pub use frames::{frame_compressor, zstd_version};
pub use index::IndexLocation;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::chunker::{Chunker, ChunkerConfig, StreamChunker};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::io::RegionReader;
use crate::walk::{Entry, EntryKind, TarContent};
use frames::Framer;
use index::{FrameKind, IndexedFile};
use tar::TarWriter;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// zstd at a level (1 to 22; 3 is zstd's default), one stream.
    Zstd(i32),
    /// zstd at a level, every tar header run and every content chunk a
    /// frame of its own, with a chunk index (see [`index`]).
    SeekableZstd(i32),
    /// gzip at a level (0 to 9).
    Gzip(u32),
    /// A plain tar.
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::SeekableZstd(3)
    }
}

impl Compression {
    /// An [`Error::Config`] unless the level is within the compressor's
    /// range: zstd 1 to 22, gzip 0 to 9.
    pub fn validate(self) -> Result<()> {
        let ok = match self {
            Compression::Zstd(l) | Compression::SeekableZstd(l) => (1..=22).contains(&l),
            Compression::Gzip(l) => l <= 9,
            Compression::None => true,
        };
        if ok {
            return Ok(());
        }
        Err(Error::Config(match self {
            Compression::Gzip(l) => format!("gzip level {l} is out of range 0..=9"),
            Compression::Zstd(l) | Compression::SeekableZstd(l) => {
                format!("zstd level {l} is out of range 1..=22")
            }
            Compression::None => unreachable!("always valid"),
        }))
    }

    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Zstd(_) | Compression::SeekableZstd(_) => {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            }
            Compression::Gzip(_) => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// Average chunk size of seekable layers unless told otherwise: 128 KiB
/// (32 KiB to 512 KiB). Against 64 KiB, on the Debian series
/// (BENCHMARKS.md), a security update downloads 10% more and a release
/// upgrade 3% less: larger frames compress better, smaller ones change less.
pub const LAYER_CHUNK_AVG: usize = 128 << 10;

/// The chunker sizes seekable layers use by default (around
/// [`LAYER_CHUNK_AVG`]).
pub fn default_layer_chunker() -> ChunkerConfig {
    ChunkerConfig::around(LAYER_CHUNK_AVG).expect("valid sizes")
}

/// Whether a regular file of `size` bytes gets frames of its own in a
/// seekable layer, one per chunk: from half the average chunk size up.
/// Smaller files share entries frames with their neighbours and are
/// compressed together, which is most of what a seekable layer can do about
/// its size.
pub fn has_own_frames(size: u64, chunker: &ChunkerConfig) -> bool {
    size >= (chunker.avg() / 2) as u64
}

/// The order entries go into a seekable layer: directories first (in the
/// given order, so parents come before children), then the other entries
/// without frames of their own grouped by component (`component(i)` names
/// the component of `entries[i]`), then the files with frames of their own,
/// then hard links (whose targets are then all written). Files of one
/// component thus share entries frames, and the large files in between do
/// not cut those frames short. Any order is a valid layer; this one is
/// deterministic.
pub fn seekable_order<'a, 'c>(
    entries: &[&'a Entry],
    component: impl Fn(usize) -> &'c str,
    chunker: &ChunkerConfig,
) -> Vec<&'a Entry> {
    let rank = |e: &Entry| match e.kind {
        EntryKind::Directory => 0,
        EntryKind::Regular { size } if has_own_frames(size, chunker) => 2,
        EntryKind::HardLink { .. } => 3,
        _ => 1,
    };
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_cached_key(|&i| {
        let r = rank(entries[i]);
        (r, if r == 1 { component(i) } else { "" }, i)
    });
    order.into_iter().map(|i| entries[i]).collect()
}

/// Where the content of regular files comes from.
#[derive(Clone, Copy, Debug)]
pub enum ContentSource<'a> {
    /// A directory tree: `root.join(entry.path)`.
    Dir(&'a Path),
    /// A tarball: content at recorded offsets.
    Tar(&'a TarContent),
}

/// What a written layer is: the blob's digest and size, and the digest of the
/// uncompressed tar (the image config's `diff_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the blob.
    pub digest: Digest,
    /// Blob size in bytes.
    pub size: u64,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    /// OCI media type.
    pub media_type: &'static str,
    /// Where the chunk index is, for a seekable layer.
    pub index: Option<IndexLocation>,
}

enum Encoder<W: Write> {
    Zstd(zstd::stream::Encoder<'static, W>),
    Seekable(Box<Framer<W>>),
    Gzip(flate2::write::GzEncoder<W>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    fn new(out: W, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::Zstd(level) => {
                let mut e = zstd::stream::Encoder::new(out, level)?;
                // The frame header records the content size nowhere and no checksum:
                // the layer digest covers the bytes already.
                e.include_checksum(false)?;
                Encoder::Zstd(e)
            }
            Compression::SeekableZstd(level) => {
                Encoder::Seekable(Box::new(Framer::new(out, level)?))
            }
            Compression::Gzip(level) => {
                // GzBuilder writes mtime 0 and no file name: reproducible.
                Encoder::Gzip(flate2::GzBuilder::new().write(out, flate2::Compression::new(level)))
            }
            Compression::None => Encoder::Plain(out),
        })
    }

    /// Ends the current frame of a seekable layer (nothing otherwise).
    fn cut(&mut self, kind: FrameKind) -> io::Result<()> {
        match self {
            Encoder::Seekable(f) => f.cut(kind),
            _ => Ok(()),
        }
    }

    /// How many frames a seekable layer has so far.
    fn frame_count(&self) -> usize {
        match self {
            Encoder::Seekable(f) => f.frames.len(),
            _ => 0,
        }
    }

    fn finish(
        self,
        files: Vec<IndexedFile>,
        chunker: ChunkerConfig,
    ) -> io::Result<(W, Option<IndexLocation>)> {
        match self {
            Encoder::Zstd(e) => Ok((e.finish()?, None)),
            Encoder::Seekable(f) => f.finish(files, chunker).map(|(w, i)| (w, Some(i))),
            Encoder::Gzip(e) => Ok((e.finish()?, None)),
            Encoder::Plain(w) => Ok((w, None)),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Seekable(f) => f.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.flush(),
            Encoder::Seekable(f) => f.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

/// How the layers of an image are written: the same for each of them.
#[derive(Clone, Copy, Debug)]
pub struct LayerSettings<'a> {
    /// How the blob is compressed.
    pub compression: Compression,
    /// How file content is cut into frames (with
    /// [`Compression::SeekableZstd`]; unused otherwise).
    pub chunker: Chunker,
    /// Where the content of regular files is read from.
    pub content: ContentSource<'a>,
    /// mtimes above this are lowered to it.
    pub clamp: Option<i64>,
    /// Once set, the work stops with [`Error::Cancelled`].
    pub cancel: &'a AtomicBool,
}

/// Writes the tar of `entries` to `out`, compressed, as `settings` say, and
/// returns the sink and the layer's digests. With
/// [`Compression::SeekableZstd`], file content is cut by the chunker and
/// every chunk is a zstd frame of its own. Errors name the content's file
/// when reading fails and `dest` (what `out` writes to) when writing fails.
pub fn write_layer<W: Write>(
    out: W,
    dest: &Path,
    entries: &[&Entry],
    settings: &LayerSettings<'_>,
) -> Result<(W, LayerInfo)> {
    let mut layer = LayerTar::new(out, dest, settings)?;
    for entry in entries {
        if settings.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        layer.entry(entry)?;
    }
    layer.finish()
}

/// A layer being written: the tar, compressed, and the index of its files.
struct LayerTar<'s, W: Write> {
    tar: TarWriter<HashingWriter<Encoder<HashingWriter<W>>>>,
    settings: &'s LayerSettings<'s>,
    dest: &'s Path,
    /// Files with content so far (for a seekable layer's index).
    files: Vec<IndexedFile>,
    /// Where small files are read to.
    buf: Vec<u8>,
}

impl<'s, W: Write> LayerTar<'s, W> {
    fn new(out: W, dest: &'s Path, settings: &'s LayerSettings<'s>) -> Result<Self> {
        // An uncompressed blob is its tar: its digest is the diff_id, the
        // bytes are hashed once.
        let blob = match settings.compression {
            Compression::None => HashingWriter::counting(out),
            _ => HashingWriter::new(out),
        };
        let encoder = Encoder::new(blob, settings.compression).map_err(|e| Error::io(dest, e))?;
        Ok(LayerTar {
            tar: TarWriter::new(HashingWriter::new(encoder)),
            settings,
            dest,
            files: Vec::new(),
            buf: vec![0u8; 256 << 10],
        })
    }

    fn write_err(&self) -> impl Fn(io::Error) -> Error + 's {
        let dest = self.dest;
        move |e| Error::io(dest, e)
    }

    fn seekable(&self) -> bool {
        matches!(self.settings.compression, Compression::SeekableZstd(_))
    }

    fn encoder(&mut self) -> &mut Encoder<HashingWriter<W>> {
        self.tar.sink_mut().inner_mut()
    }

    /// Writes one entry: its header, and the content of a regular file.
    fn entry(&mut self, entry: &Entry) -> Result<()> {
        let write_err = self.write_err();
        let clamp = self.settings.clamp;
        let mtime = clamp.map_or(entry.mtime, |c| entry.mtime.min(c));
        self.tar.header(entry, mtime).map_err(&write_err)?;
        let EntryKind::Regular { size } = entry.kind else {
            return end_group(&mut self.tar, entry, &self.settings.chunker).map_err(write_err);
        };
        let (path, reader) = open_content(self.settings.content, entry, size)?;
        if self.seekable() && has_own_frames(size, self.settings.chunker.config()) {
            self.large_file(entry, size, &path, reader)
        } else {
            self.small_file(entry, size, &path, reader)
        }
    }

    /// A large file of a seekable layer: its header ends the entries frame,
    /// and each of its chunks is a frame.
    fn large_file(
        &mut self,
        entry: &Entry,
        size: u64,
        path: &Path,
        mut reader: ContentReader<'_>,
    ) -> Result<()> {
        let write_err = self.write_err();
        self.encoder().cut(FrameKind::Entries).map_err(&write_err)?;
        let first_frame = self.encoder().frame_count();
        let mut chunks = StreamChunker::new(self.settings.chunker, &mut reader);
        loop {
            let next = chunks.next_chunk().map_err(|e| match e {
                Error::Stream(e) => Error::io(path, e),
                e => e,
            })?;
            let Some((_, bytes)) = next else { break };
            self.tar.content(bytes).map_err(&write_err)?;
            self.encoder().cut(FrameKind::Chunk).map_err(&write_err)?;
        }
        reader.check_unchanged()?;
        let frame_count = self.encoder().frame_count() - first_frame;
        self.files.push(IndexedFile {
            path: entry.path.to_path_buf(),
            size,
            first_frame,
            frame_count,
            digest: None,
        });
        self.tar.pad().map_err(write_err)
    }

    /// A small file (or any file of a layer that is not seekable): it stays
    /// in the entries frame being built.
    fn small_file(
        &mut self,
        entry: &Entry,
        size: u64,
        path: &Path,
        mut reader: ContentReader<'_>,
    ) -> Result<()> {
        let write_err = self.write_err();
        let frame = self.encoder().frame_count();
        let mut hasher = self.seekable().then(blake3::Hasher::new);
        loop {
            let n = reader.read(&mut self.buf).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&self.buf[..n]);
            }
            self.tar.content(&self.buf[..n]).map_err(&write_err)?;
        }
        reader.check_unchanged()?;
        if let (Some(h), true) = (hasher, size > 0) {
            self.files.push(IndexedFile {
                path: entry.path.to_path_buf(),
                size,
                first_frame: frame,
                frame_count: 0,
                digest: Some(crate::ChunkId(*h.finalize().as_bytes())),
            });
        }
        self.tar.pad().map_err(&write_err)?;
        end_group(&mut self.tar, entry, &self.settings.chunker).map_err(write_err)
    }

    /// Ends the archive and the compressed stream (the index after the
    /// frames of a seekable layer): the sink and the layer's digests.
    fn finish(mut self) -> Result<(W, LayerInfo)> {
        let write_err = self.write_err();
        // The last entries frame ends before the end-of-archive blocks.
        self.encoder().cut(FrameKind::Entries).map_err(&write_err)?;
        let tar_hash = self.tar.finish().map_err(&write_err)?;
        let (encoder, diff_id, tar_size) = tar_hash.finish();
        let (blob, index) = encoder
            .finish(self.files, *self.settings.chunker.config())
            .map_err(write_err)?;
        let (out, digest, size) = match self.settings.compression {
            Compression::None => {
                let (out, size) = blob.finish_counted();
                (out, diff_id, size)
            }
            _ => blob.finish(),
        };
        Ok((
            out,
            LayerInfo {
                digest,
                size,
                diff_id,
                tar_size,
                media_type: self.settings.compression.media_type(),
                index,
            },
        ))
    }
}

/// After a small entry of a seekable layer: ends the entries frame when the
/// entry's path says so (about one entry in [`GROUP_ENTRIES`], so frames
/// stay put when entries come and go) or when the frame has grown to the
/// chunker's maximum size.
fn end_group<W: Write>(
    tar: &mut TarWriter<HashingWriter<Encoder<W>>>,
    entry: &Entry,
    chunker: &Chunker,
) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let encoder = tar.sink_mut().inner_mut();
    let Encoder::Seekable(framer) = encoder else {
        return Ok(());
    };
    let hash = blake3::hash(entry.path.as_os_str().as_bytes());
    let h = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"));
    if h % GROUP_ENTRIES == 0 || framer.pending_len() >= chunker.config().max() {
        framer.cut(FrameKind::Entries)?;
    }
    Ok(())
}

/// Entries per entries frame, on average (when small).
const GROUP_ENTRIES: u64 = 16;

/// The content of a regular file being copied: exactly `size` bytes, or
/// an error saying how the source changed.
struct ContentReader<'a> {
    inner: OpenContent<'a>,
    path: std::path::PathBuf,
    left: u64,
}

enum OpenContent<'a> {
    File {
        file: File,
        before: std::fs::Metadata,
    },
    Tar(RegionReader<'a>),
}

/// Opens the content of `entry` (`size` bytes) in `content`; also returns
/// the path errors name.
fn open_content<'a>(
    content: ContentSource<'a>,
    entry: &Entry,
    size: u64,
) -> Result<(std::path::PathBuf, ContentReader<'a>)> {
    use std::os::unix::fs::MetadataExt;
    let (path, inner) = match content {
        ContentSource::Dir(root) => {
            let path = root.join(&entry.path);
            let changed = |what: &str| {
                Error::io(
                    &path,
                    io::Error::other(format!("changed while being read ({what})")),
                )
            };
            let file = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            let before = file.metadata().map_err(|e| Error::io(&path, e))?;
            if !before.is_file() {
                return Err(changed("no longer a regular file"));
            }
            if before.mtime() != entry.mtime {
                return Err(changed("modified after it was walked"));
            }
            (path, OpenContent::File { file, before })
        }
        ContentSource::Tar(tar) => {
            let (file, offset) = tar.locate(&entry.path)?;
            let reader = RegionReader::new(&file.file, offset, size);
            (file.path.clone(), OpenContent::Tar(reader))
        }
    };
    Ok((
        path.clone(),
        ContentReader {
            inner,
            path,
            left: size,
        },
    ))
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = match &mut self.inner {
            OpenContent::File { file, .. } => file.read(&mut buf[..want])?,
            OpenContent::Tar(r) => r.read(&mut buf[..want])?,
        };
        if n == 0 {
            return Err(match self.inner {
                OpenContent::File { .. } => {
                    io::Error::other("changed while being read (shorter than when walked)")
                }
                OpenContent::Tar(_) => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated in a file's content",
                ),
            });
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl ContentReader<'_> {
    /// After the content was read: a file that grew or was modified while
    /// it was read changed.
    fn check_unchanged(self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let OpenContent::File { mut file, before } = self.inner else {
            return Ok(());
        };
        let path = &self.path;
        let changed = |what: &str| {
            Error::io(
                path,
                io::Error::other(format!("changed while being read ({what})")),
            )
        };
        if file.read(&mut [0u8; 1]).map_err(|e| Error::io(path, e))? != 0 {
            return Err(changed("longer than when walked"));
        }
        let after = file.metadata().map_err(|e| Error::io(path, e))?;
        let stamp = |m: &std::fs::Metadata| {
            (
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                m.len(),
            )
        };
        if stamp(&before) != stamp(&after) {
            return Err(changed("modified while being read"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seekable_order_puts_directories_first_components_together_and_hard_links_last() {
        let entry = |path: &str, kind: EntryKind| Entry {
            path: std::path::Path::new(path).into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Box::default(),
        };
        let config = ChunkerConfig::around(128 << 10).unwrap();
        let small = EntryKind::Regular { size: 100 };
        let large = EntryKind::Regular { size: 64 << 10 };
        let tree = [
            (entry("", EntryKind::Directory), ""),
            (entry("a", EntryKind::Directory), "p"),
            (entry("a/1", small.clone()), "q"),
            (entry("a/2", large.clone()), "p"),
            (entry("a/3", small.clone()), "p"),
            (
                entry(
                    "a/l",
                    EntryKind::HardLink {
                        target: std::path::Path::new("a/2").into(),
                    },
                ),
                "p",
            ),
            (entry("b", EntryKind::Directory), "q"),
            (
                entry(
                    "b/1",
                    EntryKind::Symlink {
                        target: std::path::Path::new("x").into(),
                    },
                ),
                "p",
            ),
            (entry("b/2", large), "q"),
            (entry("b/3", small.clone()), "q"),
            (
                entry(
                    "b/4",
                    EntryKind::Regular {
                        size: (64 << 10) - 1,
                    },
                ),
                "p",
            ),
        ];
        let entries: Vec<&Entry> = tree.iter().map(|(e, _)| e).collect();
        let order = seekable_order(&entries, |i| tree[i].1, &config);
        let paths: Vec<&str> = order.iter().map(|e| e.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            ["", "a", "b", "a/3", "b/1", "b/4", "a/1", "b/3", "a/2", "b/2", "a/l"]
        );
        assert!(!has_own_frames((64 << 10) - 1, &config));
        assert!(has_own_frames(64 << 10, &config));
    }

    #[test]
    fn layers_decompress_to_the_same_tar_and_are_reproducible() {
        let dir = std::env::temp_dir().join(format!("chunkah-layer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/hostname"), b"chunkah\n").unwrap();
        let tree = crate::walk::walk_dir(&dir).unwrap();
        let entries: Vec<&Entry> = tree.entries.iter().collect();
        let cancel = AtomicBool::new(false);
        let write = |compression, clamp| {
            let settings = LayerSettings {
                compression,
                chunker: Chunker::auto(ChunkerConfig::default()),
                content: ContentSource::Dir(&dir),
                clamp,
                cancel: &cancel,
            };
            write_layer(Vec::new(), Path::new("mem"), &entries, &settings)
        };
        let (plain, plain_info) = write(Compression::None, Some(0)).unwrap();
        assert_eq!(plain_info.digest, plain_info.diff_id);
        assert_eq!(plain_info.digest, Digest::of(&plain));
        for compression in [
            Compression::Zstd(3),
            Compression::SeekableZstd(3),
            Compression::Gzip(6),
        ] {
            let (blob, info) = write(compression, Some(0)).unwrap();
            let (again, _) = write(compression, Some(0)).unwrap();
            assert_eq!(blob, again, "{compression:?} is not reproducible");
            assert_eq!(info.digest, Digest::of(&blob));
            assert_eq!(info.diff_id, plain_info.diff_id);
            let tar: Vec<u8> = match compression {
                Compression::Zstd(_) | Compression::SeekableZstd(_) => {
                    zstd::decode_all(&blob[..]).unwrap()
                }
                _ => {
                    let mut v = Vec::new();
                    flate2::read::GzDecoder::new(&blob[..])
                        .read_to_end(&mut v)
                        .unwrap();
                    v
                }
            };
            assert_eq!(tar, plain);
        }
        // Same size, new content: caught by the modification time.
        std::fs::write(dir.join("etc/hostname"), b"chunkaH\n").unwrap();
        let t = std::fs::File::options()
            .write(true)
            .open(dir.join("etc/hostname"))
            .unwrap();
        t.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000))
            .unwrap();
        let err = write(Compression::None, None).unwrap_err().to_string();
        assert!(err.contains("modified after it was walked"), "{err}");
        std::fs::write(dir.join("etc/hostname"), b"longer now\n").unwrap();
        let err = write(Compression::None, None).unwrap_err().to_string();
        assert!(
            err.contains("etc/hostname") && err.contains("changed while being read"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn seekable_layers_have_one_frame_per_chunk_and_an_index() {
        let dir = std::env::temp_dir().join(format!("chunkah-seekable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d")).unwrap();
        let big = crate::chunker::golden_input(7, 3 << 20);
        std::fs::write(dir.join("d/big"), &big).unwrap();
        std::fs::write(dir.join("d/small"), b"small file").unwrap();
        std::fs::write(dir.join("d/empty"), b"").unwrap();
        let tree = crate::walk::walk_dir(&dir).unwrap();
        let entries: Vec<&Entry> = tree.entries.iter().collect();
        let chunker = Chunker::auto(ChunkerConfig::default());
        let settings = LayerSettings {
            compression: Compression::SeekableZstd(3),
            chunker,
            content: ContentSource::Dir(&dir),
            clamp: Some(0),
            cancel: &AtomicBool::new(false),
        };
        let (blob, info) = write_layer(Vec::new(), Path::new("mem"), &entries, &settings).unwrap();
        let loc = info.index.unwrap();
        assert_eq!(loc.offset + loc.length, blob.len() as u64);
        let raw = &blob[loc.offset as usize..];
        assert_eq!(Digest::of(raw), loc.digest);
        let index = index::ChunkIndex::decode(raw, "mem").unwrap();
        let tar = zstd::decode_all(&blob[..]).unwrap();
        assert_eq!(index.tar_size(), tar.len() as u64);
        assert_eq!(index.data_size(), loc.offset);
        assert_eq!(Digest::of(&tar), info.diff_id);
        // Every frame decompresses alone to its bytes of the tar.
        for f in &index.frames {
            let frame = &blob[f.blob_offset as usize..(f.blob_offset + f.blob_len) as usize];
            let bytes = zstd::decode_all(frame).unwrap();
            let want = &tar[f.tar_offset as usize..(f.tar_offset + f.tar_len) as usize];
            assert_eq!(bytes, want);
            assert_eq!(crate::ChunkId::of(&bytes), f.id);
        }
        // The big file's frames are its chunks, as the chunker cuts them.
        let files: Vec<_> = index.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(files, [Path::new("d/big"), Path::new("d/small")]);
        let big_file = &index.files[0];
        let ids: Vec<_> = index.frames[big_file.first_frame..][..big_file.frame_count]
            .iter()
            .map(|f| f.id)
            .collect();
        let want: Vec<_> = crate::chunker::digest_chunks(&big, &chunker.chunks(&big))
            .iter()
            .map(|c| c.id)
            .collect();
        assert!(want.len() > 10);
        assert_eq!(ids, want);
        assert_eq!(index.frames.last().unwrap().kind, index::FrameKind::Trailer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
