//! The packages of one side of a diff, and which package each of its paths
//! belongs to: read from a directory's databases, from the SPDX SBOM
//! published beside an image (a few hundred kB, where reading the layers
//! would download the whole image from a registry), or from the image's
//! layers applied in scratch files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::context::{Event, JobContext};
use crate::component::{read_packages_in, Database, DirRoot, InstalledPackage, Ownership, TarRoot};
use crate::digest::Digest;
use crate::error::Result;
use crate::oci::flatten::flatten;
use crate::oci::types::Manifest;
use crate::store::OpenImage;
use crate::update::by_owner::Owner;

/// The media type of the SBOMs read back (what `pack --sbom spdx-json`
/// publishes).
const SPDX_MEDIA_TYPE: &str = "application/spdx+json";

/// The largest SBOM read back, in bytes.
const MAX_SBOM_BYTES: u64 = 256 << 20;

/// The packages of one side, and the package of each path.
pub(crate) struct SidePackages {
    packages: Vec<InstalledPackage>,
    warnings: Vec<String>,
    by_path: HashMap<PathBuf, usize>,
    read_from: String,
}

impl SidePackages {
    fn of(packages: Vec<InstalledPackage>, warnings: Vec<String>, read_from: String) -> Self {
        let mut by_path = HashMap::new();
        for (i, p) in packages.iter().enumerate() {
            for path in &p.paths {
                by_path.entry(path.clone()).or_insert(i);
            }
        }
        SidePackages {
            packages,
            warnings,
            by_path,
            read_from,
        }
    }

    fn of_ownership(ownership: &Ownership, read_from: &str) -> Self {
        Self::of(
            ownership.packages().to_vec(),
            ownership.warnings().to_vec(),
            read_from.to_string(),
        )
    }

    /// The packages, sorted by database, name, version and architecture.
    pub(crate) fn packages(&self) -> &[InstalledPackage] {
        &self.packages
    }

    /// What was wrong in the databases, each naming the file.
    pub(crate) fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Where they were read: `tree`, `layers` or `sbom DIGEST`.
    pub(crate) fn read_from(&self) -> &str {
        &self.read_from
    }

    /// The packages of a directory tree, and its databases as read (the
    /// owners its layers are planned by).
    pub(crate) fn of_dir(root: &Path) -> Result<(Self, Ownership)> {
        let ownership = read_packages_in(&DirRoot::open(root)?)?;
        Ok((Self::of_ownership(&ownership, "tree"), ownership))
    }

    /// The packages of an image: from the SPDX SBOM published beside it
    /// when there is one that reads, else from its layers applied in
    /// scratch files.
    pub(crate) fn of_image(image: &OpenImage, ctx: &JobContext<'_>) -> Result<Self> {
        ctx.check_cancel()?;
        ctx.emit(Event::Reading);
        if let Some(side) = from_sbom(image)? {
            return Ok(side);
        }
        let name = image.view.manifest.digest.to_string();
        let scratch = ctx.scratch_dir("reading an image's package databases")?;
        let (tree, content) = flatten(
            &name,
            &image.image,
            |d| image.reader.blob(&d.digest, d.size),
            scratch,
            &ctx.cancel,
        )?;
        let ownership = read_packages_in(&TarRoot::new(&tree, &content))?;
        Ok(Self::of_ownership(&ownership, "layers"))
    }

    /// The package of `path` (relative; `./` and `/` before it are
    /// ignored), or of its source if it is generated (a `.pyc` file).
    pub(crate) fn owner(&self, path: &Path) -> Owner {
        let path = relative(path);
        let package = self.by_path.get(path).or_else(|| {
            crate::component::generated_from(path).and_then(|source| self.by_path.get(&source))
        });
        package.map_or(Owner::Unowned, |&i| Owner::Package(i))
    }
}

fn relative(path: &Path) -> &Path {
    let path = path.strip_prefix("./").unwrap_or(path);
    path.strip_prefix("/").unwrap_or(path)
}

/// The packages the SPDX SBOM beside `image` lists, if one is published
/// and reads as an SBOM of this image (its subject, its digest). A listed
/// document that does not is passed over: the layers are read instead.
fn from_sbom(image: &OpenImage) -> Result<Option<SidePackages>> {
    let subject = image.view.manifest.digest;
    let reader = &image.reader;
    let Some(index) = reader.referrers(&subject)? else {
        return Ok(None);
    };
    let Some(entry) = index
        .manifests
        .iter()
        .find(|m| m.artifact_type.as_deref() == Some(SPDX_MEDIA_TYPE))
    else {
        return Ok(None);
    };
    let (manifest, _): (Manifest, _) = reader.manifest_at(entry)?;
    let [blob] = manifest.layers.as_slice() else {
        return Ok(None);
    };
    if manifest.subject.as_ref().map(|s| s.digest) != Some(subject)
        || blob.media_type != SPDX_MEDIA_TYPE
        || blob.size > MAX_SBOM_BYTES
    {
        return Ok(None);
    }
    let bytes = reader.read_range(&blob.digest, blob.size, 0, blob.size)?;
    if Digest::of(&bytes) != blob.digest {
        return Ok(None);
    }
    Ok(spdx_packages(&bytes)
        .map(|packages| SidePackages::of(packages, Vec::new(), format!("sbom {}", entry.digest))))
}

