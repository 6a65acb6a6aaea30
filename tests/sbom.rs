//! SBOM documents checked by validators that chunkah did not write:
//! `pyspdxtools` (PyPI spdx-tools) for SPDX 2.3 and cyclonedx-python-lib's
//! strict JSON-schema validator for CycloneDX 1.6, both installed by
//! scripts/setup.sh into a virtual environment.

mod common;

use std::path::PathBuf;
use std::process::Command;

use chunkah::sbom::{
    cyclonedx_json, spdx_json, Ecosystem, Inventory, OsRelease, OwnedFile, Package,
};
use chunkah::Digest;
use common::TempDir;

/// The validators' virtual environment (scripts/setup.sh makes it).
fn venv() -> PathBuf {
    let dir = std::env::var_os("CHUNKAH_SBOM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/chunkah/sbom-venv")
        });
    assert!(
        dir.join("bin/pyspdxtools").is_file(),
        "this test needs the SBOM validators in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

fn package(ecosystem: Ecosystem, name: &str, version: Option<&str>, files: &[&str]) -> Package {
    Package {
        ecosystem,
        name: name.into(),
        version: version.map(str::to_string),
        architecture: Some("amd64".into()),
        source: None,
        license: None,
        files: files
            .iter()
            .map(|p| OwnedFile::of(*p, p.as_bytes()))
            .collect(),
    }
}

/// Packages of every ecosystem, with what validators trip on: no version,
/// no files, a free-text licence, names and versions needing escapes, one
/// file owned by two packages.
fn inventory() -> Inventory {
    let mut rpm = package(
        Ecosystem::Rpm,
        "bash",
        Some("5.2.26-3.fc40"),
        &["/usr/bin/bash"],
    );
    rpm.license = Some("GPLv3+".into());
    rpm.source = Some("bash-5.2.26-3.fc40.src.rpm".into());
    Inventory {
        subject: "oci:/tmp/out:v1 <&\"'>".into(),
        subject_digest: Some(Digest::of(b"manifest")),
        distro: Some(OsRelease {
            id: "debian".into(),
            version_id: "12".into(),
        }),
        created: 1_700_000_000,
        packages: vec![
            package(
                Ecosystem::Deb,
                "libc6",
                Some("2.36-9+deb12u4"),
                &[
                    "/usr/lib/x86_64-linux-gnu/libc.so.6",
                    "/usr/share/doc/shared",
                ],
            ),
            package(Ecosystem::Deb, "libc-bin", None, &["/usr/share/doc/shared"]),
            package(Ecosystem::Deb, "perl", Some("1:5.36.0-7"), &[]),
            rpm,
            package(
                Ecosystem::Apk,
                "musl",
                Some("1.2.5-r0"),
                &["/lib/ld-musl.so.1"],
            ),
            package(
                Ecosystem::Alpm,
                "glibc",
                Some("2.40-1"),
                &["/usr/lib/libc.so.6"],
            ),
            package(
                Ecosystem::Pypi,
                "Typing_Extensions",
                Some("4.12.2"),
                &["/x.py"],
            ),
            package(
                Ecosystem::Npm,
                "@babel/core",
                Some("7.0.0"),
                &["/n/package.json"],
            ),
        ],
    }
}

/// spdx-tools' parser and full validator (what `pyspdxtools -i` runs): its
/// messages, or `valid` and the number of packages it read.
const SPDX_CHECK: &str = "import sys\n\
    from spdx_tools.spdx.parser.parse_anything import parse_file\n\
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document\n\
    doc = parse_file(sys.argv[1])\n\
    m = validate_full_spdx_document(doc)\n\
    print('\\n'.join(x.validation_message for x in m) if m else f'valid {len(doc.packages)}')\n\
    sys.exit(1 if m else 0)\n";

fn run_check(venv: &std::path::Path, check: &str, file: &std::path::Path) -> (bool, String) {
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", check])
        .arg(file)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said.trim().to_string())
}

