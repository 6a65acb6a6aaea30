//! Packing into an OCI archive written as one stream: into any writer (the
//! CLI gives stdout, so that `chunkah build … | podman load` works) or into
//! a file, plain or gzip-wrapped, the image named (the
//! `org.opencontainers.image.ref.name` `podman load` tags it with) or not.
//!
//! The image is packed into a scratch layout first, then written out as an
//! archive; a file target is written beside itself and renamed over it
//! once complete, so a failed run leaves nothing there. The library never
//! touches the process's standard streams: a caller wanting stdout passes it.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::context::JobContext;
use super::input::Input;
use super::pack::{pack_with, PackJob, PackOptions, PackReport};
use crate::error::{Error, Result};
use crate::oci::archive::write_archive_to;
use crate::oci::layout::LayoutWriter;
use crate::store::{referrers_tag, ImageRef, ImageWriter, Transport};

/// Where the archive goes.
pub enum ArchiveTarget<'a> {
    /// A stream the caller owns (standard output, a pipe, a socket), written
    /// in order and flushed; `name` names it in errors and in the report.
    Stream {
        /// The stream.
        out: &'a mut dyn Write,
        /// What to call it (`stdout`).
        name: String,
    },
    /// A file, replaced once the archive is complete.
    File(PathBuf),
}

impl std::fmt::Display for ArchiveTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveTarget::Stream { name, .. } => write!(f, "{name}"),
            ArchiveTarget::File(p) => {
                write!(f, "{}{}", Transport::OciArchive.prefix(), p.display())
            }
        }
    }
}

impl std::fmt::Debug for ArchiveTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveTarget::Stream { name, .. } => {
                f.debug_struct("Stream").field("name", name).finish()
            }
            ArchiveTarget::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// A pack job whose image is written as one archive stream.
#[derive(Clone, Debug)]
pub struct ArchiveJob {
    /// The root file system.
    pub source: Input,
    /// The image's name in the archive's index (`None`: unnamed).
    pub name: Option<String>,
    /// Wrap the whole archive in gzip at this level (0 to 9).
    pub gzip: Option<u32>,
    /// What to make of the tree.
    pub options: PackOptions,
}

/// The tag the scratch layout holds the image under.
const SCRATCH_TAG: &str = "latest";

/// Runs `job`: packs the source, then writes the archive to `target`.
/// The image is laid out first in the context's scratch directory.
pub fn pack_archive(
    job: &ArchiveJob,
    target: ArchiveTarget<'_>,
    ctx: &JobContext<'_>,
) -> Result<PackReport> {
    if let Some(level) = job.gzip.filter(|&l| l > 9) {
        return Err(Error::Config(format!(
            "gzip level {level} is out of range 0..=9"
        )));
    }
    if let ArchiveTarget::File(file) = &target {
        // Its directory must be there before any work is done.
        crate::io::beside(file, "archive")?;
    }
    let scratch = ctx.scratch_dir("writing an archive stream")?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch.join(format!("chunkah-archive-{}-{n}", std::process::id()));
    let _gone = RemoveOnDrop(dir.clone());
    let tag = job.name.clone().unwrap_or_else(|| SCRATCH_TAG.to_string());
    job.options.validate()?;
    let mut report = pack_with(
        &PackJob {
            source: job.source.clone(),
            dest: ImageRef::Layout {
                dir: dir.clone(),
                tag: Some(tag.clone()),
            },
            options: job.options.clone(),
        },
        ctx,
        ImageWriter::open_scratch_layout(&dir, &tag)?,
    )?;
    if job.name.is_none() {
        LayoutWriter::open(&dir)?.untag(&tag)?;
    }
    let shown = target.to_string();
    match target {
        ArchiveTarget::Stream { out, name } => {
            let mut out = BufWriter::with_capacity(1 << 20, out);
            write_stream(&dir, &mut out, job.gzip, Path::new(&name))?;
            out.flush().map_err(|e| Error::io(&name, e))?;
        }
        ArchiveTarget::File(file) => write_file(&dir, &file, job.gzip)?,
    }
    // The referrers went into the scratch layout, tagged there by subject.
    for referrer in &mut report.sboms {
        referrer.reference = format!("{shown} ({})", referrers_tag(&referrer.subject));
    }
    report.reference = match &job.name {
        Some(name) => format!("{shown} ({name})"),
        None => shown,
    };
    Ok(report)
}

fn write_stream(dir: &Path, out: &mut dyn Write, gzip: Option<u32>, name: &Path) -> Result<()> {
    match gzip {
        None => write_archive_to(dir, out, name),
        Some(level) => {
            let mut gz = flate2::GzBuilder::new().write(out, flate2::Compression::new(level));
            write_archive_to(dir, &mut gz, name)?;
            gz.finish().map_err(|e| Error::io(name, e))?;
            Ok(())
        }
    }
}

fn write_file(dir: &Path, file: &Path, gzip: Option<u32>) -> Result<()> {
    let temp = crate::io::beside(file, "archive")?;
    let _gone = RemoveOnDrop(temp.clone());
    let io = |e| Error::io(&temp, e);
    let f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, f);
    write_stream(dir, &mut out, gzip, &temp)?;
    out.flush().map_err(io)?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    // Not while another run reads the archive to add an image to it.
    let _lock = crate::oci::archive::ArchiveLock::acquire(file)?;
    std::fs::rename(&temp, file).map_err(|e| Error::io(file, e))
}

/// Removes a scratch directory or file when dropped (if it is still there).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.0) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir_all(&self.0);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&self.0);
            }
            Err(_) => {}
        }
    }
}
