//! The pack job: a root file system (a directory, a tarball or an image's
//! layers) becomes an image wherever it goes: walk, assign components, plan
//! layers, write them, write config and manifest, publish.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use rayon::prelude::*;
use serde::Serialize;

use super::context::{Event, JobContext};
use super::coreos::{self, Dialect, LayerLabel, COMPONENT_ANNOTATION, STABILITY_ANNOTATION};
use super::input::Input;
use super::sbom::{attach_sbom, SbomDocument, SbomFormat, SbomReferrer};
use crate::chunker::{Chunker, ChunkerConfig};
use crate::component::InstalledPackage;
use crate::component::Ownership;
use crate::component::{read_package_databases_in_tar, read_package_databases_walked};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::grouping::{
    assign_components, plan_layers_isolating, update_intervals, Assignments, Component, LayerPlan,
    PlannedLayer, UNOWNED_PREFIX,
};
use crate::layer::{
    default_layer_chunker, seekable_order, write_layer, Compression, ContentSource, LayerInfo,
    LayerSettings,
};
use crate::oci::flatten::flatten;
use crate::oci::layout::LayoutWriter;
use crate::oci::types::{
    rfc3339, Descriptor, History, ImageConfig, Manifest, RootFs, RuntimeConfig, CONFIG_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
};
use crate::sbom::{inventory_of, Inventory, Subject, TreeFiles};
use crate::store::{ImageReader, ImageRef, ImageWriter, PushReport};
use crate::walk::{filter, walk_dir, walk_tar, Entry, EntryKind, Prune, TarContent, Tree};

/// Layer annotation listing a layer's components, one per line.
pub const COMPONENTS_ANNOTATION: &str = "dev.chunkah.components";

/// Layer annotation rpm-ostree's and ostree-ext's chunked images carry: the
/// packages of a layer, comma-separated. Tools downstream of them read it
/// (a chunked image has it on its layers; a previous build's plan is read
/// from it).
pub const OSTREE_COMPONENTS_ANNOTATION: &str = "ostree.components";

/// The most layers an image may have.
pub const MAX_LAYERS: usize = 500;

/// The most layers Docker's overlay2 storage takes ("max depth exceeded"
/// above); a pack of more warns.
pub const DOCKER_MAX_LAYERS: usize = 128;

/// What to make of a tree. [`PackOptions::validate`] checks it; [`pack`]
/// does so before any work.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// At most this many layers (1 to [`MAX_LAYERS`]).
    pub max_layers: usize,
    /// Layer compression ([`Compression::SeekableZstd`] gives each layer a
    /// chunk index).
    pub compression: Compression,
    /// How file content is cut into chunks in seekable layers (by default
    /// [`default_layer_chunker`]).
    pub chunker: ChunkerConfig,
    /// Clamp mtimes to this time and use it as the creation time.
    pub source_date_epoch: Option<i64>,
    /// The image's runtime configuration (Env, Entrypoint, Cmd, User,
    /// WorkingDir, ExposedPorts, Volumes, StopSignal, Labels...). `None`:
    /// the source image's, or none.
    pub runtime: Option<RuntimeConfig>,
    /// Config labels, added to (and overriding) those of the runtime
    /// configuration.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations (added to, and overriding, a source image's).
    pub annotations: BTreeMap<String, String>,
    /// The previous version: its grouping of components into layers is
    /// kept, so unchanged components land in byte-identical layers. It must
    /// have been made by chunkah (its layers carry [`COMPONENTS_ANNOTATION`]).
    pub prior: Option<ImageRef>,
    /// Older versions to publish binary deltas from, beside the image (each
    /// a [`super::delta()`] job once the image is published; see
    /// [`PackReport::deltas`]).
    pub delta_from: Vec<ImageRef>,
    /// Parts of the tree left out (`/path`: the subtree, `/path/`: what is
    /// below it).
    pub prune: Vec<Prune>,
    /// Leave out devices and named pipes (kept by default).
    pub skip_special_files: bool,
    /// SBOMs of the packed tree to publish beside the image, one per
    /// format (see [`PackReport::sboms`]).
    pub sbom: Vec<SbomFormat>,
    /// Components each given a layer of their own (fewer than
    /// `max_layers`; names not in the tree are ignored).
    pub isolate: Vec<String>,
    /// Components for files no package database owns (and no
    /// `user.component` names), by path pattern.
    pub assignments: Assignments,
    /// Whose component names, layer annotations and history to write
    /// (`chunkah build` writes coreos/chunkah's too).
    pub dialect: Dialect,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            max_layers: 64,
            compression: Compression::default(),
            chunker: default_layer_chunker(),
            source_date_epoch: None,
            runtime: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            prior: None,
            delta_from: Vec::new(),
            prune: Vec::new(),
            skip_special_files: false,
            sbom: Vec::new(),
            isolate: Vec::new(),
            assignments: Assignments::default(),
            dialect: Dialect::default(),
        }
    }
}

