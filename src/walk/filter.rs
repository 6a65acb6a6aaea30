//! Leaving parts of a walked tree out before packing: subtrees or the
//! contents of directories (`--prune`), and special files (devices and
//! named pipes, `--skip-special-files`).
//!
//! A hard link whose first link is left out is kept: the next link of the
//! inode takes its place as the regular file, the later ones name it.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{EntryKind, TarContent, Tree};
use crate::error::{Error, Result};

/// A part of the tree to leave out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prune {
    /// The directory or file, relative to the root (no leading `/`).
    pub path: PathBuf,
    /// Leave out only what is below `path`, keeping `path` itself (given
    /// with a trailing `/`, as in `/sysroot/`).
    pub contents_only: bool,
}

impl Prune {
    /// Parses `/path` (the subtree) or `/path/` (its contents). The path is
    /// absolute within the root, names no `.` or `..` and is not the root.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("{s:?}: {why}"));
        let rest = s
            .strip_prefix('/')
            .ok_or_else(|| bad("not an absolute path within the root"))?;
        let contents_only = rest.ends_with('/');
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(bad("the root itself cannot be pruned"));
        }
        let mut path = PathBuf::new();
        for part in rest.split('/') {
            match part {
                "" => {}
                "." | ".." => return Err(bad("names . or ..")),
                p => path.push(p),
            }
        }
        Ok(Prune {
            path,
            contents_only,
        })
    }

    fn covers(&self, p: &Path) -> bool {
        let (p, own) = (p.as_os_str().as_bytes(), self.path.as_os_str().as_bytes());
        let below = p.len() > own.len() && p.starts_with(own) && p[own.len()] == b'/';
        below || (!self.contents_only && p == own)
    }
}

/// What [`filter`] left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Entries left out by the prunes.
    pub pruned: usize,
    /// Special files left out.
    pub special: usize,
}

/// Leaves out of `tree` what `prunes` cover and, with `skip_special`,
/// devices and named pipes. `content` (a tar source's) learns where the
/// content of a hard link that becomes the regular file is.
pub fn filter(
    tree: &mut Tree,
    mut content: Option<&mut TarContent>,
    prunes: &[Prune],
    skip_special: bool,
) -> Result<Filtered> {
    let mut out = Filtered::default();
    if prunes.is_empty() && !skip_special {
        return Ok(out);
    }
    let special = |k: &EntryKind| {
        matches!(
            k,
            EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } | EntryKind::Fifo
        )
    };
    // The first links left out, by path: their kind, and the link now
    // standing in for them.
    let mut gone: HashMap<Box<Path>, (EntryKind, Option<Box<Path>>)> = HashMap::new();
    let mut kept = Vec::with_capacity(tree.entries.len());
    for mut e in std::mem::take(&mut tree.entries) {
        if prunes.iter().any(|p| p.covers(&e.path)) {
            out.pruned += 1;
            gone.insert(e.path.clone(), (e.kind, None));
            continue;
        }
        if skip_special && special(&e.kind) {
            out.special += 1;
            gone.insert(e.path.clone(), (e.kind, None));
            continue;
        }
        if let EntryKind::HardLink { target } = &e.kind {
            if let Some((kind, standing)) = gone.get_mut(&**target) {
                match standing {
                    Some(first) => {
                        e.kind = EntryKind::HardLink {
                            target: first.clone(),
                        }
                    }
                    None if skip_special && special(kind) => {
                        out.special += 1;
                        continue;
                    }
                    None => {
                        if let (Some(c), EntryKind::Regular { .. }) =
                            (content.as_deref_mut(), &kind)
                        {
                            let at = *c.offsets.get(&**target).ok_or_else(|| {
                                Error::malformed(
                                    target.display().to_string(),
                                    "a hard link's target has no content",
                                )
                            })?;
                            c.offsets.insert(e.path.to_path_buf(), at);
                        }
                        *standing = Some(e.path.clone());
                        e.kind = kind.clone();
                    }
                }
            }
        }
        kept.push(e);
    }
    tree.entries = kept;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::Entry;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: std::path::Path::new(path).into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Box::default(),
        }
    }

    fn paths(t: &Tree) -> Vec<&str> {
        t.entries.iter().map(|e| e.path.to_str().unwrap()).collect()
    }

    fn sample() -> Tree {
        let reg = EntryKind::Regular { size: 3 };
        Tree {
            entries: vec![
                entry("dev", EntryKind::Directory),
                entry("dev/null", EntryKind::CharDevice { major: 1, minor: 3 }),
                entry("sysroot", EntryKind::Directory),
                entry("sysroot/a", reg.clone()),
                entry("sysroot/ostree", EntryKind::Directory),
                entry("sysroot2", EntryKind::Directory),
                entry("usr", EntryKind::Directory),
                entry("usr/bin", reg.clone()),
                entry("usr/fifo", EntryKind::Fifo),
                entry(
                    "usr/x",
                    EntryKind::HardLink {
                        target: std::path::Path::new("sysroot/a").into(),
                    },
                ),
                entry(
                    "usr/y",
                    EntryKind::HardLink {
                        target: std::path::Path::new("sysroot/a").into(),
                    },
                ),
            ],
            root: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn prunes_subtrees_or_contents_and_keeps_hard_links() {
        let mut t = sample();
        let p = [Prune::parse("/sysroot").unwrap()];
        assert_eq!(filter(&mut t, None, &p, false).unwrap().pruned, 3);
        assert_eq!(
            paths(&t),
            ["dev", "dev/null", "sysroot2", "usr", "usr/bin", "usr/fifo", "usr/x", "usr/y"]
        );
        // The first link left: the next one is the file, the last names it.
        assert_eq!(t.entries[6].kind, EntryKind::Regular { size: 3 });
        assert_eq!(
            t.entries[7].kind,
            EntryKind::HardLink {
                target: std::path::Path::new("usr/x").into()
            }
        );

        let mut t = sample();
        let p = [Prune::parse("/sysroot/").unwrap()];
        filter(&mut t, None, &p, true).unwrap();
        assert_eq!(
            paths(&t),
            ["dev", "sysroot", "sysroot2", "usr", "usr/bin", "usr/x", "usr/y"]
        );
    }

    #[test]
    fn bad_prunes_are_refused() {
        for bad in ["sysroot", "/", "//", "/a/../b", "/./a"] {
            assert!(Prune::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Prune::parse("/a//b/").unwrap(),
            Prune {
                path: "a/b".into(),
                contents_only: true
            }
        );
    }
}
