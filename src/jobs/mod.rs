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
//! - [`sbom()`]: the packages of a tree as an SPDX or CycloneDX document,
//!   [`attach_sbom()`] published beside its image;
//! - [`pack_archive()`]: [`pack()`] into one OCI archive stream (a file or
//!   any writer), as `chunkah build` writes it.
//!
//! The jobs are the one place that knows every stage: they read sources
//! through `store`, plan layers with `grouping` and
//! updates with `update`, make deltas with `delta`, and
//! write with `layer` and `oci`.

mod apply;
mod archive;
mod context;
pub mod coreos;
mod delta;
mod diff;
mod input;
mod pack;
mod package_list;
mod packages;
mod referrer;
mod report;
mod sbom;

pub use apply::{apply, ApplyJob, ApplyOutcome};
pub use archive::{pack_archive, ArchiveJob, ArchiveTarget};
pub use context::{Event, JobContext};
pub use coreos::Dialect;
pub use delta::{delta, DeltaJob, DeltaReport};
pub use diff::{diff, ByteUnit, DiffJob, DiffReport, PlanDelta, PlanFile};
pub use input::Input;
pub use pack::{
    pack, prior_components, LayerReport, PackJob, PackOptions, PackReport, COMPONENTS_ANNOTATION,
    MAX_LAYERS, OSTREE_COMPONENTS_ANNOTATION,
};
pub use packages::{
    LevelBytes, PackageCost, PackageReport, PackageStatus, SeriesPackage, SeriesPackages,
};
pub use referrer::EMPTY_MEDIA_TYPE;
pub use report::{report, ReportJob, SeriesReport, Step};
pub use sbom::{attach_sbom, sbom, SbomDocument, SbomFormat, SbomJob, SbomReferrer};

// What the jobs take and return from the stages below them: the options they
// pass down and the records their reports carry.
pub use crate::delta::make::{DeltaConfig, MakeStats};
pub use crate::grouping::Assignments;
pub use crate::layer::Compression;
pub use crate::store::PushReport;
pub use crate::update::apply::DeltaUse;
pub use crate::update::rebuild::Fallback;
pub use crate::update::{ApplyOptions, ApplyReport, RequestOptions};
pub use crate::walk::Prune;

/// What a plan and a diff report hold: the levels, every blob's action, and
/// the OCI and chunk-index records they name (as serialised in plan files).
pub mod plan {
    pub use crate::layer::index::{
        ChunkIndex, Frame, FrameKey, FrameKind, IndexLocation, IndexedFile, TrailerKeys,
    };
    pub use crate::oci::types::{Descriptor, Manifest, Platform, RuntimeConfig};
    #[cfg(feature = "registry")]
    pub use crate::registry::Stats;
    pub use crate::store::view::IndexRange;
    pub use crate::update::{BlobAction, BlobPlan, Level, Levels, UpdatePlan};
}