impl PackOptions {
    /// Checks every option: an [`Error::Config`] names the first one out of
    /// range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_LAYERS).contains(&self.max_layers) {
            return Err(Error::Config(format!(
                "max_layers must be within 1..={MAX_LAYERS} (got {})",
                self.max_layers
            )));
        }
        self.compression.validate()?;
        if self.isolate.len() >= self.max_layers {
            return Err(Error::Config(format!(
                "{} components to isolate need more than {} layers (max_layers)",
                self.isolate.len(),
                self.max_layers
            )));
        }
        if self.isolate.iter().any(String::is_empty) {
            return Err(Error::Config("a component to isolate has no name".into()));
        }
        for (what, map) in [("label", &self.labels), ("annotation", &self.annotations)] {
            if map.keys().any(String::is_empty) {
                return Err(Error::Config(format!("a {what} key is empty")));
            }
        }
        Ok(())
    }
}

/// A pack job: what to read, where to write it, how.
#[derive(Clone, Debug)]
pub struct PackJob {
    /// The root file system.
    pub source: Input,
    /// Where the image goes (its tag, or `latest`).
    pub dest: ImageRef,
    /// What to make of it.
    pub options: PackOptions,
}

/// One written layer.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    /// Blob digest.
    pub digest: Digest,
    /// Blob size.
    pub size: u64,
    /// Uncompressed tar size.
    pub tar_size: u64,
    /// Entries in the tar (ancestor directories included).
    pub entries: usize,
    /// Components in the layer.
    pub components: Vec<String>,
}

/// What packing made.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackReport {
    /// Format of this report.
    pub schema_version: u32,
    /// The manifest's digest.
    pub manifest: Digest,
    /// The config's digest.
    pub config: Digest,
    /// Sum of the layer blob sizes.
    pub total_size: u64,
    /// Distinct components.
    pub components: usize,
    /// The layers, bottom first.
    pub layers: Vec<LayerReport>,
    /// Things skipped, one line each.
    pub warnings: Vec<String>,
    /// Where the image was written, with its tag.
    pub reference: String,
    /// What a push to a registry did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<PushReport>,
    /// The binary deltas published beside the image, one per
    /// [`PackOptions::delta_from`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<super::DeltaReport>,
    /// The SBOMs published beside the image, one per [`PackOptions::sbom`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sboms: Vec<SbomReferrer>,
    /// With [`Dialect::Coreos`]: coreos/chunkah's `--write-manifest-to`
    /// document of the components (pretty JSON, no final newline).
    #[serde(skip)]
    pub component_manifest: Option<String>,
}

impl PackReport {
    /// The `schemaVersion` this build writes.
    pub const SCHEMA_VERSION: u32 = 1;
}

