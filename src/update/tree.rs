//! Planning between two root file system directories, chunked on the fly.
//!
//! The levels are those of [`super::plan`] in *uncompressed* bytes, since
//! nothing is compressed yet: **image** is the new tree's content; **layer**
//! the content of the new layers (planned as `pack` would, with the old
//! tree's grouping as `--prior`) whose entries differ from every old layer;
//! **file** the content of new files whose content the old tree lacks;
//! **chunk** the new chunks (each distinct one once) the old tree lacks, one
//! request per run of missing chunks in a file. There is no index.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;

use super::{Level, Levels};
use crate::chunker::{digest_chunks, Chunker, ChunkerConfig, DigestedChunk, MappedFile};
use crate::digest::ChunkId;
use crate::error::Result;
use crate::grouping::{assign_components, plan_layers, LayerPlan};
use crate::walk::{walk_dir, EntryKind, Tree};

/// A walked tree with the chunks of every regular file.
#[derive(Debug)]
pub struct TreeView {
    /// The walk.
    pub tree: Tree,
    /// For each entry of `tree.entries`, its chunks (empty but for files).
    pub chunks: Vec<Vec<DigestedChunk>>,
    /// The layers `pack` would make.
    pub layers: LayerPlan,
}

/// Files at least this large are chunked on several threads.
const PARALLEL_FILE: u64 = 8 << 20;

/// Walks and chunks the tree at `root`; `owner` names each path's package
/// (see `component::read_package_databases`) and `prior` is the layer
/// grouping to keep.
pub fn tree_view(
    root: &Path,
    config: ChunkerConfig,
    owner: impl Fn(&Path) -> Option<String>,
    prior: Option<&[Vec<String>]>,
) -> Result<TreeView> {
    let tree = walk_dir(root)?;
    let chunks = chunk_tree(root, &tree, config)?;
    let components = assign_components(&tree, owner);
    let intervals = crate::grouping::update_intervals(&tree, &components)?;
    let layers = plan_layers(&tree, &components, 64, prior, &intervals);
    Ok(TreeView {
        tree,
        chunks,
        layers,
    })
}

/// The chunks of every regular file of `tree` (walked at `root`), one list
/// per entry: files are read on all threads of the current rayon pool, small
/// ones with `read`, large ones mapped.
pub fn chunk_tree(
    root: &Path,
    tree: &Tree,
    config: ChunkerConfig,
) -> Result<Vec<Vec<DigestedChunk>>> {
    use std::io::Read;
    let chunker = Chunker::auto(config);
    tree.entries
        .par_iter()
        .map_init(Vec::new, |buf, e| match e.kind {
            EntryKind::Regular { size } if size > 0 => {
                let path = root.join(&e.path);
                if size < MAP_FILE {
                    buf.clear();
                    std::fs::File::open(&path)
                        .and_then(|f| f.take(MAP_FILE).read_to_end(buf))
                        .map_err(|err| crate::Error::io(&path, err))?;
                    let chunks = chunker.chunks(buf);
                    return Ok(chunks
                        .iter()
                        .map(|&chunk| DigestedChunk {
                            chunk,
                            id: ChunkId::of(
                                &buf[chunk.offset as usize..(chunk.offset + chunk.length) as usize],
                            ),
                        })
                        .collect());
                }
                let file = MappedFile::open(&path)?;
                Ok(if size >= PARALLEL_FILE {
                    chunker.digest_chunks_parallel(&file)
                } else {
                    digest_chunks(&file, &chunker.chunks(&file))
                })
            }
            _ => Ok(Vec::new()),
        })
        .collect()
}

/// Files smaller than this are read, not mapped.
const MAP_FILE: u64 = 1 << 20;

/// A file's content name: BLAKE3 of its chunks' digests.
fn content_id(chunks: &[DigestedChunk]) -> ChunkId {
    let mut h = blake3::Hasher::new();
    for c in chunks {
        h.update(&c.id.0);
    }
    ChunkId(*h.finalize().as_bytes())
}

