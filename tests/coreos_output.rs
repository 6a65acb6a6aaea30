//! `chunkah build` writes what coreos/chunkah writes, field by field, on an
//! rpm tree made here with rpmbuild and rpm: layer annotations
//! (`org.chunkah.component`, `org.chunkah.stability`), component names
//! (`rpm/<source rpm>`, `bigfiles/<name>`, `chunkah/unclaimed`), history
//! entries and the `--write-manifest-to` document, beside rpm-ostree's
//! `ostree.components`.
//!
//! With `CHUNKAH_COREOS_BIN` set to a coreos/chunkah binary
//! (scripts/coreos-compare.sh builds one from its source), both run on the
//! tree and are compared; without it, ours is compared with what
//! coreos/chunkah 0.6 (commit 4c8abc3) wrote for this tree, recorded below.
//! The differences on purpose: files no package owns under 1 MiB may fill
//! several layers (all `chunkah/unclaimed`), and directories count 0 bytes
//! in the document's sizes (coreos/chunkah adds their st_size).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

const ALPHA_SPEC: &str = "Name: alpha\nVersion: 1.0\nRelease: 3\nSummary: t\nLicense: MIT\nBuildArch: noarch\n\
%description\nt\n%package tools\nSummary: tools\n%description tools\ntools\n\
%install\nmkdir -p %{buildroot}/usr/share/alpha %{buildroot}/usr/bin\n\
echo data > %{buildroot}/usr/share/alpha/data.txt\n\
head -c 2000000 /dev/zero | tr '\\0' 'a' > %{buildroot}/usr/share/alpha/big.bin\n\
echo '#!/bin/sh' > %{buildroot}/usr/bin/alpha-tool\n\
%files\n/usr/share/alpha\n%files tools\n/usr/bin/alpha-tool\n\
%changelog\n* Mon Nov 13 2023 A <a@b> - 1.0-3\n- third\n* Mon Nov 13 2023 A <a@b> - 1.0-2\n- second, same day\n\
* Mon Oct 02 2023 A <a@b> - 1.0-1\n- first\n";

const BETA_SPEC: &str = "Name: beta\nVersion: 2.1\nRelease: 1\nSummary: t\nLicense: GPL-2.0-only\nBuildArch: noarch\n\
%description\nt\n%install\nmkdir -p %{buildroot}/etc\necho conf > %{buildroot}/etc/beta.conf\n%files\n/etc/beta.conf\n";

/// The rpms' build time and the images' creation time.
const BUILT: &str = "1699000000";
const CREATED: &str = "1700000000";

/// A tree of two source rpms (alpha with a subpackage and a changelog of
/// three entries on two days, beta without), installed by rpm into
/// `usr/lib/sysimage/rpm`, and two files no package owns (one of 3 MB).
fn rpm_tree(dir: &Path) -> std::path::PathBuf {
    let top = dir.join("rpmbuild");
    fs::create_dir_all(top.join("SPECS")).unwrap();
    for (name, spec) in [("alpha", ALPHA_SPEC), ("beta", BETA_SPEC)] {
        let file = top.join("SPECS").join(format!("{name}.spec"));
        fs::write(&file, spec).unwrap();
        run(Command::new(require_tool("rpmbuild", "rpm"))
            .env("SOURCE_DATE_EPOCH", BUILT)
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .args(["--define", "use_source_date_epoch_as_buildtime 1", "-bb"])
            .arg(&file));
    }
    let tree = dir.join("tree");
    let db = "/usr/lib/sysimage/rpm";
    let rpm = || {
        let mut c = Command::new(require_tool("rpm", "rpm"));
        c.arg("--root").arg(&tree).args(["--dbpath", db]);
        c
    };
    fs::create_dir_all(&tree).unwrap();
    run(rpm().arg("--initdb"));
    let rpms: Vec<_> = fs::read_dir(top.join("RPMS/noarch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    run(rpm().args(["--nodeps", "--noscripts", "-i"]).args(&rpms));
    // One file, as a built image holds it.
    let sqlite = tree.join("usr/lib/sysimage/rpm/rpmdb.sqlite");
    run(Command::new(require_tool("sqlite3", "sqlite3"))
        .arg(&sqlite)
        .arg("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;"));
    for extra in ["rpmdb.sqlite-shm", "rpmdb.sqlite-wal", ".rpm.lock"] {
        let _ = fs::remove_file(tree.join("usr/lib/sysimage/rpm").join(extra));
    }
    fs::create_dir_all(tree.join("opt/unowned")).unwrap();
    let blob: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(tree.join("opt/unowned/blob.dat"), blob).unwrap();
    fs::write(tree.join("opt/unowned/small.txt"), "hi\n").unwrap();
    tree
}

/// What a build wrote: each layer's (component, stability) annotations,
/// history (created, author, created_by, comment), the manifest document
/// (component -> (file_count, stability, files)) and the layers' other
/// annotations.
struct Written {
    layers: Vec<(String, String)>,
    history: Vec<(String, String, String, String)>,
    components: BTreeMap<String, (u64, f64, Vec<String>)>,
    ostree: Vec<String>,
}

fn written(layout: &Path, manifest_file: &Path) -> Written {
    let index = read_json(&layout.join("index.json"));
    let blob = |d: &serde_json::Value| layout.join("blobs/sha256").join(&d.as_str().unwrap()[7..]);
    let manifest = read_json(&blob(&index["manifests"][0]["digest"]));
    let config = read_json(&blob(&manifest["config"]["digest"]));
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let layers = manifest["layers"].as_array().unwrap();
    let doc = read_json(manifest_file);
    Written {
        layers: layers
            .iter()
            .map(|l| {
                (
                    s(&l["annotations"]["org.chunkah.component"]),
                    s(&l["annotations"]["org.chunkah.stability"]),
                )
            })
            .collect(),
        history: config["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    s(&h["created"]),
                    s(&h["author"]),
                    s(&h["created_by"]),
                    s(&h["comment"]),
                )
            })
            .collect(),
        components: doc["components"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let files = v["files"].as_array().unwrap().iter().map(s).collect();
                (
                    k.clone(),
                    (
                        v["file_count"].as_u64().unwrap(),
                        v["stability"].as_f64().unwrap(),
                        files,
                    ),
                )
            })
            .collect(),
        ostree: layers
            .iter()
            .map(|l| s(&l["annotations"]["ostree.components"]))
            .collect(),
    }
}