/// The components of each layer of a manifest written by [`pack`], or
/// `None` if a layer lacks the [`COMPONENTS_ANNOTATION`].
pub fn prior_components(manifest: &Manifest) -> Option<Vec<Vec<String>>> {
    manifest
        .layers
        .iter()
        .map(|l| {
            l.annotations.get(COMPONENTS_ANNOTATION).map(|c| {
                c.split('\n')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
        })
        .collect()
}

/// Runs a pack job: reads the source, packs it into at most
/// `max_layers` layers, writes the image to the destination and publishes
/// it (tag set, archive written, or image pushed). A failed or cancelled
/// job leaves nothing at the destination. The context's listener hears
/// where the work is; its cancel flag stops it.
pub fn pack(job: &PackJob, ctx: &JobContext<'_>) -> Result<PackReport> {
    job.options.validate()?;
    ctx.validate()?;
    let writer = ImageWriter::open(&job.dest, &ctx.store)?;
    pack_with(job, ctx, writer)
}

/// [`pack`] into `writer`, opened for `job.dest`.
pub(super) fn pack_with(
    job: &PackJob,
    ctx: &JobContext<'_>,
    writer: ImageWriter,
) -> Result<PackReport> {
    let options = &job.options;
    options.validate()?;
    ctx.validate()?;
    let prior = read_prior(options, ctx)?;
    // The versions to make deltas from are read now: a mistake there is
    // found before anything is packed.
    for base in &options.delta_from {
        ImageReader::open_with(base, &ctx.store)?.image(&ctx.architecture)?;
    }
    let pool = ctx.worker_pool()?;
    let mut read = read_source(&job.source, ctx)?;
    filter(
        &mut read.tree,
        read.content.as_mut(),
        &options.prune,
        options.skip_special_files,
    )?;
    let content = match &read.content {
        Some(c) => ContentSource::Tar(c),
        None => match &job.source {
            Input::Dir(root) => ContentSource::Dir(root),
            _ => unreachable!("only a directory has no tar content"),
        },
    };
    let packer = Packer {
        options,
        ctx,
        layout: writer.layout(),
        base: read.base.as_ref(),
        packages: read.owners.packages(),
    };
    let inventory = if options.sbom.is_empty() {
        None
    } else {
        Some(pool.install(|| packed_inventory(&read, &job.source, options))?)
    };
    let owners = &read.owners;
    let report = pool.install(|| {
        packer.write_image(
            read.tree,
            content,
            |p| {
                owners
                    .component_of(p)
                    .or_else(|| options.assignments.component_of(p))
                    .map(str::to_string)
            },
            writer.tag(),
            prior.as_deref(),
        )
    })?;
    publish(job, ctx, writer, report, inventory.as_ref())
}

/// The inventory of the tree as packed (what pruning left), for its SBOMs.
fn packed_inventory(read: &ReadSource, source: &Input, options: &PackOptions) -> Result<Inventory> {
    let files = match (&read.content, source) {
        (Some(content), _) => TreeFiles::Tar {
            tree: &read.tree,
            content,
        },
        (None, Input::Dir(root)) => TreeFiles::Walked {
            root,
            tree: &read.tree,
        },
        (None, _) => unreachable!("only a directory has no tar content"),
    };
    let subject = Subject {
        name: source.to_string(),
        digest: None,
        created: options.source_date_epoch,
    };
    inventory_of(files, subject)
}

/// The grouping of [`PackOptions::prior`], if any: the components of each
/// of its layers.
fn read_prior(options: &PackOptions, ctx: &JobContext<'_>) -> Result<Option<Vec<Vec<String>>>> {
    let Some(r) = &options.prior else {
        return Ok(None);
    };
    let image = ImageReader::open_with(r, &ctx.store)?.image(&ctx.architecture)?;
    let grouping = prior_components(&image.manifest).ok_or_else(|| {
        Error::malformed(
            r,
            "was not made by chunkah pack (its layers lack component annotations)",
        )
    })?;
    Ok(Some(grouping))
}

/// The image a tree comes from: its config and manifest annotations.
struct BaseImage {
    config: ImageConfig,
    annotations: BTreeMap<String, String>,
}

/// A root file system, read.
struct ReadSource {
    tree: Tree,
    /// Where its files' content is; `None` for a directory (read in place).
    content: Option<TarContent>,
    /// Which package owns each path.
    owners: Ownership,
    /// The image it comes from, if it does.
    base: Option<BaseImage>,
}

/// Walks `source` and reads its package databases.
fn read_source(source: &Input, ctx: &JobContext<'_>) -> Result<ReadSource> {
    match source {
        Input::Dir(root) => {
            let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
            if !meta.is_dir() {
                return Err(Error::io(
                    root,
                    std::io::Error::new(
                        std::io::ErrorKind::NotADirectory,
                        "not a directory (a tarball is tar:FILE)",
                    ),
                ));
            }
            ctx.emit(Event::Reading);
            let tree = walk_dir(root)?;
            let owners = read_package_databases_walked(root, &tree)?;
            Ok(ReadSource {
                tree,
                content: None,
                owners,
                base: None,
            })
        }
        Input::Tar(file) => {
            ctx.emit(Event::Reading);
            let (tree, content) = walk_tar(file, ctx.scratch_dir("reading a compressed tarball")?)?;
            let owners = read_package_databases_in_tar(&tree, &content)?;
            Ok(ReadSource {
                tree,
                content: Some(content),
                owners,
                base: None,
            })
        }
        Input::Image(r) => {
            ctx.emit(Event::Reading);
            let reader = ImageReader::open_with(r, &ctx.store)?;
            let image = reader.image(&ctx.architecture)?;
            let (tree, content) = flatten(
                &r.to_string(),
                &image,
                |d| reader.blob(&d.digest, d.size),
                ctx.scratch_dir("reading an image's layers")?,
                &ctx.cancel,
            )?;
            let owners = read_package_databases_in_tar(&tree, &content)?;
            Ok(ReadSource {
                tree,
                content: Some(content),
                owners,
                base: Some(BaseImage {
                    config: image.config,
                    annotations: image.manifest.annotations,
                }),
            })
        }
    }
}

/// Publishes the written image and then makes the deltas of
/// [`PackOptions::delta_from`] to it.
fn publish(
    job: &PackJob,
    ctx: &JobContext<'_>,
    writer: ImageWriter,
    mut report: PackReport,
    inventory: Option<&Inventory>,
) -> Result<PackReport> {
    ctx.emit(Event::Publishing);
    let tag = writer.tag().to_string();
    let outcome = writer.finish()?;
    report.reference = outcome.reference;
    report.pushed = outcome.pushed;
    let new = match &job.dest {
        #[cfg(feature = "registry")]
        ImageRef::Registry(_) => job.dest.clone(),
        _ => job.dest.with_tag(&tag),
    };
    for base in &job.options.delta_from {
        ctx.emit(Event::MakingDelta {
            base: base.to_string(),
        });
        let delta = super::delta(
            &super::DeltaJob {
                old: base.clone(),
                new: new.clone(),
                dest: new.clone(),
                config: Default::default(),
            },
            ctx,
        )
        .map_err(|e| Error::AfterPublish {
            image: report.reference.clone(),
            artifact: format!("the delta from {base}"),
            source: Box::new(e),
        })?;
        report.deltas.push(delta);
    }
    if let Some(inventory) = inventory {
        report.sboms =
            publish_sboms(&job.options.sbom, inventory, &new, ctx).map_err(|(format, e)| {
                Error::AfterPublish {
                    image: report.reference.clone(),
                    artifact: format!("its {} SBOM", format.name()),
                    source: Box::new(e),
                }
            })?;
    }
    Ok(report)
}

/// Publishes an SBOM of `inventory` in each of `formats` beside the image
/// `image` (published); on failure, the format that failed.
fn publish_sboms(
    formats: &[SbomFormat],
    inventory: &Inventory,
    image: &ImageRef,
    ctx: &JobContext<'_>,
) -> std::result::Result<Vec<SbomReferrer>, (SbomFormat, Error)> {
    let first = formats.first().copied().unwrap_or(SbomFormat::SpdxJson);
    let subject = ImageReader::open_with(image, &ctx.store)
        .and_then(|r| r.image(&ctx.architecture))
        .map_err(|e| (first, e))?
        .descriptor;
    let mut inventory = inventory.clone();
    inventory.subject = image.to_string();
    inventory.subject_digest = Some(subject.digest);
    formats
        .iter()
        .map(|&format| {
            ctx.emit(Event::PublishingSbom {
                format: format.name(),
            });
            let doc = SbomDocument::of(&inventory, format, Some(subject.clone()));
            attach_sbom(&doc, image, ctx).map_err(|e| (format, e))
        })
        .collect()
}

/// What writing an image into a layout takes, whatever the tree: the
/// options, the job's context, and the image the tree comes from, if any
/// (its author, architecture, variant, os, unknown fields and creation time
/// are kept, its history entries come first, as entries without a layer,
/// and its annotations are kept under the options' own).
struct Packer<'a, 'c> {
    options: &'a PackOptions,
    ctx: &'a JobContext<'c>,
    layout: &'a LayoutWriter,
    base: Option<&'a BaseImage>,
    /// The packages the databases list (their build and changelog times
    /// give coreos/chunkah's stability).
    packages: &'a [InstalledPackage],
}

/// What coreos/chunkah writes of an image, with [`Dialect::Coreos`].
struct CoreosOutput {
    labels: Vec<LayerLabel>,
    manifest: String,
}

impl Packer<'_, '_> {
    /// Packs a walked tree whose file content comes from `content` into the
    /// layout under `tag`. `owner` names each path's package; `prior` is the
    /// previous version's grouping.
    fn write_image(
        &self,
        tree: Tree,
        content: ContentSource<'_>,
        owner: impl Fn(&Path) -> Option<String>,
        tag: &str,
        prior: Option<&[Vec<String>]>,
    ) -> Result<PackReport> {
        self.ctx.emit(Event::Walked {
            entries: tree.entries.len(),
            bytes: content_bytes(&tree),
        });
        let mut components = assign_components(&tree, owner);
        if self.options.dialect == Dialect::Coreos {
            components = coreos::rename(&tree, &components);
        }
        let intervals = update_intervals(&tree, &components)?;
        let mut plan = plan_layers_isolating(
            &tree,
            &components,
            self.options.max_layers,
            prior,
            &intervals,
            &self.options.isolate,
        );
        self.ctx.emit(Event::Planned {
            layers: plan.layers.len(),
        });
        let coreos = (self.options.dialect == Dialect::Coreos).then(|| {
            self.coreos_output(&tree, &components, &mut plan, &intervals, prior.is_some())
        });
        let infos = self.write_layers(&tree, &components, &plan, content)?;
        let labels = coreos.as_ref().map(|c| c.labels.as_slice());
        let config = self.config(&tree, &plan, &infos, labels);
        if self.ctx.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let config_json = serde_json::to_vec(&config).expect("a config serialises");
        let config_desc = self.layout.put_blob(CONFIG_MEDIA_TYPE, &config_json)?;
        let manifest = self.manifest(config_desc.clone(), &plan, &infos, labels);
        let manifest_json = serde_json::to_vec(&manifest).expect("a manifest serialises");
        let manifest_desc = self.layout.put_blob(MANIFEST_MEDIA_TYPE, &manifest_json)?;
        self.layout.set_tag(tag, manifest_desc.clone())?;
        Ok(PackReport {
            schema_version: PackReport::SCHEMA_VERSION,
            manifest: manifest_desc.digest,
            config: config_desc.digest,
            total_size: infos.iter().map(|i| i.size).sum(),
            components: distinct(&components),
            layers: layer_reports(&plan, &infos),
            warnings: layer_count_warning(plan.layers.len())
                .into_iter()
                .chain(tree.warnings)
                .collect(),
            reference: String::new(),
            pushed: None,
            deltas: Vec::new(),
            sboms: Vec::new(),
            component_manifest: coreos.map(|c| c.manifest),
        })
    }

    /// coreos/chunkah's layer labels and component document of `plan`,
    /// whose layers it orders the most stable first unless they keep a
    /// prior version's order.
    fn coreos_output(
        &self,
        tree: &Tree,
        components: &[Component],
        plan: &mut LayerPlan,
        intervals: &BTreeMap<String, u32>,
        keeps_prior: bool,
    ) -> CoreosOutput {
        let now = self
            .options
            .source_date_epoch
            .unwrap_or_else(|| tree.entries.iter().map(|e| e.mtime).max().unwrap_or(0));
        let figures = coreos::figures(components, self.packages, intervals, now);
        if !keeps_prior {
            coreos::most_stable_first(plan, &figures);
        }
        CoreosOutput {
            labels: coreos::layer_labels(plan, components, &figures),
            manifest: coreos::manifest_document(tree, components, &figures),
        }
    }

    /// Writes every layer of `plan` on the current pool, and returns what
    /// each is, in plan order.
    fn write_layers(
        &self,
        tree: &Tree,
        components: &[Component],
        plan: &LayerPlan,
        content: ContentSource<'_>,
    ) -> Result<Vec<LayerInfo>> {
        let settings = LayerSettings {
            compression: self.options.compression,
            chunker: Chunker::auto(self.options.chunker),
            content,
            clamp: self.options.source_date_epoch,
            cancel: &self.ctx.cancel,
        };
        // Largest layers first, so no big one is left running alone at the end.
        let mut order: Vec<usize> = (0..plan.layers.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(plan.layers[i].content_bytes));
        let written: Vec<(usize, LayerInfo)> = order
            .par_iter()
            .with_max_len(1)
            .map(|&i| {
                let entries = layer_entries(tree, components, &plan.layers[i], &settings);
                let info = self.write_layer(&entries, &settings)?;
                self.ctx.emit(Event::LayerWritten {
                    bytes: plan.layers[i].content_bytes,
                });
                Ok((i, info))
            })
            .collect::<Result<_>>()?;
        let mut infos: Vec<Option<LayerInfo>> = vec![None; plan.layers.len()];
        for (i, info) in written {
            infos[i] = Some(info);
        }
        Ok(infos
            .into_iter()
            .map(|i| i.expect("every layer written"))
            .collect())
    }

    /// Writes one layer of `entries` into a blob of the layout.
    fn write_layer(&self, entries: &[&Entry], settings: &LayerSettings<'_>) -> Result<LayerInfo> {
        // The layer writer hashes the blob (an uncompressed one is its tar,
        // hashed once): the layout only counts its bytes.
        let mut blob = self.layout.temp_blob_unhashed()?;
        let dest = blob.path().to_path_buf();
        let (_, info) = write_layer(blob.writer(), &dest, entries, settings)?;
        self.layout.commit_known(blob, &info.digest, info.size)?;
        Ok(info)
    }

    /// The image config: the base image's, with the layers written and
    /// the options' creation time, runtime configuration and labels.
    fn config(
        &self,
        tree: &Tree,
        plan: &LayerPlan,
        infos: &[LayerInfo],
        labels: Option<&[LayerLabel]>,
    ) -> ImageConfig {
        let base = self.base.map(|b| &b.config);
        let created = created_time(self.options.source_date_epoch, base, tree);
        let mut runtime = match (&self.options.runtime, base) {
            (Some(r), _) => r.clone(),
            (None, Some(b)) => b.config.clone(),
            (None, None) => RuntimeConfig::default(),
        };
        runtime.labels.extend(self.options.labels.clone());
        ImageConfig {
            history: history(base, plan, &created, labels),
            created: Some(created),
            author: base.and_then(|b| b.author.clone()),
            architecture: base
                .map_or_else(|| self.ctx.architecture.clone(), |b| b.architecture.clone()),
            variant: base.and_then(|b| b.variant.clone()),
            os: base.map_or_else(|| "linux".to_string(), |b| b.os.clone()),
            config: runtime,
            rootfs: RootFs {
                kind: "layers".to_string(),
                diff_ids: infos.iter().map(|i| i.diff_id).collect(),
            },
            other: base.map(|b| b.other.clone()).unwrap_or_default(),
        }
    }

    /// The manifest of the written layers: the base image's annotations
    /// under the options' own.
    fn manifest(
        &self,
        config: Descriptor,
        plan: &LayerPlan,
        infos: &[LayerInfo],
        labels: Option<&[LayerLabel]>,
    ) -> Manifest {
        let mut annotations: BTreeMap<String, String> = self
            .base
            .map_or_else(BTreeMap::new, |b| b.annotations.clone());
        annotations.extend(self.options.annotations.clone());
        Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE.to_string(),
            config,
            layers: infos
                .iter()
                .zip(&plan.layers)
                .enumerate()
                .map(|(i, (info, l))| layer_descriptor(info, l, labels.map(|l| &l[i])))
                .collect(),
            artifact_type: None,
            subject: None,
            annotations,
        }
    }
}

/// Bytes of regular-file content in `tree`.
fn content_bytes(tree: &Tree) -> u64 {
    tree.entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::Regular { size } => size,
            _ => 0,
        })
        .sum()
}

