//! The diff job: what a client holding OLD downloads to get NEW.

use std::path::Path;

use serde::Serialize;

use crate::chunker::ChunkerConfig;
use crate::component::read_package_databases;
use crate::delta::find::{find, Lookup};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::types::Descriptor;
use crate::store::{ImageReader, ImageView};

use super::context::{Event, JobContext};
use super::input::Input;
use super::packages::{
    image_package_report, package_report, LevelBytes, PackageReport, SidePackages,
};
use crate::delta::find::FoundDelta;
use crate::store::OpenImage;
use crate::update::by_owner::LevelShares;
use crate::update::delta_level::{part_ranges, plan_with_delta};
use crate::update::tree::{plan_trees_by, tree_view, TreeLevel, TreeView};
use crate::update::{self, BlobPlan, Levels, RequestOptions, UpdatePlan};

/// A diff job.
#[derive(Clone, Debug)]
pub struct DiffJob {
    /// What the client holds.
    pub old: Input,
    /// What it wants (an image if `old` is one, a tree if `old` is one).
    pub new: Input,
    /// How byte ranges become requests.
    pub options: RequestOptions,
    /// For trees: mtimes clamped to this time, as `pack` would.
    pub source_date_epoch: Option<i64>,
    /// Also compare the packages of OLD and NEW and split the levels'
    /// bytes among them ([`DiffReport::packages`]); for images this reads
    /// every layer of both.
    pub packages: bool,
}

/// What a [`DiffReport`]'s levels count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteUnit {
    /// Bytes as downloaded (compressed blobs and ranges): images.
    Compressed,
    /// Bytes of file content: trees, chunked on the fly.
    Uncompressed,
}

impl std::fmt::Display for ByteUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ByteUnit::Compressed => "compressed",
            ByteUnit::Uncompressed => "uncompressed",
        })
    }
}

/// What a diff found: the report `chunkah diff --json` prints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport {
    /// Format of this report.
    pub schema_version: u32,
    /// OLD, as given.
    pub old: String,
    /// NEW, as given.
    pub new: String,
    /// Whether NEW needs nothing OLD lacks.
    pub same: bool,
    /// What the levels count: compressed bytes for images, uncompressed
    /// for trees.
    pub unit: ByteUnit,
    /// Bytes (and requests) at each level.
    pub levels: Levels,
    /// Bytes this diff read: from images, manifests, configs and indexes;
    /// from trees, their file content.
    pub bytes_read: u64,
    /// Why the delta NEW lists for OLD cannot be used, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_unusable: Option<String>,
    /// Each package added, removed or changed and its bytes at the layer,
    /// chunk and delta levels (with [`DiffJob::packages`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<PackageReport>,
    /// The plan (images only): every blob and byte range to fetch.
    #[serde(skip)]
    pub plan: Option<PlanFile>,
}

impl DiffReport {
    /// The `schemaVersion` this build writes.
    pub const SCHEMA_VERSION: u32 = 2;
}

/// Every blob and byte range to fetch: what `chunkah diff --plan` writes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanFile {
    /// Format of the plan.
    pub schema_version: u32,
    /// OLD, as given.
    pub old: String,
    /// NEW, as given.
    pub new: String,
    /// NEW's manifest.
    pub manifest: Descriptor,
    /// The config and each layer of NEW, and how each is obtained.
    pub blobs: Vec<BlobPlan>,
    /// The binary delta's parts to fetch, if one is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<PlanDelta>,
}

impl PlanFile {
    /// The `schemaVersion` this build writes.
    pub const SCHEMA_VERSION: u32 = 2;
}

/// The parts of a binary delta a plan takes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDelta {
    /// The delta artifact's manifest digest.
    pub manifest: Digest,
    /// The delta blob.
    pub blob: Descriptor,
    /// The parts taken (positions in its lookup).
    pub parts: Vec<usize>,
    /// Byte ranges of the blob to fetch for them (in JSON `[start, end]`
    /// pairs).
    #[serde(serialize_with = "crate::update::requests::serialize_pairs")]
    pub ranges: Vec<std::ops::Range<u64>>,
}

/// A plan between two images, with the delta NEW lists for OLD if any.
#[derive(Clone, Debug)]
pub struct PlannedImages {
    /// The plan (levels; blobs of the delta level when a delta pays).
    pub plan: UpdatePlan,
    /// The delta's parts taken, if a delta pays.
    pub delta: Option<PlanDelta>,
    /// Why a listed delta cannot be used, if it cannot.
    pub delta_unusable: Option<String>,
    /// The delta NEW lists for OLD, if one is found and usable.
    pub found: Option<Box<FoundDelta>>,
}

/// Plans from `old` to `new` (read through `new_reader`), looking for a
/// delta from OLD beside NEW.
pub fn plan_images(
    old: &ImageView,
    new_reader: &ImageReader,
    new: &ImageView,
    options: RequestOptions,
) -> PlannedImages {
    match find(new_reader, &new.manifest.digest, &old.manifest.digest) {
        Lookup::Found(found) => {
            let (plan, choice) = plan_with_delta(old, new, options, &found);
            let parts: Vec<_> = choice
                .parts
                .iter()
                .map(|&p| &found.lookup.parts[p])
                .collect();
            let delta = (!parts.is_empty()).then(|| PlanDelta {
                manifest: found.manifest,
                blob: found.blob.clone(),
                ranges: part_ranges(&parts, options.gap),
                parts: choice.parts.clone(),
            });
            PlannedImages {
                plan,
                delta,
                delta_unusable: None,
                found: Some(found),
            }
        }
        Lookup::Unusable { reason, .. } => PlannedImages {
            plan: update::plan(old, new, options),
            delta: None,
            delta_unusable: Some(reason),
            found: None,
        },
        Lookup::None { .. } => PlannedImages {
            plan: update::plan(old, new, options),
            delta: None,
            delta_unusable: None,
            found: None,
        },
    }
}