/// The packages of an SPDX 2.3 JSON document: each package with a package
/// URL of a kind chunkah reads, its version, architecture and files.
/// `None` when the document is not one.
fn spdx_packages(bytes: &[u8]) -> Option<Vec<InstalledPackage>> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let files: HashMap<&str, &str> = doc["files"]
        .as_array()?
        .iter()
        .filter_map(|f| Some((f["SPDXID"].as_str()?, f["fileName"].as_str()?)))
        .collect();
    let mut packages = Vec::new();
    for p in doc["packages"].as_array()? {
        let Some(purl) = p["externalRefs"].as_array().and_then(|refs| {
            refs.iter()
                .find(|r| r["referenceType"] == "purl")
                .and_then(|r| r["referenceLocator"].as_str())
        }) else {
            continue;
        };
        let Some(parsed) = Purl::parse(purl) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = p["hasFiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| files.get(id.as_str()?))
            .map(|name| relative(Path::new(name)).to_path_buf())
            .collect();
        paths.sort();
        let name = p["name"].as_str().unwrap_or(&parsed.name).to_string();
        packages.push(InstalledPackage {
            database: parsed.database,
            component: String::new(),
            version: p["versionInfo"]
                .as_str()
                .map(str::to_string)
                .or(parsed.version),
            architecture: parsed.arch,
            source: None,
            license: None,
            name,
            paths,
            build_time: None,
            changelog_times: Vec::new(),
        });
    }
    crate::component::sort_packages(&mut packages);
    Some(packages)
}

/// What a package URL says of a package.
#[derive(Debug, PartialEq, Eq)]
struct Purl {
    database: Database,
    name: String,
    version: Option<String>,
    arch: Option<String>,
}

impl Purl {
    /// `pkg:TYPE[/NAMESPACE]/NAME[@VERSION][?QUALIFIERS]`, of a type chunkah
    /// reads; an npm namespace is the name's scope.
    fn parse(purl: &str) -> Option<Purl> {
        let rest = purl.strip_prefix("pkg:")?;
        let (rest, qualifiers) = rest.split_once('?').unwrap_or((rest, ""));
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (path, version) = match rest.rsplit_once('@') {
            Some((p, v)) => (p, Some(decode(v)?)),
            None => (rest, None),
        };
        let (kind, path) = path.split_once('/')?;
        let database = match kind {
            "deb" => Database::Dpkg,
            "rpm" => Database::Rpm,
            "apk" => Database::Apk,
            "alpm" => Database::Pacman,
            "pypi" => Database::Python,
            "npm" => Database::Npm,
            _ => return None,
        };
        let (namespace, name) = match path.rsplit_once('/') {
            Some((ns, n)) => (Some(decode(ns)?), decode(n)?),
            None => (None, decode(path)?),
        };
        let name = match (database, namespace) {
            (Database::Npm, Some(scope)) => format!("{scope}/{name}"),
            _ => name,
        };
        let arch = match qualifiers.split('&').find_map(|q| q.strip_prefix("arch=")) {
            Some(a) => Some(decode(a)?),
            None => None,
        };
        Some(Purl {
            database,
            name,
            version,
            arch,
        })
    }
}

/// Undoes percent-encoding; `None` for a broken escape or text that is not
/// UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_urls_read_back() {
        let p = Purl::parse(
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
        )
        .unwrap();
        assert_eq!(
            p,
            Purl {
                database: Database::Dpkg,
                name: "libc6".into(),
                version: Some("2.36-9+deb12u4".into()),
                arch: Some("amd64".into())
            }
        );
        let npm = Purl::parse("pkg:npm/%40isaacs/string-locale-compare@1.1.0").unwrap();
        assert_eq!(
            (npm.database, npm.name.as_str()),
            (Database::Npm, "@isaacs/string-locale-compare")
        );
        assert_eq!(
            Purl::parse("pkg:pypi/six@1.16.0")
                .unwrap()
                .version
                .as_deref(),
            Some("1.16.0")
        );
        for bad in [
            "pkg:cargo/x@1",
            "deb/debian/x",
            "pkg:deb/debian/x@%zz",
            "pkg:deb",
        ] {
            assert_eq!(Purl::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_spdx_document_reads_back_as_its_packages() {
        use crate::sbom::{spdx_json, Ecosystem, Inventory, OwnedFile, Package};
        let inventory = Inventory {
            subject: "t".into(),
            subject_digest: None,
            created: 0,
            distro: None,
            packages: vec![Package {
                ecosystem: Ecosystem::Deb,
                name: "bash".into(),
                version: Some("5.2-1".into()),
                architecture: Some("amd64".into()),
                source: None,
                license: None,
                files: vec![
                    OwnedFile::of("/usr/bin/bash", b"x"),
                    OwnedFile::of("/etc/bash.bashrc", b"y"),
                ],
            }],
            warnings: Vec::new(),
        };
        let read = spdx_packages(spdx_json(&inventory).as_bytes()).unwrap();
        assert_eq!(read.len(), 1);
        let p = &read[0];
        assert_eq!(
            (
                p.database,
                p.name.as_str(),
                p.version.as_deref(),
                p.architecture.as_deref()
            ),
            (Database::Dpkg, "bash", Some("5.2-1"), Some("amd64"))
        );
        assert_eq!(
            p.paths,
            [
                PathBuf::from("etc/bash.bashrc"),
                PathBuf::from("usr/bin/bash")
            ]
        );
        assert_eq!(spdx_packages(b"{\"packages\": 1}"), None);
        assert_eq!(spdx_packages(b"not json"), None);
    }
}