/// The entries of `layer`, in the order they are written: the root
/// directory first, so its owner, mode and xattrs are kept too; in a
/// seekable layer, then in [`seekable_order`].
fn layer_entries<'t>(
    tree: &'t Tree,
    components: &[Component],
    layer: &PlannedLayer,
    settings: &LayerSettings<'_>,
) -> Vec<&'t Entry> {
    let entries: Vec<&Entry> = tree
        .root
        .iter()
        .chain(layer.entries.iter().map(|&i| &tree.entries[i]))
        .collect();
    let Compression::SeekableZstd(_) = settings.compression else {
        return entries;
    };
    let skip = usize::from(tree.root.is_some());
    let component = |i: usize| match i.checked_sub(skip) {
        Some(j) => components[layer.entries[j]].name(),
        None => "",
    };
    seekable_order(&entries, component, settings.chunker.config())
}

/// The creation time: `source_date_epoch`, else the base image's, else
/// the newest mtime of the tree.
fn created_time(source_date_epoch: Option<i64>, base: Option<&ImageConfig>, tree: &Tree) -> String {
    match (source_date_epoch, base.and_then(|b| b.created.clone())) {
        (Some(epoch), _) => rfc3339(epoch),
        (None, Some(created)) => created,
        (None, None) => rfc3339(tree.entries.iter().map(|e| e.mtime).max().unwrap_or(0)),
    }
}