#[test]
fn spdx_tools_accept_the_spdx_document() {
    let venv = venv();
    let dir = TempDir::new("sbom-spdx");
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(&file, spdx_json(&inventory())).unwrap();
    let (ok, said) = run_check(&venv, SPDX_CHECK, &file);
    assert!(ok, "{said}");
    // The subject and the eight packages.
    assert_eq!(said, "valid 9");
    // The command-line tool agrees (it logs nothing when the document is valid).
    let out = Command::new(venv.join("bin/pyspdxtools"))
        .arg("-i")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// cyclonedx-python-lib's strict JSON-schema validator for 1.6.
const CYCLONEDX_CHECK: &str = "import sys\n\
    from cyclonedx.schema import SchemaVersion\n\
    from cyclonedx.validation.json import JsonStrictValidator\n\
    e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
    print(e if e else 'valid')\n\
    sys.exit(1 if e else 0)\n";

#[test]
fn the_cyclonedx_schema_accepts_the_cyclonedx_document() {
    let venv = venv();
    let dir = TempDir::new("sbom-cdx");
    let file = dir.path().join("sbom.cdx.json");
    std::fs::write(&file, cyclonedx_json(&inventory())).unwrap();
    let (ok, said) = run_check(&venv, CYCLONEDX_CHECK, &file);
    assert!(ok, "{said}");
    assert_eq!(said, "valid");
}

#[test]
fn a_broken_document_is_refused_by_both() {
    // The validators are not yes-sayers: a file without SHA-1 and a
    // CycloneDX document of an unknown spec version fail.
    let venv = venv();
    let dir = TempDir::new("sbom-broken");
    let spdx = spdx_json(&inventory()).replacen("\"SHA1\"", "\"MD5\"", 1);
    let file = dir.path().join("broken.spdx.json");
    std::fs::write(&file, spdx).unwrap();
    let (ok, said) = run_check(&venv, SPDX_CHECK, &file);
    assert!(!ok && said.contains("SHA1"), "{said}");
    let cdx =
        cyclonedx_json(&inventory()).replacen("\"type\": \"library\"", "\"type\": \"gadget\"", 1);
    let file = dir.path().join("broken.cdx.json");
    std::fs::write(&file, cdx).unwrap();
    let (ok, said) = run_check(&venv, CYCLONEDX_CHECK, &file);
    assert!(!ok && said.contains("gadget"), "{said}");
}

fn series() -> PathBuf {
    let Some(series) = std::env::var_os("CHUNKAH_SERIES_DIR") else {
        panic!("set CHUNKAH_SERIES_DIR to the output of ../shared/data/make-rootfs-series.sh (scripts/test.sh does)");
    };
    PathBuf::from(series)
}

/// `name version arch` of every installed package, as dpkg-query lists them.
fn dpkg_query(root: &std::path::Path) -> Vec<String> {
    let dpkg_query = common::require_tool("dpkg-query", "dpkg");
    let out = Command::new(dpkg_query)
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args([
            "-W",
            "-f",
            "${Status}\t${Package} ${Version} ${Architecture}\n",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(status, _)| status.ends_with(" ok installed"))
        .map(|(_, p)| p.to_string())
        .collect();
    lines.sort();
    lines
}

/// `name version arch` of every package an SPDX document lists.
fn spdx_packages(doc: &serde_json::Value) -> Vec<String> {
    let mut lines: Vec<String> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["SPDXID"] != "SPDXRef-Subject")
        .map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
            let arch = purl
                .split("arch=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap();
            format!(
                "{} {} {arch}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap()
            )
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn every_series_tree_gets_valid_documents_listing_what_dpkg_lists() {
    let venv = venv();
    let series = series();
    let dir = TempDir::new("sbom-series");
    for v in ["v1", "v2", "v3", "v4"] {
        let root = series.join(v);
        let spdx = dir.path().join(format!("{v}.spdx.json"));
        let cdx = dir.path().join(format!("{v}.cdx.json"));
        for (format, file) in [("spdx-json", &spdx), ("cyclonedx-json", &cdx)] {
            let out = common::run(
                common::chunkah()
                    .args(["sbom", "--format", format, "--json", "-o"])
                    .arg(file)
                    .arg(format!("dir:{}", root.display())),
            );
            let report = common::stdout_json(&out);
            assert!(report["packages"].as_u64().unwrap() > 50, "{report}");
            assert!(report["files"].as_u64().unwrap() > 1000, "{report}");
        }
        let (ok, said) = run_check(&venv, SPDX_CHECK, &spdx);
        assert!(ok, "{v}: {said}");
        let (ok, said) = run_check(&venv, CYCLONEDX_CHECK, &cdx);
        assert!(ok && said == "valid", "{v}: {said}");
        let doc = common::read_json(&spdx);
        assert_eq!(spdx_packages(&doc), dpkg_query(&root), "{v}");
        // Every package's purl names Debian.
        let text = std::fs::read_to_string(&spdx).unwrap();
        assert!(text.contains("pkg:deb/debian/"), "{v}");
    }
    // The same tree, the same bytes.
    let again = dir.path().join("again.spdx.json");
    common::run(
        common::chunkah()
            .args(["sbom", "-o"])
            .arg(&again)
            .arg(series.join("v1")),
    );
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(dir.path().join("v1.spdx.json")).unwrap()
    );
}

#[test]
fn inputs_it_cannot_read_are_named() {
    let not_tar = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    for (source, needle) in [
        (format!("tar:{not_tar}"), "Cargo.toml"),
        ("dir:/no/such/tree".to_string(), "/no/such/tree"),
        ("oci:/no/such/layout:v1".to_string(), "/no/such/layout"),
    ] {
        let out = common::chunkah().args(["sbom", &source]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{source}: {err}");
        assert!(err.contains(needle), "{source}: {err}");
        assert!(out.stdout.is_empty(), "{source}: no document on stdout");
    }
    // A bare tarball path; the sample's dpkg database and os-release.
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-rootfs.tar");
    let out = common::run(common::chunkah().args(["sbom", "--format", "cyclonedx-json", sample]));
    let doc = common::stdout_json(&out);
    let purls: Vec<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap())
        .collect();
    assert_eq!(
        purls,
        [
            "pkg:deb/sample/greet@2.1-1?arch=amd64&distro=sample&upstream=greetings",
            "pkg:deb/sample/hello@1.0?arch=amd64&distro=sample"
        ]
    );
    // A tree without package databases is an empty inventory, not an error.
    let empty = TempDir::new("sbom-empty");
    let out = common::run(common::chunkah().arg("sbom").arg(empty.path()));
    let doc = common::stdout_json(&out);
    assert_eq!(
        doc["packages"].as_array().unwrap().len(),
        1,
        "the subject alone"
    );
}

#[test]
fn an_image_and_a_tarball_of_a_tree_list_what_the_tree_lists() {
    let series = series();
    let dir = TempDir::new("sbom-image");
    let tree = series.join("v1");
    let layout = format!("oci:{}:v1", dir.path().join("images").display());
    common::pack_json(&tree, &layout, &[]);
    let tarball = dir.path().join("v1.tar");
    let tar = common::require_tool("tar", "tar");
    common::run(
        Command::new(tar)
            .arg("-C")
            .arg(&tree)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    );
    let document = |source: &str, name: &str| {
        let file = dir.path().join(name);
        common::run(
            common::chunkah()
                .args(["sbom", "-o"])
                .arg(&file)
                .arg(source),
        );
        common::read_json(&file)
    };
    let from_tree = document(&format!("dir:{}", tree.display()), "tree.json");
    let from_image = document(&layout, "image.json");
    let from_tar = document(&format!("tar:{}", tarball.display()), "tar.json");
    for (name, doc) in [("image", &from_image), ("tarball", &from_tar)] {
        assert_eq!(doc["files"], from_tree["files"], "{name}");
        assert_eq!(
            doc["packages"].as_array().unwrap()[1..],
            from_tree["packages"].as_array().unwrap()[1..],
            "{name}"
        );
    }
    // The image's manifest is the document's subject.
    let index = common::read_json(&dir.path().join("images/index.json"));
    let manifest = common::tagged(&index, "v1").unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let subject = &from_image["packages"][0];
    assert_eq!(
        format!(
            "sha256:{}",
            subject["checksums"][0]["checksumValue"].as_str().unwrap()
        ),
        manifest
    );
    assert!(from_tree["packages"][0].get("checksums").is_none());
}
