//! The pack job: a root file system (a directory, a tarball or an image's
//! layers) becomes an image wherever it goes: walk, assign components, plan
//! layers, write them, write config and manifest, publish.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rayon::prelude::*;
use serde::Serialize;

use super::context::{Event, JobContext};
use crate::chunker::{Chunker, ChunkerConfig};
use crate::component::{read_package_databases, read_package_databases_in_tar};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::grouping::{assign_components, plan_layers, update_intervals};
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
use crate::store::{transport_of, ImageReader, ImageRef, ImageWriter, PushReport};
use crate::walk::{filter, walk_dir, walk_tar, Entry, EntryKind, Prune, Tree};

/// Layer annotation listing a layer's components, one per line.
pub const COMPONENTS_ANNOTATION: &str = "dev.chunkah.components";

/// The most layers an image may have.
pub const MAX_LAYERS: usize = 500;

/// What a root file system to pack is held in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackSource {
    /// A directory (`dir:PATH`).
    Dir(PathBuf),
    /// A tarball, plain, gzip or zstd, as `podman export` writes (`tar:FILE`).
    Tar(PathBuf),
    /// An image whose layers are applied in order and whose config is kept.
    Image(ImageRef),
}

impl PackSource {
    /// Parses `dir:PATH`, `tar:FILE`, an image reference (`oci:`,
    /// `oci-archive:`, `docker://`), or a bare path: a directory, or a
    /// tarball when it is a file.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(dir) = s.strip_prefix("dir:") {
            return Ok(PackSource::Dir(dir.into()));
        }
        if let Some(file) = s.strip_prefix("tar:") {
            return Ok(PackSource::Tar(file.into()));
        }
        if s.starts_with("oci:") || s.starts_with("oci-archive:") || s.starts_with("docker://") {
            return Ok(PackSource::Image(ImageRef::parse(s)?));
        }
        let path = Path::new(s);
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(PackSource::Tar(path.into())),
            Ok(_) => Ok(PackSource::Dir(path.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // `foo:bar` that is no file: a transport chunkah does not know.
                if let Some(transport) = transport_of(s) {
                    return Err(Error::Config(format!(
                        "source {s:?}: unknown transport {transport:?} (expected dir:PATH, \
                         tar:FILE, oci:DIR[:TAG], oci-archive:FILE[:TAG] or \
                         docker://HOST/REPO:TAG)"
                    )));
                }
                Err(Error::io(path, e))
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

impl std::fmt::Display for PackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackSource::Dir(d) => write!(f, "dir:{}", d.display()),
            PackSource::Tar(t) => write!(f, "tar:{}", t.display()),
            PackSource::Image(r) => write!(f, "{r}"),
        }
    }
}

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
    pub source: PackSource,
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
    let arch = ctx.architecture.as_str();
    let scratch = ctx.store.scratch_dir.as_deref();
    let need_scratch = |what: &str| {
        scratch.ok_or_else(|| Error::Config(format!("{what} needs a scratch directory")))
    };
    let prior = match &options.prior {
        None => None,
        Some(r) => {
            let image = ImageReader::open_with(r, &ctx.store)?.image(arch)?;
            Some(prior_components(&image.manifest).ok_or_else(|| {
                Error::malformed(
                    r,
                    "was not made by chunkah pack (its layers lack component annotations)",
                )
            })?)
        }
    };
    // The versions to make deltas from are read now: a mistake there is
    // found before anything is packed.
    for base in &options.delta_from {
        ImageReader::open_with(base, &ctx.store)?.image(arch)?;
    }
    let pool = ctx.worker_pool()?;
    let mut base = None;
    let (mut tree, mut content, owners) = match &job.source {
        PackSource::Dir(root) => {
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
            let owners = read_package_databases(root)?;
            (walk_dir(root)?, None, owners)
        }
        PackSource::Tar(file) => {
            ctx.emit(Event::Reading);
            let (tree, content) = walk_tar(file, need_scratch("reading a compressed tarball")?)?;
            let owners = read_package_databases_in_tar(&tree, &content)?;
            (tree, Some(content), owners)
        }
        PackSource::Image(r) => {
            ctx.emit(Event::Reading);
            let reader = ImageReader::open_with(r, &ctx.store)?;
            let image = reader.image(arch)?;
            let (tree, content) = flatten(
                &r.to_string(),
                &image,
                |d| reader.blob(&d.digest, d.size),
                need_scratch("reading an image's layers")?,
                &ctx.cancel,
            )?;
            let owners = read_package_databases_in_tar(&tree, &content)?;
            base = Some((image.config, image.manifest.annotations));
            (tree, Some(content), owners)
        }
    };
    filter(
        &mut tree,
        content.as_mut(),
        &options.prune,
        options.skip_special_files,
    )?;
    let source = match &content {
        Some(c) => ContentSource::Tar(c),
        None => match &job.source {
            PackSource::Dir(root) => ContentSource::Dir(root),
            _ => unreachable!("only a directory has no tar content"),
        },
    };
    let mut report = pool.install(|| {
        write_image(
            tree,
            source,
            |p| owners.owner(p).map(str::to_string),
            writer.layout(),
            writer.tag(),
            options,
            prior.as_deref(),
            base.as_ref(),
            ctx,
        )
    })?;
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
    for base in &options.delta_from {
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
        .map_err(|e| Error::DeltaAfterPublish {
            image: report.reference.clone(),
            base: base.to_string(),
            source: Box::new(e),
        })?;
        report.deltas.push(delta);
    }
    Ok(report)
}

