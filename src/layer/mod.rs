//! Layers: tar archives of entries, compressed, with their digests.

pub mod tar;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::walk::{Entry, EntryKind, TarContent};
use tar::TarWriter;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// zstd at a level (1 to 22; 3 is zstd's default).
    Zstd(i32),
    /// gzip at a level (0 to 9).
    Gzip(u32),
    /// A plain tar.
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(3)
    }
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Zstd(_) => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Gzip(_) => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// Where the content of regular files comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
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
}

enum Encoder<W: Write> {
    Zstd(zstd::stream::Encoder<'static, W>),
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
            Compression::Gzip(level) => {
                // GzBuilder writes mtime 0 and no file name: reproducible.
                Encoder::Gzip(flate2::GzBuilder::new().write(out, flate2::Compression::new(level)))
            }
            Compression::None => Encoder::Plain(out),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

/// Writes the tar of `entries` (read from the tree at `root`) to `out`,
/// compressed, and returns the sink and the layer's digests. mtimes above
/// `clamp` are lowered to it. Errors name the source file when reading fails
/// and `dest` (what `out` writes to) when writing fails. The work stops with
/// [`Error::Cancelled`] once `cancel` is set.
#[allow(clippy::too_many_arguments)]
pub fn write_layer<W: Write>(
    out: W,
    dest: &Path,
    compression: Compression,
    source: Source<'_>,
    entries: &[&Entry],
    clamp: Option<i64>,
    cancel: &AtomicBool,
) -> Result<(W, LayerInfo)> {
    let write_err = |e| Error::io(dest, e);
    let blob = HashingWriter::new(out);
    let encoder = Encoder::new(blob, compression).map_err(write_err)?;
    let mut tar = TarWriter::new(HashingWriter::new(encoder));
    let mut buf = vec![0u8; 256 << 10];
    for entry in entries {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let mtime = clamp.map_or(entry.mtime, |c| entry.mtime.min(c));
        tar.header(entry, mtime).map_err(write_err)?;
        if let EntryKind::Regular { size } = entry.kind {
            match source {
                Source::Dir(root) => copy_exact(
                    &root.join(&entry.path),
                    dest,
                    size,
                    entry.mtime,
                    &mut tar,
                    &mut buf,
                )?,
                Source::Tar(content) => {
                    copy_from_tar(content, entry, dest, size, &mut tar, &mut buf)?
                }
            }
            tar.pad().map_err(write_err)?;
        }
    }
    let tar_hash = tar.finish().map_err(write_err)?;
    let (encoder, diff_id, tar_size) = tar_hash.finish();
    let blob = encoder.finish().map_err(write_err)?;
    let (out, digest, size) = blob.finish();
    Ok((
        out,
        LayerInfo {
            digest,
            size,
            diff_id,
            tar_size,
            media_type: compression.media_type(),
        },
    ))
}

/// Copies the content of `entry` out of a tarball.
fn copy_from_tar<W: Write>(
    content: &TarContent,
    entry: &Entry,
    dest: &Path,
    size: u64,
    tar: &mut TarWriter<W>,
    buf: &mut [u8],
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let (content, mut offset) = content.locate(&entry.path)?;
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = match content.file.read_at(&mut buf[..want], offset) {
            Ok(0) => {
                return Err(Error::io(
                    &content.path,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("truncated in {}", entry.path.display()),
                    ),
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(&content.path, e)),
        };
        tar.content(&buf[..n]).map_err(|e| Error::io(dest, e))?;
        left -= n as u64;
        offset += n as u64;
    }
    Ok(())
}

/// Copies exactly `size` bytes of the regular file at `path` into the layer
/// written to `dest` (named by write errors); a file that is
/// no longer that size, or no longer a regular file, changed while the tree
/// was being read.
fn copy_exact<W: Write>(
    path: &Path,
    dest: &Path,
    size: u64,
    mtime: i64,
    tar: &mut TarWriter<W>,
    buf: &mut [u8],
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let changed = |what: &str| {
        Error::io(
            path,
            io::Error::other(format!("changed while being read ({what})")),
        )
    };
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let before = file.metadata().map_err(|e| Error::io(path, e))?;
    if !before.is_file() {
        return Err(changed("no longer a regular file"));
    }
    if before.mtime() != mtime {
        return Err(changed("modified after it was walked"));
    }
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Err(changed("shorter than when walked")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        tar.content(&buf[..n]).map_err(|e| Error::io(dest, e))?;
        left -= n as u64;
    }
    if file.read(&mut buf[..1]).map_err(|e| Error::io(path, e))? != 0 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_decompress_to_the_same_tar_and_are_reproducible() {
        let dir = std::env::temp_dir().join(format!("chunkah-layer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/hostname"), b"chunkah\n").unwrap();
        let tree = crate::walk::walk_dir(&dir).unwrap();
        let entries: Vec<&Entry> = tree.entries.iter().collect();
        let write = |compression, clamp| {
            write_layer(
                Vec::new(),
                Path::new("mem"),
                compression,
                Source::Dir(&dir),
                &entries,
                clamp,
                &AtomicBool::new(false),
            )
        };
        let (plain, plain_info) = write(Compression::None, Some(0)).unwrap();
        assert_eq!(plain_info.digest, plain_info.diff_id);
        assert_eq!(plain_info.digest, Digest::of(&plain));
        for compression in [Compression::Zstd(3), Compression::Gzip(6)] {
            let (blob, info) = write(compression, Some(0)).unwrap();
            let (again, _) = write(compression, Some(0)).unwrap();
            assert_eq!(blob, again, "{compression:?} is not reproducible");
            assert_eq!(info.digest, Digest::of(&blob));
            assert_eq!(info.diff_id, plain_info.diff_id);
            let tar: Vec<u8> = match compression {
                Compression::Zstd(_) => zstd::decode_all(&blob[..]).unwrap(),
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
}
