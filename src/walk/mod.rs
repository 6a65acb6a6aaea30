//! The rootfs walker: a directory tree becomes a sorted list of [`Entry`]s.
//!
//! Nothing of the tree is lost: file type, numeric owner, all permission bits,
//! every extended attribute, device numbers, symlink targets (never followed)
//! and hard links (later links of an inode name the first one). Names are
//! kept as bytes, so non-UTF-8 names survive. The order is a depth-first walk
//! with children sorted by name bytes: parents come before children, and the
//! same tree always gives the same list.

pub mod acl;
mod filter;
mod tar;
mod xattr;

pub use self::filter::{filter, Filtered, Prune};
pub use self::tar::{walk_tar, ContentFile, TarContent, TarMerger};

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What an entry is, with what its type needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of `size` bytes (its content is read from the tree).
    Regular {
        /// Size in bytes.
        size: u64,
    },
    /// A directory.
    Directory,
    /// A symbolic link and its target, as stored (not resolved).
    Symlink {
        /// The link's target bytes.
        target: Box<Path>,
    },
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
    /// Another link to the inode of an earlier entry: `target` is its path.
    HardLink {
        /// Path (relative to the root) of the first entry of the inode.
        target: Box<Path>,
    },
}

/// One file system object, relative to the walked root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the root, without a leading `/` (e.g. `usr/bin/ls`).
    pub path: Box<Path>,
    /// Type and type-specific data.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Extended attributes, sorted by name.
    pub xattrs: Box<[(OsString, Vec<u8>)]>,
}

impl Entry {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Directory
    }
}

/// The result of a walk.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    /// Every entry but the root itself, parents before children.
    pub entries: Vec<Entry>,
    /// The root directory's own metadata (path empty).
    pub root: Option<Entry>,
    /// Things skipped, one line each (sockets, for instance).
    pub warnings: Vec<String>,
}

/// [`Tree::parents`] of an entry with no listed ancestor.
pub const NO_PARENT: u32 = u32::MAX;

impl Tree {
    /// For each entry, the index of its nearest listed ancestor directory
    /// ([`NO_PARENT`] if none), found in one pass over the canonical order,
    /// in which a directory's descendants follow it directly.
    pub fn parents(&self) -> Vec<u32> {
        assert!(self.entries.len() < NO_PARENT as usize, "too many entries");
        let mut out = Vec::with_capacity(self.entries.len());
        // The directories that hold the current entry, outermost first.
        let mut stack: Vec<usize> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            while let Some(&top) = stack.last() {
                let dir = &self.entries[top].path;
                if e.path != *dir && e.path.starts_with(dir) {
                    break;
                }
                stack.pop();
            }
            out.push(stack.last().map_or(NO_PARENT, |&p| p as u32));
            if e.is_dir() {
                stack.push(i);
            }
        }
        out
    }
}

/// Walks the directory tree at `root`.
pub fn walk_dir(root: &Path) -> Result<Tree> {
    let meta = fs::symlink_metadata(root).map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        return Err(Error::io(
            root,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
        ));
    }
    let mut walker = Walker {
        tree: Tree::default(),
        inodes: HashMap::new(),
    };
    walker.tree.root = Some(walker.entry(root, PathBuf::new(), &meta)?);
    walker.dir(root, Path::new(""))?;
    Ok(walker.tree)
}

struct Walker {
    tree: Tree,
    /// (device, inode) of multiply-linked non-directories -> first path.
    inodes: HashMap<(u64, u64), PathBuf>,
}

