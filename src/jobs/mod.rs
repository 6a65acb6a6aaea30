//! The jobs: one library call each, typed options in, a typed report out.
//!
//! - [`pack()`]: a directory, tarball or image becomes an image in a layout,
//!   an archive or a registry;
//! - [`diff()`]: what a client holding one image (or tree) downloads to get
//!   another, at every level, and the plan of byte ranges;
//! - [`apply()`]: rebuild the new image from the old one and only the byte
//!   ranges of the new one the plan asks for;
//! - [`report()`]: update bandwidth over a series of versions;
//! - [`delta()`]: a binary delta from one image to another, published
//!   beside the new one;
//! - [`pack_archive()`]: [`pack()`] into one OCI archive stream (a file or
//!   any writer), as `chunkah build` writes it.
//!
//! The jobs are the one place that knows every stage: they read sources
//! through [`crate::store`], plan layers with [`crate::grouping`] and
//! updates with [`crate::update`], make deltas with [`crate::delta`], and
//! write with [`crate::layer`] and [`crate::oci`].

mod apply;
mod archive;
mod context;
mod delta;
mod diff;
mod input;
mod pack;
mod report;

pub use apply::{apply, ApplyJob, ApplyOutcome};
pub use archive::{pack_archive, ArchiveJob, ArchiveTarget};
pub use context::{Event, JobContext};
pub use delta::{delta, DeltaJob, DeltaReport, EMPTY_MEDIA_TYPE};
pub use diff::{diff, ByteUnit, DiffJob, DiffReport, PlanFile};
pub use input::Input;
pub use pack::{
    pack, prior_components, LayerReport, PackJob, PackOptions, PackReport, COMPONENTS_ANNOTATION,
    MAX_LAYERS,
};
pub use report::{report, ReportJob, SeriesReport, Step};
