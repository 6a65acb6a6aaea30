//! Software bills of materials: the packages of a tree (what the package
//! databases record: name, version, architecture, source package, licence,
//! the files each owns) written as an SPDX 2.3 or a CycloneDX 1.6 JSON
//! document. Deterministic: the same inventory gives the same bytes.

mod cyclonedx;
mod inventory;
mod purl;
mod spdx;

use sha2::Digest as _;

pub use crate::component::OsRelease;
use crate::digest::Digest;

pub use cyclonedx::cyclonedx_json;
pub use inventory::{inventory_of, Subject, TreeFiles};
pub use purl::purl;
pub use spdx::spdx_json;

/// The package manager that records a package; its package-URL type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// dpkg (`pkg:deb`).
    Deb,
    /// rpm (`pkg:rpm`).
    Rpm,
    /// apk (`pkg:apk`).
    Apk,
    /// pacman (`pkg:alpm`).
    Alpm,
    /// Python distributions (`pkg:pypi`).
    Pypi,
    /// npm packages (`pkg:npm`).
    Npm,
}

impl Ecosystem {
    /// The package-URL type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Apk => "apk",
            Ecosystem::Alpm => "alpm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
        }
    }

    /// Whether packages of this kind belong to the distribution (their
    /// package URLs are namespaced by it).
    pub fn is_distribution(self) -> bool {
        matches!(
            self,
            Ecosystem::Deb | Ecosystem::Rpm | Ecosystem::Apk | Ecosystem::Alpm
        )
    }
}

/// A regular file a package owns, with the digests SBOM formats ask for
/// (SPDX requires SHA-1; SHA-256 is what scanners match).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OwnedFile {
    /// Absolute path in the tree (`/usr/bin/bash`).
    pub path: String,
    /// SHA-1 of the content.
    pub sha1: [u8; 20],
    /// SHA-256 of the content.
    pub sha256: Digest,
}

impl OwnedFile {
    /// The record of `content` at `path`.
    pub fn of(path: impl Into<String>, content: &[u8]) -> Self {
        OwnedFile {
            path: path.into(),
            sha1: sha1::Sha1::digest(content).into(),
            sha256: Digest::of(content),
        }
    }

    /// SHA-1 in lowercase hex.
    pub fn sha1_hex(&self) -> String {
        hex(&self.sha1)
    }
}

/// One package as its database records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// Which database.
    pub ecosystem: Ecosystem,
    /// The package's name (`libc6`, `bash`, `@scope/name`).
    pub name: String,
    /// Its version, when the database records one (`2.36-9+deb12u4`).
    pub version: Option<String>,
    /// The architecture it was built for (`amd64`, `x86_64`, `all`).
    pub architecture: Option<String>,
    /// The source package it was built from (purls name it only when it
    /// differs from the name).
    pub source: Option<String>,
    /// The licence the database records, verbatim (rpm, apk and pacman
    /// record one; dpkg does not).
    pub license: Option<String>,
    /// The regular files it owns, sorted by path.
    pub files: Vec<OwnedFile>,
}

/// What an SBOM describes: an image (or tree) and the packages in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    /// The image reference or tree path, as the document names it.
    pub subject: String,
    /// The image manifest's digest, when the subject is an image.
    pub subject_digest: Option<Digest>,
    /// The distribution, when `/etc/os-release` names one.
    pub distro: Option<OsRelease>,
    /// When the document is dated, seconds since the epoch (the tree's
    /// SOURCE_DATE_EPOCH, for reproducible documents).
    pub created: i64,
    /// The packages, in any order: the writers sort them.
    pub packages: Vec<Package>,
    /// What was wrong in the tree's databases but did not stop the
    /// inventory, each naming the file (not written into documents).
    pub warnings: Vec<String>,
}

