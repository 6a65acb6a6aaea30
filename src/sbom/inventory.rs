//! The inventory of a root file system directory: its packages as the
//! databases record them, and the regular files each lists, hashed.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;
use sha2::Digest as _;

use super::{Ecosystem, Inventory, OwnedFile, Package};
use crate::component::{read_os_release, read_packages_in, Database, DirRoot, InstalledPackage};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// The inventory of the tree at `root`, named `subject` in documents,
/// dated `created` (seconds since the epoch) or, without it, by its newest
/// packaged file, so that the same tree gives the same document.
///
/// # Errors
///
/// What reading the package databases gives ([`Error::PackageDb`] naming
/// the file and line); [`Error::Io`] naming a listed file that cannot be
/// read.
pub fn inventory_of_dir(root: &Path, subject: String, created: Option<i64>) -> Result<Inventory> {
    let view = DirRoot::open(root)?;
    let ownership = read_packages_in(&view)?;
    let distro = read_os_release(&view)?;
    let hashed: Vec<(Package, i64)> = ownership
        .packages()
        .par_iter()
        .map(|p| package_of(root, p))
        .collect::<Result<_>>()?;
    let newest = hashed.iter().map(|(_, t)| *t).max().unwrap_or(0);
    Ok(Inventory {
        subject,
        subject_digest: None,
        distro,
        created: created.unwrap_or(newest),
        packages: hashed.into_iter().map(|(p, _)| p).collect(),
    })
}

fn ecosystem(database: Database) -> Ecosystem {
    match database {
        Database::Dpkg => Ecosystem::Deb,
        Database::Rpm => Ecosystem::Rpm,
        Database::Apk => Ecosystem::Apk,
        Database::Pacman => Ecosystem::Alpm,
    }
}

/// The package with its regular files hashed (directories, links and
/// paths listed but absent are left out), and its newest file's mtime.
fn package_of(root: &Path, p: &InstalledPackage) -> Result<(Package, i64)> {
    let mut files = Vec::new();
    let mut newest = i64::MIN;
    for rel in &p.paths {
        let path = root.join(rel);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        if !meta.is_file() {
            continue;
        }
        newest = newest.max(meta.mtime());
        let (sha1, sha256) = hash_file(&path)?;
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
    Ok((package, newest.max(0)))
}

/// SHA-1 and SHA-256 of a file, read once in blocks.
fn hash_file(path: &Path) -> Result<([u8; 20], Digest)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut sha1 = sha1::Sha1::new();
    let mut sha256 = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match file.read(&mut buf) {
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
