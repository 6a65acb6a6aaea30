//! Reading a root file system from a tarball (as `podman export` writes).
//!
//! Entries come back in the same canonical order as a directory walk (depth
//! first, children sorted by name bytes), whatever the tarball's order; a
//! later entry for the same path replaces an earlier one. Paths are relative
//! and may not leave the root: `..` components are an error, leading `/` and
//! `./` are dropped. Regular-file content stays in the tarball: the returned
//! [`TarContent`] says where each file's bytes are.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Entry, EntryKind, Tree};
use crate::error::{Error, Result};

/// Where the content of each regular file of a tarball is.
#[derive(Debug)]
pub struct TarContent {
    /// The tarball.
    pub file: File,
    /// Its path, for error messages.
    pub path: PathBuf,
    /// Path of a regular entry -> offset of its content in the tarball.
    pub offsets: HashMap<PathBuf, u64>,
}

fn invalid(path: &Path, why: String) -> Error {
    Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    )
}

/// A tar path made relative and checked: `None` for the root itself.
fn normalise(tarball: &Path, raw: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
    let mut parts = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(invalid(
                    tarball,
                    format!(
                        "entry {:?} leaves the root (..)",
                        String::from_utf8_lossy(raw)
                    ),
                ))
            }
            c => parts.push(c.to_vec()),
        }
    }
    Ok((!parts.is_empty()).then_some(parts))
}

fn join(parts: &[Vec<u8>]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&parts.join(&b'/')))
}

/// Reads the uncompressed tarball at `path`.
pub fn walk_tar(path: &Path) -> Result<(Tree, TarContent)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
    if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(invalid(
            path,
            "is compressed: decompress it first (gzip -d or zstd -d)".into(),
        ));
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = tar::Archive::new(&file);
    let mut by_path: BTreeMap<Vec<Vec<u8>>, (Entry, Option<u64>)> = BTreeMap::new();
    let mut root = None;
    let bad = |e: std::io::Error| invalid(path, format!("malformed tarball: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw_path = entry.path_bytes().into_owned();
        let parts = normalise(path, &raw_path)?;
        let header = entry.header().clone();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut xattrs: Vec<(OsString, Vec<u8>)> = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(bad)? {
            for ext in exts {
                let ext = ext.map_err(bad)?;
                if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((
                        OsStr::from_bytes(name).to_owned(),
                        ext.value_bytes().to_vec(),
                    ));
                }
            }
        }
        xattrs.sort();
        let size = entry.size();
        let num = |v: std::io::Result<u64>, what: &str| {
            v.map_err(|e| {
                invalid(
                    path,
                    format!(
                        "entry {:?}: bad {what}: {e}",
                        String::from_utf8_lossy(&raw_path)
                    ),
                )
            })
        };
        let device = || -> Result<(u32, u32)> {
            let major = header.device_major().map_err(bad)?.unwrap_or(0);
            let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
            Ok((major, minor))
        };
        let link_target = |l: &Option<Vec<u8>>| -> Result<Vec<u8>> {
            l.clone().ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "link {:?} has no target",
                        String::from_utf8_lossy(&raw_path)
                    ),
                )
            })
        };
        use tar::EntryType as T;
        let kind = match header.entry_type() {
            T::Regular | T::Continuous => EntryKind::Regular { size },
            T::Directory => EntryKind::Directory,
            T::Symlink => EntryKind::Symlink {
                target: PathBuf::from(OsStr::from_bytes(&link_target(&link)?)),
            },
            T::Link => {
                let target = normalise(path, &link_target(&link)?)?
                    .ok_or_else(|| invalid(path, "a hard link to the root".into()))?;
                EntryKind::HardLink {
                    target: join(&target),
                }
            }
            T::Char => {
                let (major, minor) = device()?;
                EntryKind::CharDevice { major, minor }
            }
            T::Block => {
                let (major, minor) = device()?;
                EntryKind::BlockDevice { major, minor }
            }
            T::Fifo => EntryKind::Fifo,
            other => {
                return Err(invalid(
                    path,
                    format!(
                        "entry {:?} has an unsupported type {other:?}",
                        String::from_utf8_lossy(&raw_path)
                    ),
                ))
            }
        };
        let e = Entry {
            path: parts.as_deref().map(join).unwrap_or_default(),
            kind,
            mode: num(header.mode().map(u64::from), "mode")? as u32 & 0o7777,
            uid: num(header.uid(), "uid")? as u32,
            gid: num(header.gid(), "gid")? as u32,
            mtime: num(header.mtime(), "mtime")? as i64,
            xattrs,
        };
        let offset = matches!(e.kind, EntryKind::Regular { .. }).then(|| entry.raw_file_position());
        match parts {
            None => root = Some(e),
            Some(parts) => {
                by_path.insert(parts, (e, offset));
            }
        }
    }
    // Hard links: the first path of each inode in walk order holds the content.
    let index: HashMap<PathBuf, usize> = by_path
        .values()
        .enumerate()
        .map(|(i, (e, _))| (e.path.clone(), i))
        .collect();
    let mut entries: Vec<(Entry, Option<u64>)> = by_path.into_values().collect();
    let mut group_first: HashMap<usize, usize> = HashMap::new();
    for i in 0..entries.len() {
        let EntryKind::HardLink { target } = &entries[i].0.kind else {
            continue;
        };
        let t = *index.get(target).ok_or_else(|| {
            invalid(
                path,
                format!(
                    "hard link {} points to {}, which the tarball does not hold",
                    entries[i].0.path.display(),
                    target.display()
                ),
            )
        })?;
        if matches!(
            entries[t].0.kind,
            EntryKind::HardLink { .. } | EntryKind::Directory
        ) {
            return Err(invalid(
                path,
                format!(
                    "hard link {} points to {}, which is not a file",
                    entries[i].0.path.display(),
                    target.display()
                ),
            ));
        }
        let first = *group_first.entry(t).or_insert(t);
        if i < first {
            // This link comes first in walk order: it takes the content.
            let (content_kind, content_offset) = (entries[first].0.kind.clone(), entries[first].1);
            entries[i].0.kind = content_kind;
            entries[i].1 = content_offset;
            group_first.insert(t, i);
        }
    }
    for i in 0..entries.len() {
        let holder = match &entries[i].0.kind {
            EntryKind::HardLink { target } => group_first.get(&index[target]).copied(),
            _ => group_first.get(&i).copied().filter(|&f| f != i),
        };
        if let Some(f) = holder {
            if f != i {
                entries[i].0.kind = EntryKind::HardLink {
                    target: entries[f].0.path.clone(),
                };
                entries[i].1 = None;
            }
        }
    }
    // All names of an inode share its metadata: the tarball's content entry
    // has it (a hard link entry may carry none, such as xattrs).
    for (&t, &f) in &group_first {
        let holder = entries[t].0.clone();
        let first_path = entries[f].0.path.clone();
        for (e, _) in entries.iter_mut() {
            let member = e.path == first_path
                || matches!(&e.kind, EntryKind::HardLink { target } if *target == first_path);
            if member {
                e.mode = holder.mode;
                e.uid = holder.uid;
                e.gid = holder.gid;
                e.mtime = holder.mtime;
                e.xattrs = holder.xattrs.clone();
            }
        }
    }
    let mut offsets = HashMap::new();
    let mut tree = Tree {
        root,
        ..Tree::default()
    };
    for (e, off) in entries {
        if let Some(off) = off {
            offsets.insert(e.path.clone(), off);
        }
        tree.entries.push(e);
    }
    Ok((
        tree,
        TarContent {
            file,
            path: path.to_path_buf(),
            offsets,
        },
    ))
}