impl Inventory {
    /// The packages sorted by ecosystem, name, version and architecture,
    /// each with its files sorted by path: the order both writers use.
    pub fn sorted_packages(&self) -> Vec<Package> {
        let mut packages = self.packages.clone();
        for p in &mut packages {
            p.files.sort();
        }
        packages.sort_by(|a, b| {
            (a.ecosystem, &a.name, &a.version, &a.architecture).cmp(&(
                b.ecosystem,
                &b.name,
                &b.version,
                &b.architecture,
            ))
        });
        packages
    }

    /// A digest of everything the documents say, for the identifiers they
    /// must make unique (SPDX's namespace, CycloneDX's serial number);
    /// `sorted` is [`Inventory::sorted_packages`], which a writer has already
    /// made.
    pub fn fingerprint(&self, sorted: &[Package]) -> Digest {
        let mut h = sha2::Sha256::new();
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        field(&self.subject);
        field(
            &self
                .subject_digest
                .map(|d| d.to_string())
                .unwrap_or_default(),
        );
        if let Some(d) = &self.distro {
            field(&d.id);
            field(&d.version_id);
        }
        field(&self.created.to_string());
        for p in sorted {
            field(&purl(p, self.distro.as_ref()));
            field(p.license.as_deref().unwrap_or(""));
            field(p.source.as_deref().unwrap_or(""));
            for f in &p.files {
                field(&f.path);
                field(&f.sha256.to_string());
            }
        }
        Digest(h.finalize().into())
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tool named as the documents' creator.
pub(crate) fn tool_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small Debian inventory: a package with files and a source, one
    /// without a version, one with a licence and an epoch.
    pub(crate) fn sample() -> Inventory {
        Inventory {
            subject: "oci:out:v1".into(),
            subject_digest: Some(Digest::of(b"manifest")),
            distro: Some(OsRelease {
                id: "debian".into(),
                version_id: "12".into(),
            }),
            created: 1_700_000_000,
            packages: vec![
                Package {
                    ecosystem: Ecosystem::Deb,
                    name: "libc6".into(),
                    version: Some("2.36-9+deb12u4".into()),
                    architecture: Some("amd64".into()),
                    source: Some("glibc".into()),
                    license: None,
                    files: vec![
                        OwnedFile::of("/usr/lib/x86_64-linux-gnu/libc.so.6", b"libc"),
                        OwnedFile::of("/etc/ld.so.conf.d/x86_64-linux-gnu.conf", b"conf"),
                    ],
                },
                Package {
                    ecosystem: Ecosystem::Deb,
                    name: "base-files".into(),
                    version: None,
                    architecture: Some("amd64".into()),
                    source: None,
                    license: None,
                    files: vec![OwnedFile::of("/etc/debian_version", b"12.5\n")],
                },
                Package {
                    ecosystem: Ecosystem::Deb,
                    name: "meta<&\"pkg>".into(),
                    version: Some("1:2.0~rc1".into()),
                    architecture: Some("all".into()),
                    source: None,
                    license: Some("GPL-2.0-or-later".into()),
                    files: vec![],
                },
            ],
            warnings: Vec::new(),
        }
    }

    #[test]
    fn file_digests_are_the_known_ones() {
        let f = OwnedFile::of("/x", b"abc");
        assert_eq!(f.sha1_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            f.sha256.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn packages_and_files_are_sorted() {
        let sorted = sample().sorted_packages();
        let names: Vec<&str> = sorted.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["base-files", "libc6", "meta<&\"pkg>"]);
        assert_eq!(
            sorted[1].files[0].path,
            "/etc/ld.so.conf.d/x86_64-linux-gnu.conf"
        );
    }

    #[test]
    fn the_fingerprint_follows_content_not_order() {
        let a = sample();
        let mut b = sample();
        b.packages.reverse();
        let print = |i: &Inventory| i.fingerprint(&i.sorted_packages());
        assert_eq!(print(&a), print(&b));
        b.packages[0].files.push(OwnedFile::of("/new", b"n"));
        assert_ne!(print(&a), print(&b));
    }
}
