//! A directory tree becomes an image in an OCI layout: walk, plan, write.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use super::{assign_components, plan_layers};
use crate::chunker::{Chunker, ChunkerConfig};
use crate::digest::Digest;
use crate::error::Result;
use crate::layer::index::{
    INDEX_DIGEST_ANNOTATION, INDEX_LENGTH_ANNOTATION, INDEX_OFFSET_ANNOTATION,
};
use crate::layer::{
    default_layer_chunker, seekable_order, write_layer, Compression, LayerInfo, Source,
};
use crate::oci::layout::LayoutWriter;
use crate::oci::types::{
    rfc3339, Descriptor, History, ImageConfig, Manifest, RootFs, RuntimeConfig, CONFIG_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
};
use crate::walk::{walk_dir, Entry, Tree};

/// Layer annotation listing a layer's components, one per line.
pub const COMPONENTS_ANNOTATION: &str = "dev.chunkah.components";

/// What to make of a tree.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// At most this many layers (1 to 500).
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
    /// WorkingDir, ExposedPorts, Volumes, StopSignal, Labels...).
    pub runtime: RuntimeConfig,
    /// Config labels, added to (and overriding) those of `runtime`.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Config architecture (GOARCH name).
    pub architecture: String,
    /// The components of each layer of the previous version, to keep its grouping.
    pub prior: Option<Vec<Vec<String>>>,
    /// The config of the image being rechunked, if the tree comes from one:
    /// its author, architecture, variant, os, unknown fields and creation
    /// time are kept, and its history entries come first (as entries without
    /// a layer). The runtime configuration is taken from `runtime`.
    pub base_config: Option<ImageConfig>,
    /// Set it to stop packing: [`pack_dir`] then fails with `Error::Cancelled`,
    /// leaving no image and no partial blob behind.
    pub cancel: Arc<AtomicBool>,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            max_layers: 64,
            compression: Compression::default(),
            chunker: default_layer_chunker(),
            source_date_epoch: None,
            runtime: RuntimeConfig::default(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            architecture: crate::oci::types::host_architecture().to_string(),
            prior: None,
            base_config: None,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Where packing is, for progress reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The tree was walked.
    Walked {
        /// Entries found.
        entries: usize,
        /// Bytes of regular-file content.
        bytes: u64,
    },
    /// Layers were planned.
    Planned {
        /// How many.
        layers: usize,
    },
    /// One more layer is written.
    LayerWritten {
        /// Content bytes in it.
        bytes: u64,
    },
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
}

/// The components of each layer of a manifest written by [`pack_dir`], or
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

/// Packs the directory tree at `root` into `layout` under `tag`. `owner`
/// names the package owning a path (see `component::read_package_databases`).
pub fn pack_dir(
    root: &Path,
    owner: impl Fn(&Path) -> Option<String>,
    layout: &LayoutWriter,
    tag: &str,
    options: &PackOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<PackReport> {
    let tree = walk_dir(root)?;
    pack_tree(
        tree,
        Source::Dir(root),
        owner,
        layout,
        tag,
        options,
        progress,
    )
}

/// Packs a walked tree whose file content comes from `source`.
pub fn pack_tree(
    tree: Tree,
    source: Source<'_>,
    owner: impl Fn(&Path) -> Option<String>,
    layout: &LayoutWriter,
    tag: &str,
    options: &PackOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<PackReport> {
    let bytes = tree
        .entries
        .iter()
        .map(|e| match e.kind {
            crate::walk::EntryKind::Regular { size } => size,
            _ => 0,
        })
        .sum();
    progress(Progress::Walked {
        entries: tree.entries.len(),
        bytes,
    });
    let components = assign_components(&tree, owner);
    let plan = plan_layers(
        &tree,
        &components,
        options.max_layers,
        options.prior.as_deref(),
    );
    progress(Progress::Planned {
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
                    Some(j) => components[layer.entries[j]].as_str(),
                    None => "",
                };
                entries = seekable_order(&entries, component, chunker.config());
            }
            let mut blob = layout.temp_blob()?;
            let dest = blob.path().to_path_buf();
            let (_, info) = write_layer(
                blob.writer(),
                &dest,
                options.compression,
                &chunker,
                source,
                &entries,
                clamp,
                &options.cancel,
            )?;
            let (digest, size) = layout.commit(blob)?;
            debug_assert_eq!((digest, size), (info.digest, info.size));
            progress(Progress::LayerWritten {
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

    let base = options.base_config.as_ref();
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
        architecture: base.map_or_else(|| options.architecture.clone(), |b| b.architecture.clone()),
        variant: base.and_then(|b| b.variant.clone()),
        os: base.map_or_else(|| "linux".to_string(), |b| b.os.clone()),
        config: {
            let mut runtime = options.runtime.clone();
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
    if options.cancel.load(Ordering::Relaxed) {
        return Err(crate::Error::Cancelled);
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
                    a.insert(INDEX_OFFSET_ANNOTATION.into(), index.offset.to_string());
                    a.insert(INDEX_LENGTH_ANNOTATION.into(), index.length.to_string());
                    a.insert(INDEX_DIGEST_ANNOTATION.into(), index.digest.to_string());
                }
                a
            },
            platform: None,
        })
        .collect();
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        config: config_desc.clone(),
        layers,
        annotations: options.annotations.clone(),
    };
    let manifest_json = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let manifest_desc = layout.put_blob(MANIFEST_MEDIA_TYPE, &manifest_json)?;
    layout.set_tag(tag, manifest_desc.clone())?;

    let mut names: Vec<&String> = components.iter().collect();
    names.sort_unstable();
    names.dedup();
    Ok(PackReport {
        schema_version: 1,
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
