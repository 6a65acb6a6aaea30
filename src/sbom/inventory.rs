//! The inventory of a root file system: its packages as the databases
//! record them, and the regular files each lists, hashed where the tree
//! holds them (a directory, or tar streams: a tarball, an image's layers).

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use rayon::prelude::*;
use sha2::Digest as _;

use super::{Ecosystem, Inventory, OsRelease, OwnedFile, Package};
use crate::component::{
    read_os_release, read_packages_in, Database, DirRoot, InstalledPackage, RootView, TarRoot,
};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::walk::{Entry, EntryKind, TarContent, Tree};

/// Where the tree an inventory is taken of is held.
#[derive(Clone, Copy, Debug)]
pub enum TreeFiles<'a> {
    /// A directory on this machine.
    Dir(&'a Path),
    /// A directory on this machine as walked (and pruned): files the tree
    /// left out are not listed.
    Walked {
        /// The directory.
        root: &'a Path,
        /// Its entries.
        tree: &'a Tree,
    },
    /// Tar streams, walked (a tarball, an image's layers applied).
    Tar {
        /// The tree's entries.
        tree: &'a Tree,
        /// Where their content is.
        content: &'a TarContent,
    },
}

/// What an inventory document says about its subject.
#[derive(Clone, Debug)]
pub struct Subject {
    /// The image reference or tree path, as documents name it.
    pub name: String,
    /// The image manifest's digest, when the subject is an image.
    pub digest: Option<Digest>,
    /// The document's date, seconds since the epoch; without it, the newest
    /// packaged file's mtime, so that the same tree gives the same document.
    pub created: Option<i64>,
}

/// The inventory of the tree `files` holds.
///
/// # Errors
///
/// What reading the package databases gives ([`Error::PackageDb`] naming
/// the file and line); [`Error::Io`] naming a listed file that cannot be
/// read.
pub fn inventory_of(files: TreeFiles<'_>, subject: Subject) -> Result<Inventory> {
    let (packages, distro, warnings) = match files {
        TreeFiles::Dir(root) | TreeFiles::Walked { root, .. } => {
            packages_in(&DirRoot::open(root)?)?
        }
        TreeFiles::Tar { tree, content } => packages_in(&TarRoot::new(tree, content))?,
    };
    let hasher = Hasher::new(files);
    let hashed: Vec<(Package, i64)> = packages
        .par_iter()
        .map(|p| package_of(&hasher, p))
        .collect::<Result<_>>()?;
    let newest = hashed.iter().map(|(_, t)| *t).max().unwrap_or(0);
    Ok(Inventory {
        subject: subject.name,
        subject_digest: subject.digest,
        distro,
        created: subject.created.unwrap_or(newest),
        packages: hashed.into_iter().map(|(p, _)| p).collect(),
        warnings,
    })
}

/// The packages a tree's databases list, its distribution, and the
/// warnings reading them gave.
type ReadPackages = (Vec<InstalledPackage>, Option<OsRelease>, Vec<String>);

fn packages_in(view: &dyn RootView) -> Result<ReadPackages> {
    let ownership = read_packages_in(view)?;
    Ok((
        ownership.packages().to_vec(),
        read_os_release(view)?,
        ownership.warnings().to_vec(),
    ))
}

/// Hashes regular files of a tree by their relative path.
enum Hasher<'a> {
    Dir(&'a Path),
    /// A directory, only the paths of `present`.
    Walked {
        root: &'a Path,
        present: std::collections::HashSet<&'a Path>,
    },
    Tar {
        entries: HashMap<&'a Path, &'a Entry>,
        content: &'a TarContent,
    },
}

impl<'a> Hasher<'a> {
    fn new(files: TreeFiles<'a>) -> Self {
        match files {
            TreeFiles::Dir(root) => Hasher::Dir(root),
            TreeFiles::Walked { root, tree } => Hasher::Walked {
                root,
                present: tree.entries.iter().map(|e| &*e.path).collect(),
            },
            TreeFiles::Tar { tree, content } => Hasher::Tar {
                entries: tree.entries.iter().map(|e| (&*e.path, e)).collect(),
                content,
            },
        }
    }

    /// SHA-1, SHA-256 and mtime of the regular file at `rel`; `None` when
    /// there is none (a directory, a link, a path listed but absent).
    fn hash(&self, rel: &Path) -> Result<Option<([u8; 20], Digest, i64)>> {
        match self {
            Hasher::Walked { root, present } => {
                if present.contains(rel) {
                    Hasher::Dir(root).hash(rel)
                } else {
                    Ok(None)
                }
            }
            Hasher::Dir(root) => {
                let path = root.join(rel);
                let meta = match std::fs::symlink_metadata(&path) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(Error::io(&path, e)),
                };
                if !meta.is_file() {
                    return Ok(None);
                }
                let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                let (sha1, sha256) = hash_stream(file, &path)?;
                Ok(Some((sha1, sha256, meta.mtime())))
            }
            Hasher::Tar { entries, content } => {
                let Some(mut e) = entries.get(rel).copied() else {
                    return Ok(None);
                };
                if let EntryKind::HardLink { target } = &e.kind {
                    match entries.get(&**target) {
                        Some(t) => e = t,
                        None => return Ok(None),
                    }
                }
                let EntryKind::Regular { size } = e.kind else {
                    return Ok(None);
                };
                let (file, offset) = content.locate(&e.path)?;
                let region = Region {
                    file: &file.file,
                    at: offset,
                    end: offset + size,
                };
                let (sha1, sha256) = hash_stream(region, &file.path)?;
                Ok(Some((sha1, sha256, e.mtime)))
            }
        }
    }
}

/// A byte range of a file, read with `pread`.
struct Region<'a> {
    file: &'a std::fs::File,
    at: u64,
    end: u64,
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.end - self.at) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        Ok(n)
    }
}

fn ecosystem(database: Database) -> Ecosystem {
    match database {
        Database::Dpkg => Ecosystem::Deb,
        Database::Rpm => Ecosystem::Rpm,
        Database::Apk => Ecosystem::Apk,
        Database::Pacman => Ecosystem::Alpm,
        Database::Python => Ecosystem::Pypi,
        Database::Npm => Ecosystem::Npm,
    }
}

/// The package with its regular files hashed, and its newest file's mtime.
fn package_of(hasher: &Hasher<'_>, p: &InstalledPackage) -> Result<(Package, i64)> {
    let mut files = Vec::new();
    let mut newest = 0;
    for rel in &p.paths {
        let Some((sha1, sha256, mtime)) = hasher.hash(rel)? else {
            continue;
        };
        newest = newest.max(mtime);
        files.push(OwnedFile {
            path: format!("/{}", rel.to_string_lossy()),
            sha1,
            sha256,
        });
    }
    let package = Package {
        ecosystem: ecosystem(p.database),
        name: p.name.clone(),
        version: p.version.clone(),
        architecture: p.architecture.clone(),
        source: p.source.clone(),
        license: p.license.clone(),
        files,
    };
    Ok((package, newest))
}

/// SHA-1 and SHA-256 of a stream, read once in blocks; `path` names it in
/// errors.
fn hash_stream(mut r: impl Read, path: &Path) -> Result<([u8; 20], Digest)> {
    let mut sha1 = sha1::Sha1::new();
    let mut sha256 = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        sha1.update(&buf[..n]);
        sha256.update(&buf[..n]);
    }
    Ok((sha1.finalize().into(), Digest(sha256.finalize().into())))
}