impl Walker {
    fn dir(&mut self, abs: &Path, rel: &Path) -> Result<()> {
        let mut children: Vec<OsString> = fs::read_dir(abs)
            .map_err(|e| Error::io(abs, e))?
            .map(|d| d.map(|d| d.file_name()).map_err(|e| Error::io(abs, e)))
            .collect::<Result<_>>()?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in children {
            let child_abs = abs.join(&name);
            let child_rel = rel.join(&name);
            let meta = fs::symlink_metadata(&child_abs).map_err(|e| Error::io(&child_abs, e))?;
            if meta.file_type().is_socket() {
                self.tree.warnings.push(format!(
                    "{}: sockets cannot be stored in an image, skipped",
                    child_abs.display()
                ));
                continue;
            }
            let entry = self.entry(&child_abs, child_rel.clone(), &meta)?;
            let is_dir = entry.is_dir();
            self.tree.entries.push(entry);
            if is_dir {
                self.dir(&child_abs, &child_rel)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, abs: &Path, rel: PathBuf, meta: &fs::Metadata) -> Result<Entry> {
        let ft = meta.file_type();
        let rdev = meta.rdev();
        let device = || (libc::major(rdev), libc::minor(rdev));
        let mut kind = if ft.is_dir() {
            EntryKind::Directory
        } else if ft.is_symlink() {
            EntryKind::Symlink {
                target: fs::read_link(abs)
                    .map_err(|e| Error::io(abs, e))?
                    .into_boxed_path(),
            }
        } else if ft.is_file() {
            EntryKind::Regular { size: meta.len() }
        } else if ft.is_char_device() {
            let (major, minor) = device();
            EntryKind::CharDevice { major, minor }
        } else if ft.is_block_device() {
            let (major, minor) = device();
            EntryKind::BlockDevice { major, minor }
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            return Err(Error::io(
                abs,
                std::io::Error::new(std::io::ErrorKind::Unsupported, "unknown file type"),
            ));
        };
        if !ft.is_dir() && meta.nlink() > 1 && !rel.as_os_str().is_empty() {
            match self.inodes.get(&(meta.dev(), meta.ino())) {
                Some(first) => {
                    kind = EntryKind::HardLink {
                        target: first.clone().into_boxed_path(),
                    }
                }
                None => {
                    self.inodes.insert((meta.dev(), meta.ino()), rel.clone());
                }
            }
        }
        Ok(Entry {
            xattrs: xattr::list(abs)?.into(),
            path: rel.into_boxed_path(),
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_compact() {
        // A tree of a million files holds a million entries at once: each
        // byte here is a megabyte there.
        assert_eq!(std::mem::size_of::<EntryKind>(), 24);
        assert!(
            std::mem::size_of::<Entry>() <= 80,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn parents_are_the_nearest_listed_directories() {
        let e = |path: &str, dir: bool| Entry {
            path: std::path::Path::new(path).into(),
            kind: if dir {
                EntryKind::Directory
            } else {
                EntryKind::Fifo
            },
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Box::default(),
        };
        let tree = Tree {
            // Canonical order; `a/b` is not listed, `a.b` sorts after `a/`.
            entries: vec![
                e("a", true),
                e("a/b/c", true),
                e("a/b/c/d", false),
                e("a/x", false),
                e("a.b", true),
                e("a.b/y", false),
                e("z", false),
            ],
            root: None,
            warnings: Vec::new(),
        };
        assert_eq!(
            tree.parents(),
            [NO_PARENT, 0, 1, 0, NO_PARENT, 4, NO_PARENT]
        );
    }

    #[test]
    fn walks_sorted_with_hard_links_symlinks_and_modes() {
        let dir = std::env::temp_dir().join(format!("chunkah-walk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("b/sub")).unwrap();
        fs::write(dir.join("b/sub/file"), b"hello").unwrap();
        fs::write(dir.join("a"), b"x").unwrap();
        fs::hard_link(dir.join("a"), dir.join("c")).unwrap();
        std::os::unix::fs::symlink("/does/not/exist", dir.join("link")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.join("a"), fs::Permissions::from_mode(0o4755)).unwrap();
        let bad_name = std::ffi::OsStr::from_bytes(b"\xff\xfe name");
        fs::write(dir.join(bad_name), b"").unwrap();
        let tree = walk_dir(&dir).unwrap();
        let paths: Vec<&[u8]> = tree
            .entries
            .iter()
            .map(|e| e.path.as_os_str().as_bytes())
            .collect();
        assert_eq!(
            paths,
            [
                &b"a"[..],
                b"b",
                b"b/sub",
                b"b/sub/file",
                b"c",
                b"link",
                b"\xff\xfe name"
            ]
        );
        assert_eq!(tree.entries[0].mode, 0o4755);
        assert_eq!(tree.entries[0].kind, EntryKind::Regular { size: 1 });
        assert_eq!(
            tree.entries[4].kind,
            EntryKind::HardLink {
                target: std::path::Path::new("a").into()
            }
        );
        assert_eq!(
            tree.entries[5].kind,
            EntryKind::Symlink {
                target: std::path::Path::new("/does/not/exist").into()
            }
        );
        assert!(tree.root.as_ref().unwrap().is_dir());
        fs::remove_dir_all(&dir).unwrap();
        let err = walk_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("chunkah-walk"), "{err}");
    }
}
