//! Measures what binary deltas would cost between two root file systems,
//! to choose the design of the delta format (issue 11) by measurement.
//!
//! For every regular file of NEW whose content OLD lacks (by BLAKE3):
//! - with a reference in OLD (the same path; else the same path with version
//!   numbers changed: `libfoo.so.3.0.12` and `.3.0.15`, `python3.11/` and
//!   `python3.13/`), zstd at LEVEL with the reference as a prefix dictionary,
//!   long-distance matching and a window covering both; kept only if smaller
//!   than the file compressed alone;
//! - the rest (and files whose patch loses) compressed together as one solid
//!   stream at LEVEL with long-distance matching.
//!
//! Each patch is decoded again and compared with the file, so the figures
//! are of patches that work.
//!
//! `cargo run --release --example delta_series -- OLD_DIR NEW_DIR [LEVEL]`

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chunkah::walk::{walk_dir, EntryKind};
use chunkah::ChunkId;
use zstd::stream::raw::CParameter;

/// `path` with every run of digits (and the `.`, `-`, `+`, `~`, `_` between
/// digits) replaced by `#`: the same key for two versions of a file.
fn version_key(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let mut j = i;
            while j < b.len()
                && (b[j].is_ascii_digit()
                    || (b"._-+~".contains(&b[j])
                        && j + 1 < b.len()
                        && b[j + 1].is_ascii_digit()
                        && j > i))
            {
                j += 1;
            }
            out.push('#');
            i = j;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

struct File {
    path: PathBuf,
    size: u64,
    id: ChunkId,
}

fn files(root: &Path) -> Vec<File> {
    let tree = walk_dir(root).expect("walking the tree");
    tree.entries
        .iter()
        .filter_map(|e| match e.kind {
            EntryKind::Regular { size } => {
                let bytes = std::fs::read(root.join(&e.path)).expect("reading a file");
                Some(File {
                    path: e.path.to_path_buf(),
                    size,
                    id: ChunkId::of(&bytes),
                })
            }
            _ => None,
        })
        .collect()
}

/// A window log covering `n` bytes, within zstd's limits.
fn window_log(n: u64) -> u32 {
    (64 - n.max(1).leading_zeros()).clamp(10, 30)
}

fn patch(reference: &[u8], new: &[u8], level: i32) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), level, reference)
        .expect("an encoder");
    let window = window_log((reference.len() + new.len()) as u64);
    enc.set_parameter(CParameter::WindowLog(window)).unwrap();
    enc.set_parameter(CParameter::EnableLongDistanceMatching(true))
        .unwrap();
    enc.set_pledged_src_size(Some(new.len() as u64)).unwrap();
    enc.write_all(new).unwrap();
    enc.finish().unwrap()
}

fn unpatch(reference: &[u8], patch: &[u8], size: usize) -> Vec<u8> {
    let mut dec =
        zstd::stream::read::Decoder::with_ref_prefix(patch, reference).expect("a decoder");
    dec.window_log_max(31).unwrap();
    let mut out = Vec::with_capacity(size);
    std::io::Read::read_to_end(&mut dec, &mut out).expect("a patch decodes");
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (old_root, new_root) = match args.as_slice() {
        [o, n, ..] => (PathBuf::from(o), PathBuf::from(n)),
        _ => panic!("usage: delta_series OLD_DIR NEW_DIR [LEVEL]"),
    };
    let level: i32 = args.get(2).map_or(19, |l| l.parse().expect("a level"));
    let start = Instant::now();
    let old = files(&old_root);
    let new = files(&new_root);
    let old_ids: std::collections::HashSet<ChunkId> = old.iter().map(|f| f.id).collect();
    let by_path: HashMap<&Path, &File> = old.iter().map(|f| (f.path.as_path(), f)).collect();
    let mut by_key: HashMap<String, Vec<&File>> = HashMap::new();
    for f in &old {
        by_key
            .entry(version_key(&f.path.to_string_lossy()))
            .or_default()
            .push(f);
    }
    let (mut same_path, mut versioned, mut patch_bytes, mut patched_size) = (0, 0, 0u64, 0u64);
    let (mut lost, mut solid_files) = (0, 0);
    let mut solid = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &new {
        if old_ids.contains(&f.id) || !seen.insert(f.id) {
            continue;
        }
        let bytes = std::fs::read(new_root.join(&f.path)).unwrap();
        let reference = by_path.get(f.path.as_path()).copied().or_else(|| {
            by_key
                .get(&version_key(&f.path.to_string_lossy()))
                .and_then(|c| c.iter().min_by_key(|o| o.size.abs_diff(f.size)).copied())
        });
        if let Some(r) = reference {
            let rbytes = std::fs::read(old_root.join(&r.path)).unwrap();
            let p = patch(&rbytes, &bytes, level);
            let alone = zstd::bulk::compress(&bytes, level).unwrap();
            assert_eq!(
                unpatch(&rbytes, &p, bytes.len()),
                bytes,
                "{}",
                f.path.display()
            );
            if p.len() < alone.len() {
                if r.path == f.path {
                    same_path += 1;
                } else {
                    versioned += 1;
                }
                patch_bytes += p.len() as u64;
                patched_size += f.size;
                continue;
            }
            lost += 1;
        }
        solid_files += 1;
        solid.extend_from_slice(&bytes);
    }
    let solid_size = {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), level).unwrap();
        enc.set_parameter(CParameter::WindowLog(window_log(solid.len() as u64)))
            .unwrap();
        enc.set_parameter(CParameter::EnableLongDistanceMatching(true))
            .unwrap();
        enc.write_all(&solid).unwrap();
        enc.finish().unwrap().len() as u64
    };
    println!(
        "{}: patches {} ({} same path, {} by version) {} bytes for {} bytes of files; \
         {} patches lost to plain compression; solid {} files, {} bytes -> {} bytes; \
         total {} bytes; {:.1} s",
        new_root.display(),
        same_path + versioned,
        same_path,
        versioned,
        patch_bytes,
        patched_size,
        lost,
        solid_files,
        solid.len(),
        solid_size,
        patch_bytes + solid_size,
        start.elapsed().as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_keys() {
        use super::version_key;
        assert_eq!(
            version_key("usr/lib/libfoo.so.3.0.12"),
            version_key("usr/lib/libfoo.so.3.0.15")
        );
        assert_eq!(
            version_key("usr/lib/python3.11/os.py"),
            version_key("usr/lib/python3.13/os.py")
        );
        assert_eq!(
            version_key("lib/modules/6.1.0-21-amd64/x.ko"),
            version_key("lib/modules/6.1.0-25-amd64/x.ko")
        );
        assert_ne!(version_key("usr/bin/a"), version_key("usr/bin/b"));
    }
}
