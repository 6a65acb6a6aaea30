//! The sbom job: the packages of a root file system as an SPDX 2.3 or
//! CycloneDX 1.6 JSON document.

use serde::Serialize;

use super::context::{Event, JobContext};
use super::input::Input;
use super::referrer::{list_artifact, Artifact};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::flatten::flatten;
use crate::oci::types::Descriptor;
use crate::sbom::{cyclonedx_json, inventory_of, spdx_json, Inventory, Subject, TreeFiles};
use crate::store::{ImageReader, ImageRef, ImageWriter};
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
    /// Its name, as `--format` and `--sbom` take it.
    pub fn name(self) -> &'static str {
        match self {
            SbomFormat::SpdxJson => "spdx-json",
            SbomFormat::CycloneDxJson => "cyclonedx-json",
        }
    }

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
#[serde(rename_all = "camelCase")]
pub struct SbomDocument {
    /// The format.
    pub format: SbomFormat,
    /// Its media type.
    pub media_type: &'static str,
    /// Packages listed.
    pub packages: usize,
    /// Regular files listed with their digests, over all packages.
    pub files: usize,
    /// The image the document is about (its manifest), when the tree is an
    /// image's: what [`attach_sbom`] publishes it beside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// What was wrong in the tree's package databases but did not stop the
    /// document (a package with no version, a database that does not parse
    /// and was left out), each naming the file.
    pub warnings: Vec<String>,
    /// The document, JSON with a final newline.
    #[serde(skip)]
    pub text: String,
}

impl SbomDocument {
    /// The document of `inventory` in `format`, about `subject`.
    pub(crate) fn of(
        inventory: &Inventory,
        format: SbomFormat,
        subject: Option<Descriptor>,
    ) -> Self {
        let text = match format {
            SbomFormat::SpdxJson => spdx_json(inventory),
            SbomFormat::CycloneDxJson => cyclonedx_json(inventory),
        };
        SbomDocument {
            format,
            media_type: format.media_type(),
            packages: inventory.packages.len(),
            files: inventory.packages.iter().map(|p| p.files.len()).sum(),
            subject,
            warnings: inventory.warnings.clone(),
            text,
        }
    }
}

/// An SBOM published beside its image: what [`attach_sbom`] reports.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SbomReferrer {
    /// The document's format.
    pub format: SbomFormat,
    /// The image it is about (its manifest's digest).
    pub subject: Digest,
    /// The artifact's manifest digest.
    pub manifest: Digest,
    /// The document's size in bytes.
    pub size: u64,
    /// Where it was published (the referrers index's reference).
    pub reference: String,
}

/// Runs an sbom job: reads the tree's package databases and hashes the
/// files the packages list, on the context's threads.
pub fn sbom(job: &SbomJob, ctx: &JobContext<'_>) -> Result<SbomDocument> {
    ctx.validate()?;
    ctx.check_cancel()?;
    ctx.emit(Event::Reading);
    let (inventory, subject) = ctx.worker_pool()?.install(|| inventory(job, ctx))?;
    ctx.check_cancel()?;
    Ok(SbomDocument::of(&inventory, job.format, subject))
}

/// Publishes `doc` beside the image it is about, as an OCI artifact whose
/// `subject` is the image and whose `artifactType` is the document's media
/// type, listed in the index of the image's referrers (where deltas are
/// listed too) in `dest`: a layout or an archive (the image's own,
/// typically) or the image's registry repository. A document of the same
/// format listed before is replaced; other referrers are kept.
///
/// # Errors
///
/// [`Error::Config`] when the document is not about an image (made of a
/// directory or a tarball); what writing `dest` gives.
pub fn attach_sbom(
    doc: &SbomDocument,
    dest: &ImageRef,
    ctx: &JobContext<'_>,
) -> Result<SbomReferrer> {
    let Some(subject) = &doc.subject else {
        return Err(Error::Config(
            "an SBOM is published beside an image: its source must be one (oci:, oci-archive:, docker://)".into(),
        ));
    };
    ctx.check_cancel()?;
    let writer = ImageWriter::open_referrers(dest, &subject.digest, &[], &ctx.store)?;
    let layout = writer.layout();
    let blob = layout.put_blob(doc.media_type, doc.text.as_bytes())?;
    let listed = list_artifact(
        layout,
        writer.tag(),
        Artifact {
            artifact_type: doc.media_type,
            layers: vec![blob],
            subject,
            annotations: Default::default(),
            same_annotations: &[],
        },
    )?;
    let outcome = writer.finish()?;
    Ok(SbomReferrer {
        format: doc.format,
        subject: subject.digest,
        manifest: listed.digest,
        size: doc.text.len() as u64,
        reference: outcome.reference,
    })
}

/// The inventory of the job's input, read where it is, and the image it
/// is of (its manifest), if it is one's.
fn inventory(job: &SbomJob, ctx: &JobContext<'_>) -> Result<(Inventory, Option<Descriptor>)> {
    let mut subject = Subject {
        name: job.input.to_string(),
        digest: None,
        created: job.source_date_epoch,
    };
    let scratch = || ctx.scratch_dir(&format!("reading {}", job.input));
    match &job.input {
        Input::Dir(root) => Ok((inventory_of(TreeFiles::Dir(root), subject)?, None)),
        Input::Tar(file) => {
            let (tree, content) = walk_tar(file, scratch()?)?;
            let files = TreeFiles::Tar {
                tree: &tree,
                content: &content,
            };
            Ok((inventory_of(files, subject)?, None))
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
            let files = TreeFiles::Tar {
                tree: &tree,
                content: &content,
            };
            Ok((inventory_of(files, subject)?, Some(image.descriptor)))
        }
    }
}
