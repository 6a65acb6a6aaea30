//! The sbom job: the packages of a root file system as an SPDX 2.3 or
//! CycloneDX 1.6 JSON document.

use serde::Serialize;

use super::context::{Event, JobContext};
use super::input::Input;
use crate::error::Result;
use crate::oci::flatten::flatten;
use crate::sbom::{cyclonedx_json, inventory_of, spdx_json, Inventory, Subject, TreeFiles};
use crate::store::ImageReader;
use crate::walk::walk_tar;

/// The document formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    #[serde(rename = "spdx-json")]
    SpdxJson,
    /// CycloneDX 1.6 JSON.
    #[serde(rename = "cyclonedx-json")]
    CycloneDxJson,
}

impl SbomFormat {
    /// The media type of a document of this format (an OCI referrer's
    /// `artifactType`).
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::SpdxJson => "application/spdx+json",
            SbomFormat::CycloneDxJson => "application/vnd.cyclonedx+json",
        }
    }
}

/// An sbom job.
#[derive(Clone, Debug)]
pub struct SbomJob {
    /// The tree: a directory, a tarball, or an image (its layers applied,
    /// its manifest's digest the document's subject).
    pub input: Input,
    /// The document's format.
    pub format: SbomFormat,
    /// The document's date; without it, the newest packaged file's mtime,
    /// so that the same tree gives the same bytes.
    pub source_date_epoch: Option<i64>,
}

/// A document and what it holds.
#[derive(Clone, Debug, Serialize)]
pub struct SbomDocument {
    /// The format.
    pub format: SbomFormat,
    /// Its media type.
    pub media_type: &'static str,
    /// Packages listed.
    pub packages: usize,
    /// Regular files listed with their digests, over all packages.
    pub files: usize,
    /// The document, JSON with a final newline.
    #[serde(skip)]
    pub text: String,
}

/// Runs an sbom job: reads the tree's package databases and hashes the
/// files the packages list, on the context's threads.
pub fn sbom(job: &SbomJob, ctx: &JobContext<'_>) -> Result<SbomDocument> {
    ctx.validate()?;
    ctx.check_cancel()?;
    ctx.emit(Event::Reading);
    let inventory = ctx.worker_pool()?.install(|| inventory(job, ctx))?;
    ctx.check_cancel()?;
    let text = match job.format {
        SbomFormat::SpdxJson => spdx_json(&inventory),
        SbomFormat::CycloneDxJson => cyclonedx_json(&inventory),
    };
    Ok(SbomDocument {
        format: job.format,
        media_type: job.format.media_type(),
        packages: inventory.packages.len(),
        files: inventory.packages.iter().map(|p| p.files.len()).sum(),
        text,
    })
}

/// The inventory of the job's input, read where it is.
fn inventory(job: &SbomJob, ctx: &JobContext<'_>) -> Result<Inventory> {
    let mut subject = Subject {
        name: job.input.to_string(),
        digest: None,
        created: job.source_date_epoch,
    };
    let scratch = || ctx.scratch_dir(&format!("reading {}", job.input));
    match &job.input {
        Input::Dir(root) => inventory_of(TreeFiles::Dir(root), subject),
        Input::Tar(file) => {
            let (tree, content) = walk_tar(file, scratch()?)?;
            inventory_of(
                TreeFiles::Tar {
                    tree: &tree,
                    content: &content,
                },
                subject,
            )
        }
        Input::Image(r) => {
            let reader = ImageReader::open_with(r, &ctx.store)?;
            let image = reader.image(&ctx.architecture)?;
            let (tree, content) = flatten(
                &r.to_string(),
                &image,
                |d| reader.blob(&d.digest, d.size),
                scratch()?,
                &ctx.cancel,
            )?;
            subject.digest = Some(image.descriptor.digest);
            inventory_of(
                TreeFiles::Tar {
                    tree: &tree,
                    content: &content,
                },
                subject,
            )
        }
    }
}
