//! Read-only views of a root file system: what the package-database readers
//! see of a directory on this machine or of a tree read from tar streams.
//!
//! Paths are bytes relative to the root, components separated by one `/`,
//! `""` being the root itself. A view does not resolve symbolic links: its
//! caller does, inside the root, and asks only for paths whose parents are
//! real directories.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::walk::{EntryKind, TarContent, Tree};

/// What is at a path of a root, its last component not followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file (or a hard link to one).
    File,
    /// A symbolic link and its target.
    Symlink(Vec<u8>),
    /// Anything else (a device, a FIFO, a socket).
    Other,
}

/// A read-only view of a root file system.
pub trait RootView {
    /// What is at `rel`, or `None` if nothing is (or a parent is not a
    /// directory, or a loop of links hides it).
    fn node(&self, rel: &[u8]) -> Result<Option<Node>>;

    /// The content of the regular file at `rel`, at most `limit` bytes plus
    /// one (so a caller sees that it is longer); `None` if there is none.
    fn read(&self, rel: &[u8], limit: u64) -> Result<Option<Vec<u8>>>;

    /// The names of the entries of the directory at `rel`, sorted; `None`
    /// if there is none.
    fn list(&self, rel: &[u8]) -> Result<Option<Vec<Vec<u8>>>>;

    /// The names of the directories (not links to them) in the directory
    /// at `rel`, sorted; `None` if there is none.
    fn subdirs(&self, rel: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        let Some(names) = self.list(rel)? else {
            return Ok(None);
        };
        let mut dirs = Vec::new();
        for name in names {
            let mut p = rel.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&name);
            if self.node(&p)? == Some(Node::Dir) {
                dirs.push(name);
            }
        }
        Ok(Some(dirs))
    }

    /// `rel` as named in messages: a path on this machine, or in the tree.
    fn name(&self, rel: &[u8]) -> PathBuf;
}

/// Whether an error says that a path is not there (a parent may be a file).
pub(super) fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(libc::ELOOP)
}

/// A directory on this machine.
#[derive(Clone, Debug)]
pub struct DirRoot {
    root: PathBuf,
    /// Directory -> its subdirectories' names, sorted, when the tree has
    /// been walked already ([`DirRoot::walked`]).
    subdirs: Option<HashMap<Vec<u8>, Vec<Vec<u8>>>>,
}

impl DirRoot {
    /// The tree under `root`; an error if `root` is not a readable directory.
    pub fn open(root: &Path) -> Result<Self> {
        fs::read_dir(root).map_err(|e| Error::io(root, e))?;
        Ok(DirRoot {
            root: root.to_path_buf(),
            subdirs: None,
        })
    }

    /// The tree under `root`, walked into `tree`: which directories there
    /// are is read from the walk, not from the file system again.
    pub fn walked(root: &Path, tree: &Tree) -> Result<Self> {
        let mut subdirs: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        for e in tree.entries.iter().filter(|e| e.is_dir()) {
            let path = e.path.as_os_str().as_bytes();
            let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (&path[..0], path),
            };
            subdirs
                .entry(parent.to_vec())
                .or_default()
                .push(name.to_vec());
        }
        for names in subdirs.values_mut() {
            names.sort();
        }
        Ok(DirRoot {
            subdirs: Some(subdirs),
            ..DirRoot::open(root)?
        })
    }
}

impl DirRoot {
    /// The names of the entries of the directory at `rel` that `keep`
    /// keeps, sorted; `None` if there is no directory.
    fn names(
        &self,
        rel: &[u8],
        keep: impl Fn(&fs::DirEntry) -> Result<bool>,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        let host = self.name(rel);
        let entries = match fs::read_dir(&host) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(Error::io(host, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&host, e))?;
            if keep(&entry)? {
                names.push(entry.file_name().as_bytes().to_vec());
            }
        }
        names.sort();
        Ok(Some(names))
    }
}