/// The image's history: the base image's entries, without their layers,
/// then one entry per layer of `plan`.
/// With coreos/chunkah's `labels`, its entries: author and `created_by`
/// "chunkah", the layer's components as comment.
fn history(
    base: Option<&ImageConfig>,
    plan: &LayerPlan,
    created: &str,
    labels: Option<&[LayerLabel]>,
) -> Vec<History> {
    let mut history: Vec<History> = base
        .map(|b| b.history.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|h| History {
            empty_layer: true,
            ..h
        })
        .collect();
    history.extend(plan.layers.iter().enumerate().map(|(i, l)| match labels {
        Some(labels) => History {
            created: Some(rfc3339(labels[i].time)),
            created_by: Some("chunkah".to_string()),
            comment: Some(labels[i].component.clone()),
            author: Some("chunkah".to_string()),
            empty_layer: false,
        },
        None => History {
            created: Some(created.to_string()),
            created_by: Some("chunkah pack".to_string()),
            comment: Some(summarise(&l.components)),
            author: None,
            empty_layer: false,
        },
    }));
    history
}

/// The descriptor of a written layer, annotated with its components and
/// where its chunk index is.
fn layer_descriptor(
    info: &LayerInfo,
    layer: &PlannedLayer,
    label: Option<&LayerLabel>,
) -> Descriptor {
    let mut annotations: BTreeMap<String, String> = [
        (
            COMPONENTS_ANNOTATION.to_string(),
            layer.components.join("\n"),
        ),
        (
            OSTREE_COMPONENTS_ANNOTATION.to_string(),
            ostree_components(&layer.components),
        ),
    ]
    .into();
    if let Some(index) = &info.index {
        index.annotate(&mut annotations);
    }
    if let Some(label) = label {
        annotations.insert(COMPONENT_ANNOTATION.to_string(), label.component.clone());
        annotations.insert(STABILITY_ANNOTATION.to_string(), label.stability.clone());
    }
    Descriptor {
        media_type: info.media_type.to_string(),
        digest: info.digest,
        size: info.size,
        annotations,
        artifact_type: None,
        platform: None,
    }
}