/// Runs a diff job.
pub fn diff(job: &DiffJob, ctx: &JobContext<'_>) -> Result<DiffReport> {
    ctx.validate()?;
    let (old, new) = match (&job.old, &job.new) {
        (Input::Image(old), Input::Image(new)) => (old, new),
        (Input::Dir(old), Input::Dir(new)) => {
            return ctx
                .worker_pool()?
                .install(|| diff_trees(job, ctx, old, new))
        }
        (Input::Tar(t), _) | (_, Input::Tar(t)) => {
            return Err(Error::unsupported(
                t.display(),
                "diff reads images and dir: trees, not tarballs (pack the tarball, then diff the image)",
            ))
        }
        _ => {
            return Err(Error::Config(
                "OLD and NEW must both be images or both dir: trees".into(),
            ))
        }
    };
    job.options.validate()?;
    let old = ctx.open_image(old)?;
    let new = ctx.open_image(new)?;
    let planned = plan_images(&old.view, &new.reader, &new.view, job.options);
    let packages = match job.packages {
        true => Some(image_packages(ctx, &old, &new, &planned, job.options)?),
        false => None,
    };
    let plan = planned.plan;
    Ok(DiffReport {
        packages,
        schema_version: DiffReport::SCHEMA_VERSION,
        delta_unusable: planned.delta_unusable,
        old: job.old.to_string(),
        new: job.new.to_string(),
        same: plan.same,
        unit: ByteUnit::Compressed,
        levels: plan.levels,
        bytes_read: old.reader.bytes_read() + new.reader.bytes_read(),
        plan: Some(PlanFile {
            schema_version: PlanFile::SCHEMA_VERSION,
            old: job.old.to_string(),
            new: job.new.to_string(),
            manifest: new.view.manifest.clone(),
            blobs: plan.blobs,
            delta: planned.delta,
        }),
    })
}

/// The packages of OLD and NEW, and the levels of `planned` split among
/// them.
fn image_packages(
    ctx: &JobContext<'_>,
    old: &OpenImage,
    new: &OpenImage,
    planned: &PlannedImages,
    options: RequestOptions,
) -> Result<PackageReport> {
    let sides = [
        SidePackages::of_image(old, ctx)?,
        SidePackages::of_image(new, ctx)?,
    ];
    image_package_report([old, new], [&sides[0], &sides[1]], planned, options)
}

fn diff_trees(job: &DiffJob, ctx: &JobContext<'_>, old: &Path, new: &Path) -> Result<DiffReport> {
    let read = |root: &Path, prior: Option<&[Vec<String>]>| {
        ctx.check_cancel()?;
        ctx.emit(Event::Reading);
        // With --packages, the databases are read leniently, their paths
        // kept: the same owners, and the packages to compare.
        let (owners, packages) = match job.packages {
            true => {
                let (side, owners) = SidePackages::of_dir(root)?;
                (owners, Some(side))
            }
            false => (read_package_databases(root)?, None),
        };
        let view = tree_view(
            root,
            ChunkerConfig::default(),
            |p| owners.component_of(p).map(str::to_string),
            prior,
        )?;
        Ok::<_, Error>((view, packages))
    };
    let (old_view, old_packages) = read(old, None)?;
    let prior: Vec<Vec<String>> = old_view
        .layers
        .layers
        .iter()
        .map(|l| l.components.clone())
        .collect();
    let (new_view, new_packages) = read(new, Some(&prior))?;
    let mut shares = LevelShares::default();
    let levels = plan_trees_by(
        &old_view,
        &new_view,
        job.source_date_epoch,
        &mut |level, i, bytes| {
            let Some(side) = &new_packages else { return };
            let owner = side.owner(&new_view.tree.entries[i].path);
            match level {
                TreeLevel::Layer => shares.layer.add(owner, bytes),
                TreeLevel::Chunk => shares.chunk.add(owner, bytes),
            }
        },
    );
    let packages = match (&old_packages, &new_packages) {
        (Some(o), Some(n)) => {
            let totals = LevelBytes {
                layer: levels.layer.bytes,
                chunk: levels.chunk.bytes,
                delta: None,
            };
            Some(package_report(o, n, &shares, totals)?)
        }
        _ => None,
    };
    let content = |v: &TreeView| -> u64 { v.chunks.iter().flatten().map(|c| c.chunk.length).sum() };
    Ok(DiffReport {
        schema_version: DiffReport::SCHEMA_VERSION,
        old: job.old.to_string(),
        new: job.new.to_string(),
        same: levels.chunk.bytes == 0 && levels.layer.bytes == 0,
        unit: ByteUnit::Uncompressed,
        levels,
        bytes_read: content(&old_view) + content(&new_view),
        delta_unusable: None,
        packages,
        plan: None,
    })
}
