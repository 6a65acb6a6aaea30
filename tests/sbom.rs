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
use common::sbom::{run_check, venv, CYCLONEDX_CHECK, SPDX_CHECK};
use common::TempDir;

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
        warnings: Vec::new(),
    }
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

/// The referrers an OCI layout lists for `subject` (a manifest digest):
/// each listed manifest's artifact type and its one blob's bytes.
fn layout_referrers(layout: &std::path::Path, subject: &str) -> Vec<(String, Vec<u8>)> {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    };
    let index = common::read_json(&layout.join("index.json"));
    let tag = format!("sha256-{}", subject.strip_prefix("sha256:").unwrap());
    let Some(listed) = common::tagged(&index, &tag) else {
        return Vec::new();
    };
    let referrers = common::read_json(&blob(listed["digest"].as_str().unwrap()));
    referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let manifest = common::read_json(&blob(m["digest"].as_str().unwrap()));
            assert_eq!(manifest["subject"]["digest"], subject, "{manifest}");
            assert_eq!(manifest["artifactType"], m["artifactType"], "{manifest}");
            let layer = &manifest["layers"][0];
            let bytes = std::fs::read(blob(layer["digest"].as_str().unwrap())).unwrap();
            assert_eq!(layer["size"], bytes.len() as u64);
            (m["artifactType"].as_str().unwrap().to_string(), bytes)
        })
        .collect()
}

fn types(referrers: &[(String, Vec<u8>)]) -> Vec<&str> {
    let mut t: Vec<&str> = referrers.iter().map(|(t, _)| t.as_str()).collect();
    t.sort();
    t
}