/// A layer's name: everything its tar would hold, but for file bytes, which
/// the chunk digests stand for.
fn layer_id(view: &TreeView, entries: &[usize], clamp: Option<i64>) -> ChunkId {
    let mut h = blake3::Hasher::new();
    for &i in entries {
        let e = &view.tree.entries[i];
        h.update(e.path.as_os_str().as_bytes());
        h.update(&[0]);
        h.update(format!("{:?}", e.kind).as_bytes());
        let mtime = clamp.map_or(e.mtime, |c| e.mtime.min(c));
        for v in [
            u64::from(e.mode),
            u64::from(e.uid),
            u64::from(e.gid),
            mtime as u64,
        ] {
            h.update(&v.to_le_bytes());
        }
        for (k, v) in &e.xattrs {
            h.update(k.as_bytes());
            h.update(&[0]);
            h.update(v);
        }
        h.update(&content_id(&view.chunks[i]).0);
    }
    ChunkId(*h.finalize().as_bytes())
}

fn entry_bytes(view: &TreeView, i: usize) -> u64 {
    match view.tree.entries[i].kind {
        EntryKind::Regular { size } => size,
        _ => 0,
    }
}

fn content_bytes(view: &TreeView, entries: &[usize]) -> u64 {
    entries.iter().map(|&i| entry_bytes(view, i)).sum()
}

/// A level of [`plan_trees_by`] whose bytes are counted entry by entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeLevel {
    /// The content of the new layers.
    Layer,
    /// The new chunks.
    Chunk,
}

/// The four levels from `old` to `new`, in uncompressed bytes; mtimes are
/// clamped to `clamp` as `pack --source-date-epoch` does (without it, a
/// directory whose mtime changed changes every layer that holds it).
pub fn plan_trees(old: &TreeView, new: &TreeView, clamp: Option<i64>) -> Levels {
    plan_trees_by(old, new, clamp, &mut |_, _, _| {})
}

/// [`plan_trees`], telling `cost` the bytes of each entry of NEW (its
/// position in `new.tree.entries`) the layer and chunk levels count.
pub fn plan_trees_by(
    old: &TreeView,
    new: &TreeView,
    clamp: Option<i64>,
    cost: &mut dyn FnMut(TreeLevel, usize, u64),
) -> Levels {
    let all: Vec<usize> = (0..new.tree.entries.len()).collect();
    let image = content_bytes(new, &all);
    let old_layers: HashSet<ChunkId> = old
        .layers
        .layers
        .iter()
        .map(|l| layer_id(old, &l.entries, clamp))
        .collect();
    let (mut layer, mut layer_requests) = (0, 0);
    for l in &new.layers.layers {
        if !old_layers.contains(&layer_id(new, &l.entries, clamp)) {
            for &i in &l.entries {
                let bytes = entry_bytes(new, i);
                layer += bytes;
                cost(TreeLevel::Layer, i, bytes);
            }
            layer_requests += 1;
        }
    }
    let old_files: HashSet<ChunkId> = old
        .chunks
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| content_id(c))
        .collect();
    let old_chunks: HashSet<ChunkId> = old.chunks.iter().flatten().map(|c| c.id).collect();
    let (mut file, mut chunk, mut chunk_requests) = (0, 0, 0);
    let mut fetched: HashSet<ChunkId> = HashSet::new();
    for (i, c) in new.chunks.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
        if !old_files.contains(&content_id(c)) {
            file += c.iter().map(|d| d.chunk.length).sum::<u64>();
        }
        let mut in_run = false;
        for d in c {
            let missing = !old_chunks.contains(&d.id) && fetched.insert(d.id);
            if missing {
                chunk += d.chunk.length;
                cost(TreeLevel::Chunk, i, d.chunk.length);
                if !in_run {
                    chunk_requests += 1;
                }
            }
            in_run = missing;
        }
    }
    Levels {
        image: Level {
            bytes: image,
            ..Level::default()
        },
        layer: Level {
            bytes: layer,
            requests: Some(layer_requests),
            index_bytes: None,
        },
        file: Level {
            bytes: file,
            ..Level::default()
        },
        chunk: Level {
            bytes: chunk,
            requests: Some(chunk_requests),
            index_bytes: Some(0),
        },
        delta: None,
    }
}