fn build(bin: Command, tree: &Path, out: &Path) -> Written {
    let mut cmd = bin;
    let doc = out.with_extension("json");
    run(cmd
        .env("SOURCE_DATE_EPOCH", CREATED)
        .env_remove("CHUNKAH_CONFIG_STR")
        .args(["build", "--rootfs"])
        .arg(tree)
        .arg("-o")
        .arg(format!("oci:{}", out.display()))
        .arg("--write-manifest-to")
        .arg(&doc));
    written(out, &doc)
}

/// What coreos/chunkah 0.6 (4c8abc3) wrote for [`rpm_tree`], in its order.
fn recorded() -> Written {
    let t = |s: &str| s.to_string();
    let unclaimed = [
        "/etc",
        "/opt",
        "/opt/unowned",
        "/opt/unowned/small.txt",
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/lib/sysimage",
        "/usr/lib/sysimage/rpm",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite",
        "/usr/share",
    ];
    Written {
        layers: vec![
            (t("rpm/alpha"), t("0.724")),
            (t("rpm/beta"), t("0.546")),
            (t("bigfiles/blob.dat"), t("0.000")),
            (t("chunkah/unclaimed"), t("0.000")),
        ],
        history: [
            ("2023-11-03T08:26:40Z", "rpm/alpha"),
            ("2023-11-03T08:26:40Z", "rpm/beta"),
            ("2023-11-14T22:13:20Z", "bigfiles/blob.dat"),
            ("2023-11-14T22:13:20Z", "chunkah/unclaimed"),
        ]
        .map(|(c, n)| (t(c), t("chunkah"), t("chunkah"), t(n)))
        .into(),
        components: [
            ("bigfiles/blob.dat", 1, 0.0, vec!["/opt/unowned/blob.dat"]),
            ("chunkah/unclaimed", 11, 0.0, unclaimed.to_vec()),
            (
                "rpm/alpha",
                4,
                0.7244170187257041,
                vec![
                    "/usr/bin/alpha-tool",
                    "/usr/share/alpha",
                    "/usr/share/alpha/big.bin",
                    "/usr/share/alpha/data.txt",
                ],
            ),
            ("rpm/beta", 1, 0.5461836524472541, vec!["/etc/beta.conf"]),
        ]
        .into_iter()
        .map(|(k, n, s, f)| (t(k), (n, s, f.into_iter().map(t).collect())))
        .collect(),
        ostree: Vec::new(),
    }
}

/// `v` with consecutive repeats of one element made one: our unowned
/// files may fill several layers, all of them `chunkah/unclaimed`.
fn squeezed<T: PartialEq + Clone>(v: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in v {
        if out.last() != Some(x) {
            out.push(x.clone());
        }
    }
    out
}

#[test]
fn build_writes_what_coreos_chunkah_writes() {
    let tmp = TempDir::new("coreos-output");
    let tree = rpm_tree(tmp.path());
    let ours = build(chunkah(), &tree, &tmp.path().join("ours"));
    let theirs = match std::env::var_os("CHUNKAH_COREOS_BIN") {
        Some(bin) => build(Command::new(bin), &tree, &tmp.path().join("theirs")),
        None => recorded(),
    };
    assert_eq!(squeezed(&ours.layers), theirs.layers, "layer annotations");
    assert_eq!(squeezed(&ours.history), theirs.history, "history");
    assert_eq!(ours.components, theirs.components, "--write-manifest-to");
    // rpm-ostree's annotation too: the packages by source name.
    assert_eq!(&ours.ostree[..2], ["alpha", "beta"], "{:?}", ours.ostree);
    assert!(
        ours.ostree[2..].iter().all(String::is_empty),
        "{:?}",
        ours.ostree
    );
    // skopeo reads the same manifest.
    let raw = run(Command::new(require_tool("skopeo", "skopeo"))
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}", tmp.path().join("ours").display())));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        manifest["layers"][0]["annotations"]["ostree.components"],
        "alpha"
    );
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.chunkah.component"],
        "rpm/alpha"
    );
}