impl RootView for DirRoot {
    fn node(&self, rel: &[u8]) -> Result<Option<Node>> {
        let host = self.name(rel);
        let metadata = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(Error::io(host, e)),
        };
        let kind = metadata.file_type();
        Ok(Some(if kind.is_symlink() {
            let target = fs::read_link(&host).map_err(|e| Error::io(&host, e))?;
            Node::Symlink(target.into_os_string().into_vec())
        } else if kind.is_dir() {
            Node::Dir
        } else if kind.is_file() {
            Node::File
        } else {
            Node::Other
        }))
    }

    fn read(&self, rel: &[u8], limit: u64) -> Result<Option<Vec<u8>>> {
        let host = self.name(rel);
        let mut data = Vec::new();
        match fs::File::open(&host)
            .and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut data))
        {
            Ok(_) => Ok(Some(data)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(Error::io(host, e)),
        }
    }

    fn list(&self, rel: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        self.names(rel, |_| Ok(true))
    }

    /// From the walk when there was one; else as the default, but the
    /// entries' types come with the listing (no `lstat` per entry where
    /// the file system gives them).
    fn subdirs(&self, rel: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        if let Some(walked) = &self.subdirs {
            return Ok(Some(walked.get(rel).cloned().unwrap_or_default()));
        }
        self.names(rel, |entry| {
            let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            Ok(kind.is_dir())
        })
    }

    fn name(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }
}

use std::os::unix::ffi::OsStringExt;

/// A tree read from tar streams (a tarball, an image's layers), its file
/// content where [`TarContent`] says.
#[derive(Debug)]
pub struct TarRoot<'a> {
    tree: &'a Tree,
    content: &'a TarContent,
    /// Path -> index into `tree.entries`.
    entries: HashMap<&'a [u8], usize>,
    /// Directory -> names of its entries, sorted.
    children: BTreeMap<&'a [u8], Vec<&'a [u8]>>,
}

impl<'a> TarRoot<'a> {
    /// A view of `tree`, whose content `content` holds.
    pub fn new(tree: &'a Tree, content: &'a TarContent) -> Self {
        let mut entries = HashMap::with_capacity(tree.entries.len());
        let mut children: BTreeMap<&[u8], Vec<&[u8]>> = BTreeMap::new();
        for (i, e) in tree.entries.iter().enumerate() {
            let path = e.path.as_os_str().as_bytes();
            entries.insert(path, i);
            let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
                Some(k) => (&path[..k], &path[k + 1..]),
                None => (&path[..0], path),
            };
            children.entry(parent).or_default().push(name);
        }
        for names in children.values_mut() {
            names.sort_unstable();
        }
        TarRoot {
            tree,
            content,
            entries,
            children,
        }
    }

    /// The entry at `rel`, a hard link followed to its target.
    fn entry(&self, rel: &[u8]) -> Option<&'a crate::walk::Entry> {
        let mut e = &self.tree.entries[*self.entries.get(rel)?];
        // A hard link names an earlier entry; never a chain.
        if let EntryKind::HardLink { target } = &e.kind {
            e = &self.tree.entries[*self.entries.get(target.as_os_str().as_bytes())?];
        }
        Some(e)
    }
}

impl RootView for TarRoot<'_> {
    fn node(&self, rel: &[u8]) -> Result<Option<Node>> {
        if rel.is_empty() {
            return Ok(Some(Node::Dir));
        }
        Ok(self.entry(rel).map(|e| match &e.kind {
            EntryKind::Directory => Node::Dir,
            EntryKind::Regular { .. } => Node::File,
            EntryKind::Symlink { target } => Node::Symlink(target.as_os_str().as_bytes().to_vec()),
            _ => Node::Other,
        }))
    }

    fn read(&self, rel: &[u8], limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(e) = self.entry(rel) else {
            return Ok(None);
        };
        let EntryKind::Regular { size } = e.kind else {
            return Ok(None);
        };
        let (file, offset) = self.content.locate(&e.path)?;
        let mut data = vec![0u8; size.min(limit.saturating_add(1)) as usize];
        file.file
            .read_exact_at(&mut data, offset)
            .map_err(|err| Error::io(&file.path, err))?;
        Ok(Some(data))
    }

    fn list(&self, rel: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        if !matches!(self.node(rel)?, Some(Node::Dir)) {
            return Ok(None);
        }
        Ok(Some(
            self.children
                .get(rel)
                .map(|names| names.iter().map(|n| n.to_vec()).collect())
                .unwrap_or_default(),
        ))
    }

    fn name(&self, rel: &[u8]) -> PathBuf {
        Path::new("/").join(OsStr::from_bytes(rel))
    }
}
