//! The apply job: rebuild NEW from OLD and only the byte ranges of NEW the
//! plan asks for.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::{ImageReader, ImageRef, ImageWriter};

use super::context::{Event, JobContext};
use crate::update::{self, ApplyOptions, ApplyReport};

/// An apply job.
#[derive(Clone, Debug)]
pub struct ApplyJob {
    /// The image held locally (a registry image works too: the layers whose
    /// frames are reused are then downloaded whole).
    pub from: ImageRef,
    /// Where NEW's bytes are read (only the planned ranges).
    pub source: ImageRef,
    /// Where the rebuilt image goes: a layout (may be OLD's).
    pub dest: ImageRef,
    /// How the plan is made and fetched.
    pub options: ApplyOptions,
}

/// What an apply job did: the report `chunkah apply --json` prints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOutcome {
    /// What was read and written.
    #[serde(flatten)]
    pub report: ApplyReport,
    /// Where the image was written, with its tag.
    #[serde(skip)]
    pub reference: String,
    /// What went over the network, for a registry source.
    #[cfg(feature = "registry")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire: Option<crate::registry::Stats>,
}

/// Runs an apply job. A failed job leaves the destination as it was: no
/// tag, no blob it added, no directory it created. [`Event::BlobWritten`]
/// counts the new image's blobs in place; the cancel flag stops the job
/// between blobs.
pub fn apply(job: &ApplyJob, ctx: &JobContext<'_>) -> Result<ApplyOutcome> {
    ctx.validate()?;
    if !matches!(job.dest, ImageRef::Layout { .. }) {
        return Err(Error::unsupported(
            &job.dest,
            "apply writes to an oci:DIR[:TAG] layout",
        ));
    }
    job.options.validate()?;
    let old = ctx.open_image(&job.from)?;
    ctx.emit(Event::Opening {
        image: job.source.to_string(),
    });
    let source = ImageReader::open_with(&job.source, &ctx.store)?;
    let writer = ImageWriter::open(&job.dest, &ctx.store)?;
    let progress = |done, total| {
        ctx.emit(Event::BlobWritten { done, total });
        ctx.check_cancel()
    };
    let report = update::apply(
        &old,
        &source,
        &ctx.architecture,
        writer.layout(),
        writer.tag(),
        job.options,
        &progress,
    )?;
    let outcome = writer.finish()?;
    Ok(ApplyOutcome {
        report,
        reference: outcome.reference,
        #[cfg(feature = "registry")]
        wire: source.registry_stats(),
    })
}
