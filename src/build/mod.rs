//! The jobs: one library call each, typed options in, a typed report out.
//!
//! - [`pack()`]: a directory, tarball or image becomes an image in a layout,
//!   an archive or a registry;
//! - [`diff()`]: what a client holding one image (or tree) downloads to get
//!   another, at every level, and the plan of byte ranges;
//! - [`apply()`]: rebuild the new image from the old one and only the byte
//!   ranges of the new one the plan asks for;
//! - [`report()`]: update bandwidth over a series of versions.
//!
//! The driver is the one place that knows every stage: it reads sources
//! through [`crate::store`], plans with [`crate::pack`] and
//! [`crate::delta`], writes with [`crate::layer`] and [`crate::oci`].

mod apply;
mod archive;
mod base_config;
mod delta;
mod diff;
mod pack;
mod report;

pub use apply::{apply, ApplyJob, ApplyOutcome};
pub use archive::{pack_archive, ArchiveJob, ArchiveTarget};
pub use base_config::{normalize_architecture, BaseConfig, MapEdit};
pub use delta::{delta, DeltaJob, DeltaReport, EMPTY_MEDIA_TYPE};
pub use diff::{diff, DiffInput, DiffJob, DiffReport, PlanFile};
pub use pack::{
    pack, prior_components, LayerReport, PackJob, PackOptions, PackReport, PackSource, Progress,
    COMPONENTS_ANNOTATION, MAX_LAYERS,
};
pub use report::{report, ReportJob, SeriesReport, Step};

/// A pool of `threads` workers (`None`: one per core) for a job.
fn worker_pool(threads: Option<usize>) -> crate::error::Result<rayon::ThreadPool> {
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| crate::error::Error::Config(format!("starting {threads} threads: {e}")))
}
