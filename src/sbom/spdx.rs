//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): the subject
//! as a package that contains every package; each package with its purl,
//! the files it owns (`hasFiles`, SHA-1 and SHA-256 each) and their
//! verification code.

use serde_json::{json, Value};
use sha2::Digest as _;

use super::{hex, purl, tool_version, Inventory, OwnedFile, Package};
use crate::oci::types::rfc3339;

/// The SPDX 2.3 JSON document of `inventory`, pretty-printed, with a final
/// newline.
pub fn spdx_json(inventory: &Inventory) -> String {
    let packages = inventory.sorted_packages();
    let files = FileIds::of(&packages);
    let mut spdx_packages = vec![subject(inventory)];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": SUBJECT_ID,
    })];
    for (i, p) in packages.iter().enumerate() {
        let id = package_id(i, p);
        spdx_packages.push(package(inventory, p, &id, &files));
        relationships.push(json!({
            "spdxElementId": SUBJECT_ID,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": inventory.subject,
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/chunkah/{}",
            inventory.fingerprint(&packages).hex()
        ),
        "creationInfo": {
            "created": rfc3339(inventory.created),
            "creators": [format!("Tool: chunkah-{}", tool_version())],
        },
        "packages": spdx_packages,
        "files": files.records(),
        "relationships": relationships,
    });
    let mut out = serde_json::to_string_pretty(&doc).expect("a JSON value serialises");
    out.push('\n');
    out
}

const SUBJECT_ID: &str = "SPDXRef-Subject";

/// The image or tree the document describes.
fn subject(inventory: &Inventory) -> Value {
    let mut p = json!({
        "name": inventory.subject,
        "SPDXID": SUBJECT_ID,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    });
    if let Some(d) = inventory.subject_digest {
        p["checksums"] = json!([{ "algorithm": "SHA256", "checksumValue": d.hex() }]);
    }
    p
}

/// `SPDXRef-Package-deb-libc6-3`: the index keeps ids unique, the name
/// (reduced to the characters ids allow) keeps them readable.
fn package_id(index: usize, p: &Package) -> String {
    let name: String = p
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-Package-{}-{name}-{index}", p.ecosystem.purl_type())
}

fn package(inventory: &Inventory, p: &Package, id: &str, files: &FileIds) -> Value {
    let mut out = json!({
        "name": p.name,
        "SPDXID": id,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": !p.files.is_empty(),
        "licenseConcluded": "NOASSERTION",
        // A database's licence field is free text (rpm's `GPLv2+`), not
        // always an SPDX expression: it is quoted in the comment.
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl(p, inventory.distro.as_ref()),
        }],
    });
    if let Some(v) = &p.version {
        out["versionInfo"] = json!(v);
    }
    if let Some(source) = &p.source {
        out["sourceInfo"] = json!(format!("built from the source package {source}"));
    }
    if let Some(license) = &p.license {
        out["licenseComments"] = json!(format!("the package database records: {license}"));
    }
    if !p.files.is_empty() {
        out["hasFiles"] = json!(p.files.iter().map(|f| files.id(f)).collect::<Vec<_>>());
        out["packageVerificationCode"] =
            json!({ "packageVerificationCodeValue": verification_code(&p.files) });
    }
    out
}

/// SPDX's package verification code: SHA-1 of the files' SHA-1s in hex,
/// sorted, concatenated.
fn verification_code(files: &[OwnedFile]) -> String {
    let mut hexes: Vec<String> = files.iter().map(OwnedFile::sha1_hex).collect();
    hexes.sort();
    hex(&sha1::Sha1::digest(hexes.concat().as_bytes()))
}

/// One SPDX file element per distinct (path, content) of all packages.
struct FileIds {
    files: Vec<OwnedFile>,
}

impl FileIds {
    fn of(packages: &[Package]) -> Self {
        let mut files: Vec<OwnedFile> = packages.iter().flat_map(|p| p.files.clone()).collect();
        files.sort();
        files.dedup();
        FileIds { files }
    }

    fn id(&self, f: &OwnedFile) -> String {
        let i = self
            .files
            .binary_search(f)
            .expect("every owned file is listed");
        format!("SPDXRef-File-{i}")
    }

    fn records(&self) -> Vec<Value> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                json!({
                    "fileName": format!(".{}", f.path),
                    "SPDXID": format!("SPDXRef-File-{i}"),
                    "checksums": [
                        { "algorithm": "SHA1", "checksumValue": f.sha1_hex() },
                        { "algorithm": "SHA256", "checksumValue": f.sha256.hex() },
                    ],
                    "licenseConcluded": "NOASSERTION",
                    "copyrightText": "NOASSERTION",
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::tests::sample;

    #[test]
    fn describes_the_subject_containing_every_package() {
        let doc: Value = serde_json::from_str(&spdx_json(&sample())).unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 4);
        assert_eq!(packages[0]["checksums"][0]["algorithm"], "SHA256");
        let libc = &packages[2];
        assert_eq!(libc["name"], "libc6");
        assert_eq!(libc["versionInfo"], "2.36-9+deb12u4");
        assert_eq!(libc["hasFiles"].as_array().unwrap().len(), 2);
        assert_eq!(
            libc["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        // No files: not analysed, no verification code.
        let meta = &packages[3];
        assert_eq!(meta["filesAnalyzed"], false);
        assert!(meta.get("packageVerificationCode").is_none());
        assert_eq!(meta["SPDXID"], "SPDXRef-Package-deb-meta---pkg--2");
        assert_eq!(doc["files"].as_array().unwrap().len(), 3);
        assert_eq!(doc["relationships"].as_array().unwrap().len(), 4);
        // No version recorded: none written.
        assert!(packages[1].get("versionInfo").is_none());
    }

    #[test]
    fn verification_code_follows_the_spec() {
        // The SHA-1 of "a9993e36…" (the SHA-1 of "abc") alone.
        let f = OwnedFile::of("/x", b"abc");
        let expected: [u8; 20] = sha1::Sha1::digest(f.sha1_hex().as_bytes()).into();
        assert_eq!(verification_code(std::slice::from_ref(&f)), hex(&expected));
        let g = OwnedFile::of("/y", b"xyz");
        assert_eq!(
            verification_code(&[f.clone(), g.clone()]),
            verification_code(&[g, f])
        );
    }

    #[test]
    fn same_inventory_same_bytes() {
        let mut reversed = sample();
        reversed.packages.reverse();
        assert_eq!(spdx_json(&sample()), spdx_json(&reversed));
    }
}