/// The [`OSTREE_COMPONENTS_ANNOTATION`] of a layer holding `components`:
/// the package names as rpm-ostree writes them (`deb:glibc` is `glibc`),
/// comma-separated, in order (coreos/chunkah's `rpm/glibc` is `glibc` too);
/// groups of unowned files and big unowned files are no package and are
/// left out, and so is a name that holds a comma or a newline.
fn ostree_components(components: &[String]) -> String {
    components
        .iter()
        .filter(|c| !c.starts_with(UNOWNED_PREFIX) && !c.starts_with("bigfiles/"))
        .map(|c| match c.split_once(':').or_else(|| c.split_once('/')) {
            Some(("deb" | "rpm" | "apk" | "pacman" | "alpm", name)) => name,
            _ => c.as_str(),
        })
        .filter(|name| !name.is_empty() && !name.contains([',', '\n']))
        .collect::<Vec<_>>()
        .join(",")
}

/// A warning for an image of `layers` layers that some clients refuse.
fn layer_count_warning(layers: usize) -> Option<String> {
    (layers > DOCKER_MAX_LAYERS).then(|| {
        format!(
            "{layers} layers: Docker's overlay2 storage refuses images of more than \
             {DOCKER_MAX_LAYERS} (\"max depth exceeded\"); use --max-layers {DOCKER_MAX_LAYERS} \
             or fewer for Docker clients (podman and CRI-O take up to 500)"
        )
    })
}

