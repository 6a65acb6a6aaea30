//! What every job runs with: where scratch files go and how registries are
//! reached, how many threads it uses, the architecture it reads and makes
//! images for, a flag that stops it, and whom it tells where it is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::oci::types::host_architecture;
use crate::store::{ImageRef, OpenImage, StoreConfig};

/// Where a job is, as it tells its [`JobContext::events`] listener.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An image is being opened: its manifest, config and chunk indexes
    /// read (diff, apply, report, delta).
    Opening {
        /// The image's reference.
        image: String,
    },
    /// Reading a pack source began (walking a directory, reading a
    /// tarball, downloading and applying an image's layers): its size is
    /// not known yet.
    Reading,
    /// The tree was walked.
    Walked {
        /// Entries in the tree: files, directories, links and devices.
        entries: usize,
        /// Bytes of regular-file content.
        bytes: u64,
    },
    /// Layers were planned.
    Planned {
        /// Layers the image will have.
        layers: usize,
    },
    /// One more layer is written.
    LayerWritten {
        /// Content bytes in it.
        bytes: u64,
    },
    /// Every layer is written; the image is being published (an archive
    /// written, or pushed to a registry).
    Publishing,
    /// The image is published; a binary delta from an older version is
    /// being made.
    MakingDelta {
        /// The older version.
        base: String,
    },
    /// The image is published; an SBOM is being published beside it.
    PublishingSbom {
        /// Its format (`spdx-json`, `cyclonedx-json`).
        format: &'static str,
    },
    /// Parts of a binary delta compressed so far, of all it will have.
    DeltaParts {
        /// Parts compressed so far.
        done: u64,
        /// Parts the delta will have.
        total: u64,
    },
    /// One more step of a series is planned (report).
    StepPlanned {
        /// Steps planned so far.
        done: usize,
        /// Steps in the series (one fewer than its images).
        total: usize,
    },
    /// One more blob of the new image is in place (apply): kept, fetched or
    /// rebuilt.
    BlobWritten {
        /// Blobs in place so far (the config first).
        done: usize,
        /// Blobs of the new image: its config and layers.
        total: usize,
    },
}

/// What every job runs with. [`JobContext::default`] is what a caller
/// most often wants: no scratch directory, one thread per core, the
/// host's architecture, never cancelled, no one listening.
///
/// ```
/// use chunkah::jobs::{Event, JobContext};
/// use chunkah::store::StoreConfig;
///
/// let seen = std::sync::Mutex::new(Vec::new());
/// let listen = |e: &Event| seen.lock().unwrap().push(e.clone());
/// let ctx = JobContext {
///     store: StoreConfig { scratch_dir: Some(std::env::temp_dir()), ..StoreConfig::default() },
///     threads: Some(2),
///     architecture: "arm64".into(),
///     ..JobContext::default()
/// }
/// .with_events(&listen);
/// assert_eq!(ctx.architecture, "arm64");
/// ```
#[derive(Clone)]
pub struct JobContext<'a> {
    /// How registries are reached, and where scratch files go (decompressed
    /// layers and tarballs, downloaded blobs, an image laid out before it
    /// is pushed or written as an archive).
    pub store: StoreConfig,
    /// Worker threads; `None`: one per core.
    pub threads: Option<usize>,
    /// The platform architecture (a GOARCH name: `amd64`, `arm64`, ...):
    /// images given as an index are read for it, and a tree is packed as
    /// it. By default the host's.
    pub architecture: String,
    /// Set it to stop the job: it then fails with [`Error::Cancelled`],
    /// publishing nothing and leaving no partial blob behind.
    pub cancel: Arc<AtomicBool>,
    /// Hears where the job is (from the job's threads, hence `Sync`).
    pub events: &'a (dyn Fn(&Event) + Sync),
}

impl Default for JobContext<'static> {
    fn default() -> Self {
        JobContext {
            store: StoreConfig::default(),
            threads: None,
            architecture: host_architecture().to_string(),
            cancel: Arc::new(AtomicBool::new(false)),
            events: &|_| {},
        }
    }
}

