//! `chunkah pack` with an image as its source (`oci:`, `oci-archive:`) and an
//! archive as its destination: layered images made by real clients (umoci
//! writes whiteouts, skopeo writes archives) are flattened, rechunked, read
//! back by the same clients and compared entry by entry.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::*;

fn umoci(args: &[&str]) {
    run(Command::new(require_tool("umoci", "umoci")).args(args));
}

fn skopeo(args: &[&str]) -> std::process::Output {
    run(Command::new(require_tool("skopeo", "skopeo")).args(args))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Packs `source` into `dest` (gzip, so umoci can read it) and returns the JSON report.
fn pack(source: &str, dest: &str) -> serde_json::Value {
    let out = run(chunkah().args([
        "pack",
        source,
        "-o",
        dest,
        "--json",
        "--compression",
        "gzip",
        "--source-date-epoch",
        EPOCH,
    ]));
    serde_json::from_slice(&out.stdout).expect("pack --json prints JSON")
}

fn layer_digests(report: &serde_json::Value) -> Vec<String> {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// A three-layer image made by umoci: the second layer deletes files and a
/// directory (whiteouts), replaces a directory by a file, changes content;
/// the third sets a runtime config. Returns the final rootfs.
fn layered_image(tmp: &Path) -> std::path::PathBuf {
    let layout = tmp.join("layered");
    let bundle = tmp.join("bundle");
    umoci(&["init", "--layout", s(&layout)]);
    let image = format!("{}:base", s(&layout));
    umoci(&["new", "--image", &image]);
    umoci(&["unpack", "--image", &image, s(&bundle)]);
    let root = bundle.join("rootfs");
    let p = |x: &str| root.join(x);
    for d in ["usr/bin", "etc", "gone/deep", "replaced/sub", "keep", "srv"] {
        fs::create_dir_all(p(d)).unwrap();
    }
    fs::write(p("usr/bin/tool"), b"tool v1").unwrap();
    fs::hard_link(p("usr/bin/tool"), p("usr/bin/tool-link")).unwrap();
    fs::write(p("etc/config"), b"old config").unwrap();
    fs::write(p("etc/delete-me"), b"bye").unwrap();
    fs::write(p("gone/deep/file"), b"deleted later").unwrap();
    fs::write(p("replaced/sub/file"), b"replaced later").unwrap();
    fs::write(p("keep/file"), b"kept").unwrap();
    symlink("../usr/bin/tool", p("srv/link")).unwrap();
    lchown(&p("keep/file"), 1000, 1000);
    set_xattr(&p("keep/file"), "user.note", b"xattr kept");
    mknod(&p("srv/null"), libc::S_IFCHR | 0o666, 1, 3);
    // --refresh-bundle: the next repack diffs against this state, so its
    // layer holds whiteouts.
    umoci(&["repack", "--refresh-bundle", "--image", &image, s(&bundle)]);
    fs::remove_dir_all(p("gone")).unwrap();
    fs::remove_file(p("etc/delete-me")).unwrap();
    fs::remove_dir_all(p("replaced")).unwrap();
    fs::write(p("replaced"), b"now a file").unwrap();
    fs::write(p("etc/config"), b"new config").unwrap();
    fs::write(p("srv/added"), b"added").unwrap();
    umoci(&["repack", "--image", &image, s(&bundle)]);
    umoci(&[
        "config",
        "--image",
        &image,
        "--config.env",
        "FOO=bar",
        "--config.entrypoint",
        "/usr/bin/tool",
        "--config.workingdir",
        "/srv",
        "--config.user",
        "1000:1000",
        "--config.label",
        "org.example=yes",
    ]);
    root
}

/// Unpacks `image` (`DIR:TAG`) with umoci into `unpacked` and asserts its
/// rootfs equals `rootfs`, entry by entry (mtimes clamped to the epoch).
fn unpack_and_compare(image: &str, unpacked: &Path, rootfs: &Path) {
    umoci(&["unpack", "--image", image, s(unpacked)]);
    let diffs = diff_trees(
        rootfs,
        &unpacked.join("rootfs"),
        Some(EPOCH.parse().unwrap()),
    );
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

fn config_of(layout: &Path, tag: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {}", layout.display()));
    let blob = |d: &serde_json::Value| {
        let hex = d
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap()
            .to_string();
        let bytes = fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    let manifest = blob(&m["digest"]);
    blob(&manifest["config"]["digest"])
}

#[test]
fn a_layered_image_is_flattened_with_its_whiteouts_and_config() {
    require_root();
    let tmp = TempDir::new("rechunk-layers");
    let rootfs = layered_image(tmp.path());
    let out = tmp.path().join("out");
    let report = pack(
        &format!("oci:{}:base", s(&tmp.path().join("layered"))),
        &format!("oci:{}:re", s(&out)),
    );
    assert!(!layer_digests(&report).is_empty());
    let unpacked = tmp.path().join("unpacked");
    unpack_and_compare(&format!("{}:re", s(&out)), &unpacked, &rootfs);
    assert!(!unpacked.join("rootfs/gone").exists());
    // Whiteouts were applied, not copied (umoci would apply copied ones too,
    // so look inside the layers).
    for digest in layer_digests(&report) {
        let blob = out.join("blobs/sha256").join(&digest[7..]);
        let listing = run(Command::new("tar").arg("-tzf").arg(&blob)).stdout;
        let listing = String::from_utf8_lossy(&listing);
        assert!(
            !listing.contains(".wh."),
            "{digest} holds whiteouts:\n{listing}"
        );
        assert!(
            !listing.contains("gone"),
            "{digest} holds deleted files:\n{listing}"
        );
    }
    assert_eq!(
        fs::read(unpacked.join("rootfs/replaced")).unwrap(),
        b"now a file"
    );

    // The runtime config is kept, and the source's history comes first.
    let source = config_of(&tmp.path().join("layered"), "base");
    let config = config_of(&out, "re");
    for key in ["Env", "Entrypoint", "WorkingDir", "User", "Labels"] {
        assert_eq!(config["config"][key], source["config"][key], "{key}");
    }
    assert_eq!(config["config"]["Env"][0], "FOO=bar");
    let old = source["history"].as_array().unwrap();
    let new = config["history"].as_array().unwrap();
    assert_eq!(new.len(), old.len() + layer_digests(&report).len());
    for (o, n) in old.iter().zip(new) {
        assert_eq!(o["created_by"], n["created_by"]);
        assert_eq!(n["empty_layer"], true);
    }
    assert_eq!(
        new.iter().filter(|h| h["empty_layer"] != true).count(),
        config["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
    skopeo(&["inspect", &format!("oci:{}:re", s(&out))]);
}

#[test]
fn archives_are_read_and_written_and_keep_their_other_images() {
    require_root();
    let tmp = TempDir::new("rechunk-archive");
    let rootfs = layered_image(tmp.path());
    let layered = format!("oci:{}:base", s(&tmp.path().join("layered")));
    let source = tmp.path().join("source.tar");
    skopeo(&["copy", &layered, &format!("oci-archive:{}:src", s(&source))]);
    let archive = tmp.path().join("out.tar");
    let from_archive = pack(
        &format!("oci-archive:{}:src", s(&source)),
        &format!("oci-archive:{}:one", s(&archive)),
    );
    // The same tree gives the same layers, whatever held the source.
    let from_layout = pack(&layered, &format!("oci:{}:x", s(&tmp.path().join("l2"))));
    assert_eq!(layer_digests(&from_archive), layer_digests(&from_layout));

    // A second image joins the archive; the first stays readable.
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-rootfs.tar");
    pack(
        &format!("tar:{sample}"),
        &format!("oci-archive:{}:two", s(&archive)),
    );
    for tag in ["one", "two"] {
        skopeo(&["inspect", &format!("oci-archive:{}:{tag}", s(&archive))]);
    }
    let copy = tmp.path().join("copy");
    skopeo(&[
        "copy",
        &format!("oci-archive:{}:one", s(&archive)),
        &format!("oci:{}:one", s(&copy)),
    ]);
    unpack_and_compare(
        &format!("{}:one", s(&copy)),
        &tmp.path().join("unpacked"),
        &rootfs,
    );

    // Replacing a tag drops the blobs only it used; no scratch is left beside.
    pack(
        &format!("tar:{sample}"),
        &format!("oci-archive:{}:one", s(&archive)),
    );
    let listing = run(Command::new("tar").arg("-tf").arg(&archive)).stdout;
    let blobs = String::from_utf8(listing)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("blobs/sha256/") && l.len() > 20)
        .count();
    // Both tags now hold the sample: one manifest each (annotations differ
    // nowhere, so the manifests are the same blob), its config and layers.
    let sample_blobs = 2 + from_sample_layers(&tmp, sample);
    assert_eq!(blobs, sample_blobs, "unreferenced blobs were kept");
    let names = dot_names(tmp.path());
    assert!(names.is_empty(), "left behind: {names:?}");
}

fn from_sample_layers(tmp: &TempDir, sample: &str) -> usize {
    let r = pack(
        &format!("tar:{sample}"),
        &format!("oci:{}:s", s(&tmp.path().join("sample-layout"))),
    );
    layer_digests(&r).len()
}

#[test]
fn corrupt_or_truncated_images_are_clear_errors_and_write_nothing() {
    require_root();
    let tmp = TempDir::new("rechunk-bad");
    layered_image(tmp.path());
    let layout = tmp.path().join("layered");
    // Flip a byte in the middle of the largest layer blob.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_hex = index["manifests"][0]["digest"].as_str().unwrap()[7..].to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(manifest_hex)).unwrap())
            .unwrap();
    let largest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let archive = tmp.path().join("good.tar");
    skopeo(&[
        "copy",
        &format!("oci:{}:base", s(&layout)),
        &format!("oci-archive:{}:t", s(&archive)),
    ]);
    let blob = layout.join("blobs/sha256").join(&largest[7..]);
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::write(&blob, &bytes).unwrap();
    let truncated = tmp.path().join("truncated.tar");
    let whole = fs::read(&archive).unwrap();
    fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let missing_tag = format!("oci:{}:nope", s(&layout));
    let dest = tmp.path().join("dest");
    for (source, needle) in [
        (format!("oci:{}:base", s(&layout)), largest.as_str()),
        (format!("oci-archive:{}:t", s(&truncated)), "truncated"),
        (missing_tag, "no image tagged \"nope\""),
        (format!("oci:{}", s(&tmp.path().join("none"))), "none"),
        (format!("oci-archive:{}", s(&blob)), "not"),
    ] {
        let out = chunkah()
            .args(["pack", &source, "-o"])
            .arg(format!("oci:{}", s(&dest)))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{source}: {err}");
        assert!(err.contains(needle), "{source}: {err}");
        assert!(!dest.join("index.json").exists(), "{source}");
    }
}