/// Packs a walked tree whose file content comes from `source` into `layout`
/// under `tag`. `prior` is the previous version's grouping; `base` the
/// config and manifest annotations of the image the tree comes from: its
/// author, architecture, variant, os, unknown fields and creation time are
/// kept, its history entries come first (as entries without a layer), its
/// annotations are kept under the options' own.
#[allow(clippy::too_many_arguments)]
fn write_image(
    tree: Tree,
    source: ContentSource<'_>,
    owner: impl Fn(&Path) -> Option<String>,
    layout: &LayoutWriter,
    tag: &str,
    options: &PackOptions,
    prior: Option<&[Vec<String>]>,
    base: Option<&(ImageConfig, BTreeMap<String, String>)>,
    ctx: &JobContext<'_>,
) -> Result<PackReport> {
    let bytes = tree
        .entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::Regular { size } => size,
            _ => 0,
        })
        .sum();
    ctx.emit(Event::Walked {
        entries: tree.entries.len(),
        bytes,
    });
    let components = assign_components(&tree, owner);
    let intervals = update_intervals(&tree, &components)?;
    let plan = plan_layers(&tree, &components, options.max_layers, prior, &intervals);
    ctx.emit(Event::Planned {
        layers: plan.layers.len(),
    });
    let clamp = options.source_date_epoch;
    let chunker = Chunker::auto(options.chunker);
    // Largest layers first, so no big one is left running alone at the end.
    let mut order: Vec<usize> = (0..plan.layers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plan.layers[i].content_bytes));
    let written: Vec<(usize, LayerInfo)> = order
        .par_iter()
        .with_max_len(1)
        .map(|&i| {
            let layer = &plan.layers[i];
            // Every layer starts with the root directory, so its owner, mode and
            // xattrs are kept too.
            let mut entries: Vec<&Entry> = tree
                .root
                .iter()
                .chain(layer.entries.iter().map(|&i| &tree.entries[i]))
                .collect();
            if let Compression::SeekableZstd(_) = options.compression {
                let skip = usize::from(tree.root.is_some());
                let component = |i: usize| match i.checked_sub(skip) {
                    Some(j) => &*components[layer.entries[j]],
                    None => "",
                };
                entries = seekable_order(&entries, component, chunker.config());
            }
            let mut blob = layout.temp_blob()?;
            let dest = blob.path().to_path_buf();
            let settings = LayerSettings {
                compression: options.compression,
                chunker,
                content: source,
                clamp,
                cancel: &ctx.cancel,
            };
            let (_, info) = write_layer(blob.writer(), &dest, &entries, &settings)?;
            let (digest, size) = layout.commit(blob)?;
            debug_assert_eq!((digest, size), (info.digest, info.size));
            ctx.emit(Event::LayerWritten {
                bytes: layer.content_bytes,
            });
            Ok((i, info))
        })
        .collect::<Result<_>>()?;
    let mut infos: Vec<Option<LayerInfo>> = vec![None; plan.layers.len()];
    for (i, info) in written {
        infos[i] = Some(info);
    }
    let infos: Vec<LayerInfo> = infos
        .into_iter()
        .map(|i| i.expect("every layer written"))
        .collect();

    let (base, base_annotations) = match base {
        Some((config, annotations)) => (Some(config), Some(annotations)),
        None => (None, None),
    };
    let created = match (
        options.source_date_epoch,
        base.and_then(|b| b.created.clone()),
    ) {
        (Some(epoch), _) => rfc3339(epoch),
        (None, Some(created)) => created,
        (None, None) => rfc3339(tree.entries.iter().map(|e| e.mtime).max().unwrap_or(0)),
    };
    // The source image's history stays, without its layers.
    let mut history: Vec<History> = base
        .map(|b| b.history.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|h| History {
            empty_layer: true,
            ..h
        })
        .collect();
    history.extend(plan.layers.iter().map(|l| History {
        created: Some(created.clone()),
        created_by: Some("chunkah pack".to_string()),
        comment: Some(summarise(&l.components)),
        author: None,
        empty_layer: false,
    }));
    let config = ImageConfig {
        created: Some(created),
        author: base.and_then(|b| b.author.clone()),
        architecture: base.map_or_else(|| ctx.architecture.clone(), |b| b.architecture.clone()),
        variant: base.and_then(|b| b.variant.clone()),
        os: base.map_or_else(|| "linux".to_string(), |b| b.os.clone()),
        config: {
            let mut runtime = match (&options.runtime, base) {
                (Some(r), _) => r.clone(),
                (None, Some(b)) => b.config.clone(),
                (None, None) => RuntimeConfig::default(),
            };
            runtime.labels.extend(options.labels.clone());
            runtime
        },
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: infos.iter().map(|i| i.diff_id).collect(),
        },
        history,
        other: base.map(|b| b.other.clone()).unwrap_or_default(),
    };
    if ctx.cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    let config_json = serde_json::to_vec(&config).expect("a config serialises");
    let config_desc = layout.put_blob(CONFIG_MEDIA_TYPE, &config_json)?;
    let layers: Vec<Descriptor> = infos
        .iter()
        .zip(&plan.layers)
        .map(|(info, l)| Descriptor {
            media_type: info.media_type.to_string(),
            digest: info.digest,
            size: info.size,
            annotations: {
                let mut a: BTreeMap<String, String> =
                    [(COMPONENTS_ANNOTATION.to_string(), l.components.join("\n"))].into();
                if let Some(index) = &info.index {
                    index.annotate(&mut a);
                }
                a
            },
            artifact_type: None,
            platform: None,
        })
        .collect();
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        config: config_desc.clone(),
        layers,
        artifact_type: None,
        subject: None,
        annotations: {
            let mut a: BTreeMap<String, String> =
                base_annotations.map_or_else(BTreeMap::new, |a| a.clone());
            a.extend(options.annotations.clone());
            a
        },
    };
    let manifest_json = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let manifest_desc = layout.put_blob(MANIFEST_MEDIA_TYPE, &manifest_json)?;
    layout.set_tag(tag, manifest_desc.clone())?;

    let mut names: Vec<&crate::grouping::Component> = components.iter().collect();
    names.sort_unstable();
    names.dedup();
    Ok(PackReport {
        schema_version: PackReport::SCHEMA_VERSION,
        manifest: manifest_desc.digest,
        config: config_desc.digest,
        total_size: infos.iter().map(|i| i.size).sum(),
        components: names.len(),
        layers: infos
            .iter()
            .zip(&plan.layers)
            .map(|(i, l)| LayerReport {
                digest: i.digest,
                size: i.size,
                tar_size: i.tar_size,
                entries: l.entries.len(),
                components: l.components.clone(),
            })
            .collect(),
        warnings: tree.warnings,
        reference: String::new(),
        pushed: None,
        deltas: Vec::new(),
    })
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