/// `pack --sbom` publishes the documents beside the image, in the index of
/// its referrers where `--delta-from` lists the delta; they are the bytes
/// `chunkah sbom IMAGE` writes, and SPDX tools accept them. `sbom IMAGE -o
/// DEST` adds one more format and replaces a document of its format.
#[test]
fn packed_sboms_are_listed_beside_the_deltas() {
    let series = series();
    let venv = venv();
    let dir = TempDir::new("sbom-referrers");
    let layout = dir.path().join("images");
    let image = |v: &str| format!("oci:{}:{v}", layout.display());
    let v1 = common::pack_json(&series.join("v1"), &image("v1"), &[]);
    let report = common::pack_json(
        &series.join("v2"),
        &image("v2"),
        &["--delta-from", &image("v1"), "--sbom", "spdx-json"],
    );
    let v2 = report["manifest"].as_str().unwrap();
    assert_eq!(report["sboms"][0]["subject"], v2, "{report}");
    assert_eq!(report["sboms"][0]["format"], "spdx-json", "{report}");
    let listed = layout_referrers(&layout, v2);
    assert_eq!(
        types(&listed),
        ["application/spdx+json", "application/vnd.chunkah.delta.v1"],
        "the delta and the SBOM, side by side"
    );
    let direct = dir.path().join("v2.spdx.json");
    common::run(
        common::chunkah()
            .args(["sbom", "--source-date-epoch", common::EPOCH, "-o"])
            .arg(&direct)
            .arg(image("v2")),
    );
    let spdx = &listed.iter().find(|(t, _)| t.contains("spdx")).unwrap().1;
    assert_eq!(
        spdx,
        &std::fs::read(&direct).unwrap(),
        "the packed tree's document"
    );
    let (ok, said) = run_check(&venv, SPDX_CHECK, &direct);
    assert!(ok, "{said}");
    let doc: serde_json::Value = serde_json::from_slice(spdx).unwrap();
    assert_eq!(spdx_packages(&doc), dpkg_query(&series.join("v2")));
    // A CycloneDX document added, twice: listed once.
    for _ in 0..2 {
        let out = common::run(
            common::chunkah()
                .args(["sbom", "--format", "cyclonedx-json", "--json", "-o"])
                .arg(format!("oci:{}", layout.display()))
                .arg(image("v2")),
        );
        let said = common::stdout_json(&out);
        assert_eq!(said["referrer"]["subject"], v2, "{said}");
    }
    let listed = layout_referrers(&layout, v2);
    assert_eq!(
        types(&listed),
        [
            "application/spdx+json",
            "application/vnd.chunkah.delta.v1",
            "application/vnd.cyclonedx+json"
        ]
    );
    // v1 has no referrers; a tree is not an image to publish beside.
    assert!(layout_referrers(&layout, v1["manifest"].as_str().unwrap()).is_empty());
    let out = common::chunkah()
        .args(["sbom", "-o"])
        .arg(format!("oci:{}", layout.display()))
        .arg(series.join("v1"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("beside an image"), "{err}");
}

/// `build --sbom` into an archive: the document travels in the archive,
/// listed for the image it holds.
#[test]
fn an_archive_built_with_an_sbom_holds_it_beside_the_image() {
    let series = series();
    let dir = TempDir::new("sbom-archive");
    let archive = dir.path().join("v1.ociarchive");
    let out = common::run(
        common::chunkah()
            .args(["build", "--rootfs"])
            .arg(series.join("v1"))
            .args(["--sbom", "cyclonedx-json", "-o"])
            .arg(format!("oci-archive:{}", archive.display())),
    );
    assert!(out.status.success());
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = common::require_tool("tar", "tar");
    common::run(
        Command::new(tar)
            .arg("-C")
            .arg(&unpacked)
            .arg("-xf")
            .arg(&archive),
    );
    let index = common::read_json(&unpacked.join("index.json"));
    let image = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mediaType"] == "application/vnd.oci.image.manifest.v1+json")
        .expect("the image")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = layout_referrers(&unpacked, &image);
    assert_eq!(types(&listed), ["application/vnd.cyclonedx+json"]);
    let doc: serde_json::Value = serde_json::from_slice(&listed[0].1).unwrap();
    assert_eq!(
        doc["components"].as_array().unwrap().len(),
        dpkg_query(&series.join("v1")).len()
    );
}

/// A package without a version and a database that does not parse: each a
/// warning naming the file, on stderr and in `--json`; the document lists
/// what the other databases list and both validators accept it.
#[test]
fn a_corrupt_database_and_a_package_without_version_are_warnings() {
    let venv = venv();
    let dir = TempDir::new("sbom-warnings");
    let root = dir.path().join("root");
    for d in ["var/lib/dpkg/info", "lib/apk/db", "usr/bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n\
         Package: noversion\nStatus: install ok installed\nArchitecture: amd64\n",
    )
    .unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/info/hello.list"),
        "/usr/bin/hello\n",
    )
    .unwrap();
    std::fs::write(root.join("usr/bin/hello"), "#!/bin/sh\n").unwrap();
    // An apk record line without its "K:" form.
    std::fs::write(root.join("lib/apk/db/installed"), "P:musl\nnot a field\n").unwrap();
    for (format, check) in [
        ("spdx-json", SPDX_CHECK),
        ("cyclonedx-json", CYCLONEDX_CHECK),
    ] {
        let file = dir
            .path()
            .join(format!("doc.{}.json", &format[..format.len() - 5]));
        let out = common::run(
            common::chunkah()
                .args(["sbom", "--json", "--format", format, "-o"])
                .arg(&file)
                .arg(&root),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report = common::stdout_json(&out);
        let warnings: Vec<&str> = report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("var/lib/dpkg/status")
                && warnings[0].contains("noversion records no version"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("lib/apk/db/installed")
                && warnings[1].contains("the apk database is left out"),
            "{warnings:?}"
        );
        for w in &warnings {
            assert!(stderr.contains(&format!("warning: {w}")), "{stderr}");
        }
        assert_eq!(report["packages"], 2, "hello and noversion");
        let (ok, said) = run_check(&venv, check, &file);
        assert!(ok, "{format}: {said}");
    }
}

/// Through a registry: `pack -o docker://… --sbom` pushes the document
/// beside the image, `sbom IMAGE -o IMAGE` adds the other format,
/// and both are listed under the referrers tag with the image as subject.
#[test]
fn sboms_are_pushed_beside_the_image_in_a_registry() {
    use chunkah::registry::Target;
    let series = series();
    let registry = common::registry::Registry::start("sbom-registry");
    let remote = format!("docker://{}/sbom:v1", registry.host());
    let report = common::pack_json(
        &series.join("v1"),
        &remote,
        &["--tls-verify=false", "--sbom", "spdx-json"],
    );
    let subject = report["manifest"].as_str().unwrap();
    common::run(common::chunkah().args([
        "sbom",
        "--tls-verify=false",
        "--format",
        "cyclonedx-json",
        "-o",
        &remote,
        &remote,
    ]));
    let client = registry.client("sbom");
    let tag = format!("sha256-{}", subject.strip_prefix("sha256:").unwrap());
    let index = client.get_manifest(&Target::Tag(tag)).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    let mut listed = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let digest = Digest::parse(m["digest"].as_str().unwrap()).unwrap();
        let manifest = client.get_manifest(&Target::Digest(digest)).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
        assert_eq!(manifest["subject"]["digest"], subject, "{manifest}");
        let layer = &manifest["layers"][0];
        let blob = Digest::parse(layer["digest"].as_str().unwrap()).unwrap();
        let doc = client
            .get_blob(&blob, layer["size"].as_u64().unwrap())
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let packages = doc
            .get("packages")
            .or_else(|| doc.get("components"))
            .and_then(|p| p.as_array())
            .map_or(0, Vec::len);
        assert!(packages > 80, "{}", m["artifactType"]);
        listed.push(m["artifactType"].as_str().unwrap().to_string());
    }
    listed.sort();
    assert_eq!(
        listed,
        ["application/spdx+json", "application/vnd.cyclonedx+json"]
    );
}
