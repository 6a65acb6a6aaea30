//! The delta job: a binary delta from OLD to NEW, published beside NEW as
//! an OCI artifact whose `subject` is NEW's manifest.

use serde::Serialize;

use crate::delta::format::{BASE_ANNOTATION, DELTA_MEDIA_TYPE, LOOKUP_KEYS};
use crate::delta::make::{make, DeltaConfig, MakeStats};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::index::IndexLocation;
use crate::oci::layout::LayoutWriter;
use crate::oci::types::Descriptor;
use crate::store::view::OpenImage;
use crate::store::{ImageRef, ImageWriter};

use super::context::{Event, JobContext};
use super::referrer::{list_artifact, Artifact};

/// A delta job.
#[derive(Clone, Debug)]
pub struct DeltaJob {
    /// The image clients hold.
    pub old: ImageRef,
    /// The image they want.
    pub new: ImageRef,
    /// Where the delta goes: a layout (NEW's own, typically), an archive or
    /// a registry repository (NEW's).
    pub dest: ImageRef,
    /// How parts are compressed.
    pub config: DeltaConfig,
}

/// What a delta job made: the report `chunkah delta --json` prints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaReport {
    /// Format of this report.
    pub schema_version: u32,
    /// OLD's manifest digest.
    pub base: Digest,
    /// NEW's manifest digest.
    pub target: Digest,
    /// The delta artifact's manifest digest.
    pub manifest: Digest,
    /// The delta blob's size (parts and lookup).
    pub size: u64,
    /// Of `size`, the lookup's.
    pub lookup_bytes: u64,
    /// Parts.
    pub parts: usize,
    /// What the parts cover, and how their old files were found.
    pub stats: MakeStats,
    /// Where the delta was published (the referrers index's reference).
    pub reference: String,
}

impl DeltaReport {
    /// The `schemaVersion` this build writes.
    pub const SCHEMA_VERSION: u32 = 1;
}

/// Runs a delta job: [`Event::DeltaParts`] counts parts compressed; the
/// context's cancel flag stops it before anything is published.
pub fn delta(job: &DeltaJob, ctx: &JobContext<'_>) -> Result<DeltaReport> {
    job.config.validate()?;
    ctx.validate()?;
    let old = ctx.open_image(&job.old)?;
    let new = ctx.open_image(&job.new)?;
    if !new.view.layers.iter().any(|l| l.index.is_some()) {
        return Err(Error::unsupported(
            &job.new,
            "no layer has a chunk index (pack it with --compression zstd)",
        ));
    }
    let subject = new.image.descriptor.digest;
    // A delta from the same base replaces the one listed before; deltas
    // from other bases are kept: a layout's or an archive's index is merged
    // while its tag is replaced (under the layout's lock), a registry's
    // when the delta is pushed.
    let writer = ImageWriter::open_referrers(&job.dest, &subject, &[BASE_ANNOTATION], &ctx.store)?;
    let layout = writer.layout();
    let blob = write_delta_blob(layout, &old, &new, job.config, ctx)?;
    let manifest_desc = list_artifact(
        layout,
        writer.tag(),
        Artifact {
            artifact_type: DELTA_MEDIA_TYPE,
            layers: vec![blob.descriptor.clone()],
            subject: &new.image.descriptor,
            annotations: base_annotations(&old),
            same_annotations: &[BASE_ANNOTATION],
        },
    )?;
    let outcome = writer.finish()?;
    Ok(DeltaReport {
        schema_version: DeltaReport::SCHEMA_VERSION,
        base: old.image.descriptor.digest,
        target: subject,
        manifest: manifest_desc.digest,
        size: blob.descriptor.size,
        lookup_bytes: blob.lookup_len,
        parts: blob.parts,
        stats: blob.stats,
        reference: outcome.reference,
    })
}

/// The delta blob as written to the layout.
struct DeltaBlob {
    /// Its descriptor, annotated with where its lookup is.
    descriptor: Descriptor,
    /// The lookup's length.
    lookup_len: u64,
    /// Its parts.
    parts: usize,
    stats: MakeStats,
}

/// Makes the delta from `old` to `new` on the context's workers (counting
/// parts in [`Event::DeltaParts`]) and writes it, its lookup last, as a
/// blob of `layout`.
fn write_delta_blob(
    layout: &LayoutWriter,
    old: &OpenImage,
    new: &OpenImage,
    config: DeltaConfig,
    ctx: &JobContext<'_>,
) -> Result<DeltaBlob> {
    let pool = ctx.worker_pool()?;
    let mut blob = layout.temp_blob()?;
    let path = blob.path().to_path_buf();
    let progress = |done, total| {
        ctx.emit(Event::DeltaParts { done, total });
        ctx.check_cancel()
    };
    let (lookup, stats) =
        pool.install(|| make(old, new, config, blob.writer(), &path, &progress))?;
    let lookup_bytes = lookup.encode();
    std::io::Write::write_all(blob.writer(), &lookup_bytes).map_err(|e| Error::io(&path, e))?;
    let (digest, size) = layout.commit(blob)?;
    let location = IndexLocation {
        offset: lookup.parts_size(),
        length: lookup_bytes.len() as u64,
        digest: Digest::of(&lookup_bytes),
    };
    let mut annotations = Default::default();
    location.annotate_as(&LOOKUP_KEYS, &mut annotations);
    Ok(DeltaBlob {
        descriptor: Descriptor {
            media_type: DELTA_MEDIA_TYPE.into(),
            digest,
            size,
            artifact_type: None,
            annotations,
            platform: None,
        },
        lookup_len: lookup_bytes.len() as u64,
        parts: lookup.parts.len(),
        stats,
    })
}

/// The annotations naming OLD as a delta's base.
fn base_annotations(old: &OpenImage) -> std::collections::BTreeMap<String, String> {
    [(
        BASE_ANNOTATION.to_string(),
        old.image.descriptor.digest.to_string(),
    )]
    .into()
}
