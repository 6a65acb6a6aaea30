//! I/O helpers the stages share: regions of files read in place, nameless
//! scratch files, decompression of sniffed streams, atomic replacement of a
//! file, advisory locks on lock files.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The compression a stream starts with, from its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamCompression {
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// Anything else: taken as plain tar.
    None,
}

impl StreamCompression {
    /// Recognises the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            StreamCompression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            StreamCompression::Zstd
        } else {
            StreamCompression::None
        }
    }
}

/// A decompressing reader whose input can be taken back.
pub enum Decoder<R: std::io::BufRead> {
    /// gzip, every member.
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    /// zstd, every frame.
    Zstd(zstd::stream::read::Decoder<'static, R>),
    /// No compression.
    Plain(R),
}

impl<R: std::io::BufRead> Decoder<R> {
    /// A decoder for `compression` over `input`.
    pub fn new(compression: StreamCompression, input: R) -> std::io::Result<Self> {
        Ok(match compression {
            StreamCompression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(input)),
            StreamCompression::Zstd => {
                Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(input)?)
            }
            StreamCompression::None => Decoder::Plain(input),
        })
    }

    /// The input, where the decoder left it.
    pub fn into_inner(self) -> R {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
            Decoder::Plain(r) => r,
        }
    }
}

impl<R: std::io::BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Plain(r) => r.read(buf),
        }
    }
}

/// Reads a region of a file with positioned reads.
#[derive(Debug)]
pub struct RegionReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl<'a> RegionReader<'a> {
    /// `size` bytes of `file` from `offset`.
    pub fn new(file: &'a File, offset: u64, size: u64) -> Self {
        RegionReader {
            file,
            pos: offset,
            end: offset.saturating_add(size),
        }
    }
}

impl Read for RegionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file ends inside the blob",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A file in `dir` with no name: it disappears when closed, even after a crash.
pub fn anonymous_file(dir: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
        .or_else(|_| {
            // File systems without O_TMPFILE: create, then unlink at once.
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let p = dir.join(format!(
                ".chunkah-scratch-{}-{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)?;
            std::fs::remove_file(&p)?;
            Ok(f)
        })
        .map_err(|e| Error::io(dir, e))
}

/// Passes a stream through, writing a copy of what is read.
pub struct Tee<'a, R> {
    /// The stream read.
    pub inner: R,
    /// Where the copy goes.
    pub copy: &'a mut File,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Write;
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Writes `bytes` to `path` by writing a temporary file beside it and
/// renaming it over `path`: readers see the old file or the new one, never a
/// part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = temp_name(parent_dir(path));
    let result = (|| {
        let mut f = File::options().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// The directory `path` is in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A scratch name beside `file`, for what is made there before it replaces
/// or accompanies `file`: `.NAME.chunkah-WHAT-PID`.
pub fn beside(file: &Path, what: &str) -> Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} is not a file name", file.display())))?;
    Ok(parent_dir(file).join(format!(
        ".{}.chunkah-{what}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// A name for a temporary file in `dir`, unique in this process and
/// distinct from other processes' (`.tmp-chunkah-PID-N`).
pub fn temp_name(dir: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    dir.join(format!(
        ".tmp-chunkah-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// How a [`FileLock`] is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// With other shared holders; excludes exclusive ones.
    Shared,
    /// With no other holder.
    Exclusive,
}

/// An advisory lock (`flock(2)`) on a lock file, held while the value lives.
///
/// The lock is always on the file that is at the path once the lock is
/// taken: a holder may remove the file (or the directory it is in) before it
/// lets go, and a run that was waiting on the removed file then tries again
/// on the path's new file.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock on the file at `path` (created if missing) in `mode`,
    /// waiting for holders of a conflicting lock. A missing directory is an
    /// error of kind `NotFound`.
    pub fn acquire(path: &Path, mode: LockMode) -> std::io::Result<FileLock> {
        loop {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            match mode {
                LockMode::Shared => file.lock_shared()?,
                LockMode::Exclusive => file.lock()?,
            }
            if same_file(&file, path)? {
                return Ok(FileLock {
                    file,
                    path: path.to_path_buf(),
                });
            }
            // Removed or replaced while this run waited: the lock guards
            // nothing any more.
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns the lock exclusive if no one else holds it, without waiting:
    /// `false` if someone does. Either way the lock held before is let go
    /// first (`flock(2)` converts a lock that way): hold it again with
    /// [`FileLock::relock`].
    pub fn try_exclusive(&self) -> std::io::Result<bool> {
        match self.file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Holds the lock in `mode` again (after [`FileLock::try_exclusive`]),
    /// waiting for conflicting holders.
    pub fn relock(&self, mode: LockMode) -> std::io::Result<()> {
        match mode {
            LockMode::Shared => self.file.lock_shared(),
            LockMode::Exclusive => self.file.lock(),
        }
    }
}

/// Whether `file` is still the file at `path`.
fn same_file(file: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