impl std::fmt::Debug for JobContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("store", &self.store)
            .field("threads", &self.threads)
            .field("architecture", &self.architecture)
            .field("cancel", &self.cancel)
            .finish_non_exhaustive()
    }
}

impl<'a> JobContext<'a> {
    /// A copy of the context (the same cancel flag) telling `events` where
    /// the job is.
    pub fn with_events<'b>(&self, events: &'b (dyn Fn(&Event) + Sync)) -> JobContext<'b> {
        JobContext {
            store: self.store.clone(),
            threads: self.threads,
            architecture: self.architecture.clone(),
            cancel: self.cancel.clone(),
            events,
        }
    }

    /// An [`Error::Config`] if a setting is out of range.
    pub fn validate(&self) -> Result<()> {
        if self.threads == Some(0) {
            return Err(Error::Config("threads must be at least 1".into()));
        }
        if self.architecture.is_empty() {
            return Err(Error::Config("the architecture is empty".into()));
        }
        Ok(())
    }

    /// Tells the listener.
    pub(crate) fn emit(&self, event: Event) {
        (self.events)(&event);
    }

    /// [`Error::Cancelled`] once the cancel flag is set.
    pub(crate) fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Opens `image` for planning (for the context's architecture), telling
    /// the listener; cancelled before it starts if the flag is set.
    pub(crate) fn open_image(&self, image: &ImageRef) -> Result<OpenImage> {
        self.check_cancel()?;
        self.emit(Event::Opening {
            image: image.to_string(),
        });
        OpenImage::open(image, &self.store, &self.architecture)
    }

    /// The store's scratch directory, which `what` (an action, "reading a
    /// compressed tarball") needs: an [`Error::Config`] saying so when
    /// there is none.
    pub(crate) fn scratch_dir(&self, what: &str) -> Result<&std::path::Path> {
        self.store
            .scratch_dir
            .as_deref()
            .ok_or_else(|| Error::Config(format!("{what} needs a scratch directory")))
    }

    /// A pool of [`JobContext::threads`] workers.
    pub(crate) fn worker_pool(&self) -> Result<rayon::ThreadPool> {
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Config(format!("starting {threads} threads: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_threads_and_no_architecture_are_config_errors() {
        assert!(JobContext::default().validate().is_ok());
        let zero = JobContext {
            threads: Some(0),
            ..JobContext::default()
        };
        assert!(matches!(zero.validate(), Err(Error::Config(_))));
        let none = JobContext {
            architecture: String::new(),
            ..JobContext::default()
        };
        assert!(matches!(none.validate(), Err(Error::Config(_))));
    }

    #[test]
    fn a_missing_scratch_directory_names_what_needs_it() {
        let err = JobContext::default()
            .scratch_dir("reading a compressed tarball")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            Error::Config("reading a compressed tarball needs a scratch directory".into())
                .to_string()
        );
        let dir = std::env::temp_dir();
        let ctx = JobContext {
            store: StoreConfig {
                scratch_dir: Some(dir.clone()),
                ..StoreConfig::default()
            },
            ..JobContext::default()
        };
        assert_eq!(ctx.scratch_dir("x").unwrap(), dir.as_path());
    }

    #[test]
    fn events_reach_the_listener_and_cancel_is_seen() {
        let seen = std::sync::Mutex::new(Vec::new());
        let listen = |e: &Event| seen.lock().unwrap().push(e.clone());
        let ctx = JobContext::default().with_events(&listen);
        ctx.emit(Event::Publishing);
        assert_eq!(*seen.lock().unwrap(), vec![Event::Publishing]);
        assert!(ctx.check_cancel().is_ok());
        ctx.cancel.store(true, Ordering::Relaxed);
        assert!(matches!(ctx.check_cancel(), Err(Error::Cancelled)));
    }
}