/// How many distinct component names there are.
fn distinct(components: &[Component]) -> usize {
    let mut names: Vec<&str> = components.iter().map(Component::name).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

/// What the report says of each written layer.
fn layer_reports(plan: &LayerPlan, infos: &[LayerInfo]) -> Vec<LayerReport> {
    infos
        .iter()
        .zip(&plan.layers)
        .map(|(i, l)| LayerReport {
            digest: i.digest,
            size: i.size,
            tar_size: i.tar_size,
            entries: l.entries.len(),
            components: l.components.clone(),
        })
        .collect()
}

/// A history comment: the components, shortened past a few hundred bytes.
fn summarise(components: &[String]) -> String {
    let mut s = String::new();
    for (i, c) in components.iter().enumerate() {
        if s.len() + c.len() > 400 {
            s.push_str(&format!(" and {} more", components.len() - i));
            break;
        }
        if i > 0 {
            s.push(' ');
        }
        s.push_str(c);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ostree_components_are_package_names_without_unowned_groups() {
        let components: Vec<String> = [
            "apk:musl",
            "deb:glibc",
            "pacman:bash",
            "rpm:kernel",
            "myapp",
            "unowned:usr/share/foo",
            "odd,name",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            ostree_components(&components),
            "musl,glibc,bash,kernel,myapp"
        );
        assert_eq!(ostree_components(&["unowned:etc".into()]), "");
    }

    #[test]
    fn more_layers_than_docker_takes_is_a_warning() {
        assert_eq!(layer_count_warning(DOCKER_MAX_LAYERS), None);
        let w = layer_count_warning(DOCKER_MAX_LAYERS + 1).unwrap();
        assert!(w.starts_with("129 layers: Docker's overlay2"), "{w}");
    }
}
