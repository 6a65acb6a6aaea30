//! `chunkah diff` and `chunkah apply` end to end: the series images step by
//! step (chunk level below layer level, apply reads exactly the plan's bytes
//! and rebuilds the image digest for digest), and bad input.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The manifest of `tag` in the layout at `dir`, and its size.
fn manifest(dir: &Path, tag: &str) -> (serde_json::Value, u64) {
    let index = read_json(&dir.join("index.json"));
    let m = tagged(&index, tag).unwrap().clone();
    let hex = &m["digest"].as_str().unwrap()[7..];
    (
        read_json(&dir.join("blobs/sha256").join(hex)),
        m["size"].as_u64().unwrap(),
    )
}

/// What reading manifests, configs and every layer index of an image costs.
fn metadata_bytes(dir: &Path, tag: &str) -> u64 {
    let (m, size) = manifest(dir, tag);
    let index_json = fs::metadata(dir.join("index.json")).unwrap().len();
    let indexes: u64 = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["dev.chunkah.index.length"]
                .as_str()
                .expect("every layer has an index")
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    index_json + size + m["config"]["size"].as_u64().unwrap() + indexes
}

#[test]
fn series_steps_diff_and_apply_exactly() {
    let Some(series) = std::env::var_os("CHUNKAH_SERIES_DIR") else {
        panic!("set CHUNKAH_SERIES_DIR to the output of ../shared/data/make-rootfs-series.sh (scripts/test.sh does)");
    };
    let series = PathBuf::from(series);
    let tmp = TempDir::new("delta-series");
    let images = tmp.path().join("images");
    let images_ref = |v: &str| format!("oci:{}:{v}", images.display());
    let versions = ["v1", "v2", "v3", "v4"];
    for (i, v) in versions.iter().enumerate() {
        let prior = i.checked_sub(1).map(|p| images_ref(versions[p]));
        let extra: Vec<&str> = match &prior {
            Some(p) => vec!["--prior", p],
            None => vec![],
        };
        pack_json(&series.join(v), &images_ref(v), &extra);
    }
    for pair in versions.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        let out = chunkah()
            .args([
                "diff",
                &images_ref(old),
                &images_ref(new),
                "--json",
                "--exit-code",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{old}->{new} differ");
        let report = stdout_json(&out);
        let l = &report["levels"];
        let (image, layer, file, chunk) = (
            l["image"]["bytes"].as_u64().unwrap(),
            l["layer"]["bytes"].as_u64().unwrap(),
            l["file"]["bytes"].as_u64().unwrap(),
            l["chunk"]["bytes"].as_u64().unwrap(),
        );
        let index_bytes = l["chunk"]["indexBytes"].as_u64().unwrap();
        assert!(index_bytes > 0);
        assert!(
            chunk < layer && layer <= image && file <= layer && chunk <= file,
            "{old}->{new}: image {image} layer {layer} file {file} chunk {chunk}"
        );
        // diff reads manifests, configs and indexes, no layer body (asking
        // for NEW's referrers reads the layout's index.json, not counted).
        assert_eq!(
            report["bytesRead"].as_u64().unwrap(),
            metadata_bytes(&images, old) + metadata_bytes(&images, new),
            "{old}->{new}: diff read more than metadata"
        );
        // apply reads exactly the chunk level and rebuilds NEW digest for digest.
        let dest = tmp.path().join(format!("applied-{new}"));
        let applied = stdout_json(&run(chunkah().args([
            "apply",
            "--from",
            &images_ref(old),
            "--source",
            &images_ref(new),
            "-o",
            &format!("oci:{}:{new}", dest.display()),
            "--json",
        ])));
        assert_eq!(
            applied["bytesRead"].as_u64().unwrap(),
            chunk,
            "{old}->{new}"
        );
        // One request more: asking for a binary delta (there is none).
        assert_eq!(
            applied["requests"].as_u64().unwrap(),
            l["chunk"]["requests"].as_u64().unwrap() + 1,
            "{old}->{new}"
        );
        assert!(applied.get("delta").is_none() && l.get("delta").is_none());
        let (want, _) = manifest(&images, new);
        let (got, _) = manifest(&dest, new);
        assert_eq!(got, want);
        let index = read_json(&dest.join("index.json"));
        let packed = read_json(&images.join("index.json"));
        let digest_of = |idx: &serde_json::Value, tag: &str| {
            idx["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
                .unwrap()["digest"]
                .clone()
        };
        assert_eq!(digest_of(&index, new), digest_of(&packed, new));
        run(Command::new(require_tool("skopeo", "skopeo"))
            .arg("inspect")
            .arg(format!("oci:{}:{new}", dest.display())));
        // Every blob the rebuilt image names is there and hashes to its name.
        for entry in fs::read_dir(dest.join("blobs/sha256")).unwrap() {
            let p = entry.unwrap().path();
            let hex = p.file_name().unwrap().to_str().unwrap().to_string();
            let d = format!("{:x}", sha2_of(&fs::read(&p).unwrap()));
            assert_eq!(d, hex);
        }
    }
    // report: every step, the same figures as diff, and a chart.
    let svg = tmp.path().join("report.svg");
    let refs: Vec<String> = versions.iter().map(|v| images_ref(v)).collect();
    let report = stdout_json(&run(chunkah()
        .arg("report")
        .args(&refs)
        .arg("--json")
        .arg("--svg")
        .arg(&svg)));
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    for (step, pair) in steps.iter().zip(refs.windows(2)) {
        let diff = stdout_json(&run(chunkah().args(["diff", &pair[0], &pair[1], "--json"])));
        assert_eq!(step["levels"], diff["levels"]);
    }
    let chart = fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert_eq!(chart.matches("<title>").count(), 12, "4 bars per step");
    let table = String::from_utf8(run(chunkah().arg("report").args(&refs)).stdout).unwrap();
    assert!(
        table.contains("v1 -> v2") && table.contains("v3 -> v4"),
        "{table}"
    );
    // dir: trees, chunked on the fly: the same ordering of levels, in
    // uncompressed bytes; the same tree needs nothing.
    let tree = |v: &str| format!("dir:{}", series.join(v).display());
    let out = stdout_json(&run(chunkah().args([
        "diff",
        &tree("v1"),
        &tree("v2"),
        "--json",
        "--source-date-epoch",
        EPOCH,
    ])));
    assert_eq!(out["unit"], "uncompressed");
    let l = &out["levels"];
    let b = |k: &str| l[k]["bytes"].as_u64().unwrap();
    assert!(
        0 < b("chunk")
            && b("chunk") <= b("file")
            && b("file") <= b("layer")
            && b("layer") < b("image"),
        "{l}"
    );
    let out = chunkah()
        .args(["diff", &tree("v1"), &tree("v1"), "--exit-code"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A tree and an image cannot be compared: a usage mistake.
    let out = chunkah()
        .args(["diff", &tree("v1"), &images_ref("v1")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("both be images or both dir: trees"), "{err}");
    // The same image needs nothing.
    let out = chunkah()
        .args([
            "diff",
            &images_ref("v2"),
            &images_ref("v2"),
            "--json",
            "--exit-code",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_json(&out)["same"], true);
}

fn sha2_of(bytes: &[u8]) -> impl std::fmt::LowerHex {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
}

fn random_file(path: &Path, len: usize, seed: u64) {
    fs::write(path, chunkah::chunker::golden_input(seed, len)).unwrap();
}

/// Two versions of a small tree: one big file changes in its middle.
fn two_versions(tmp: &Path) -> (String, String, PathBuf) {
    let images = tmp.join("images");
    for (v, seed) in [("a", 1), ("b", 2)] {
        let src = tmp.join(format!("src-{v}"));
        fs::create_dir_all(src.join("usr/lib")).unwrap();
        random_file(&src.join("usr/lib/big"), 2 << 20, 7);
        if v == "b" {
            let mut bytes = fs::read(src.join("usr/lib/big")).unwrap();
            bytes[1 << 20..(1 << 20) + 100].copy_from_slice(&[seed as u8; 100]);
            fs::write(src.join("usr/lib/big"), bytes).unwrap();
        }
        random_file(&src.join("usr/lib/other"), 1 << 20, 9);
        fs::write(src.join("usr/lib/small"), format!("version {v}")).unwrap();
        pack_json(
            &src,
            &format!("oci:{}:{v}", images.display()),
            &["--max-layers", "1"],
        );
    }
    (
        format!("oci:{}:a", images.display()),
        format!("oci:{}:b", images.display()),
        images,
    )
}

#[test]
fn a_changed_chunk_is_all_that_is_fetched() {
    let tmp = TempDir::new("delta-small");
    let (a, b, _) = two_versions(tmp.path());
    let report = stdout_json(&run(chunkah().args(["diff", &a, &b, "--json"])));
    let l = &report["levels"];
    let layer = l["layer"]["bytes"].as_u64().unwrap();
    let chunk = l["chunk"]["bytes"].as_u64().unwrap();
    // 3 MiB of incompressible content, one 64 KiB-ish chunk changed.
    assert!(layer > 3 << 20, "{layer}");
    assert!(chunk < 600 << 10, "{chunk}");
    // A request limit of 3 (manifest, config, index) leaves no room: ranges
    // merge into one more request.
    let limited = stdout_json(&run(chunkah().args([
        "diff",
        &a,
        &b,
        "--json",
        "--max-requests",
        "4",
    ])));
    assert_eq!(limited["levels"]["chunk"]["requests"], 4);
    // The table names every level.
    let table = String::from_utf8(run(chunkah().args(["diff", &a, &b])).stdout).unwrap();
    for level in ["image", "layer", "file", "chunk"] {
        assert!(table.contains(level), "{table}");
    }
    // --plan lists the blobs and ranges.
    let plan_file = tmp.path().join("plan.json");
    run(chunkah().args(["diff", &a, &b, "--plan", plan_file.to_str().unwrap()]));
    let plan = read_json(&plan_file);
    let rebuilt: Vec<&serde_json::Value> = plan["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["action"] == "rebuild")
        .collect();
    assert_eq!(rebuilt.len(), 1);
    assert!(!rebuilt[0]["ranges"].as_array().unwrap().is_empty());
}

/// A range longer than apply's fetch window (32 MiB) is read in pieces,
/// each a request of its own, and the image still comes out exact.
#[test]
fn a_range_above_the_fetch_window_is_read_in_pieces() {
    let tmp = TempDir::new("delta-window");
    let images = tmp.path().join("images");
    for (v, seed) in [("a", 11), ("b", 12)] {
        let src = tmp.path().join(format!("src-{v}"));
        fs::create_dir_all(&src).unwrap();
        // Incompressible and wholly new in b: one range of about 40 MiB.
        random_file(&src.join("big"), 40 << 20, seed);
        pack_json(
            &src,
            &format!("oci:{}:{v}", images.display()),
            &["--max-layers", "1"],
        );
    }
    let (a, b) = (
        format!("oci:{}:a", images.display()),
        format!("oci:{}:b", images.display()),
    );
    let plan_file = tmp.path().join("plan.json");
    let diff = stdout_json(&run(chunkah().args([
        "diff",
        &a,
        &b,
        "--json",
        "--plan",
        plan_file.to_str().unwrap(),
    ])));
    let ranges: Vec<(u64, u64)> = read_json(&plan_file)["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["action"] == "rebuild")
        .flat_map(|b| b["ranges"].as_array().unwrap().clone())
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect();
    let long: Vec<_> = ranges.iter().filter(|r| r.1 - r.0 > 32 << 20).collect();
    assert_eq!(long.len(), 1, "{ranges:?}");
    let dest = tmp.path().join("applied");
    let applied = stdout_json(&run(chunkah().args([
        "apply",
        "--from",
        &a,
        "--source",
        &b,
        "-o",
        &format!("oci:{}:b", dest.display()),
        "--json",
    ])));
    let chunk = &diff["levels"]["chunk"];
    assert_eq!(applied["bytesRead"], chunk["bytes"]);
    // The delta asked for, and the long range's second piece.
    assert_eq!(
        applied["requests"].as_u64().unwrap(),
        chunk["requests"].as_u64().unwrap() + 2
    );
    assert_eq!(manifest(&dest, "b"), manifest(&images, "b"));
}

#[test]
fn corrupt_sources_and_indexes_fail_and_publish_nothing() {
    let tmp = TempDir::new("delta-bad");
    let (a, b, images) = two_versions(tmp.path());
    let (mb, _) = manifest(&images, "b");
    let layer = &mb["layers"][0];
    let hex = layer["digest"].as_str().unwrap()[7..].to_string();
    let blob_path = images.join("blobs/sha256").join(&hex);
    let original = fs::read(&blob_path).unwrap();
    let index_at: usize = layer["annotations"]["dev.chunkah.index.offset"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let dest = tmp.path().join("dest");
    let apply = || {
        chunkah()
            .args(["apply", "--from", &a, "--source", &b, "-o"])
            .arg(format!("oci:{}:b", dest.display()))
            .output()
            .unwrap()
    };
    // A frame of the changed chunk damaged in the source: found, nothing published.
    let plan_file = tmp.path().join("plan.json");
    run(chunkah().args(["diff", &a, &b, "--plan", plan_file.to_str().unwrap()]));
    let plan = read_json(&plan_file);
    let range = plan["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["action"] == "rebuild")
        .unwrap()["ranges"][0]
        .clone();
    let (start, end) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
    let mut damaged = original.clone();
    damaged[((start + end) / 2) as usize] ^= 0x40;
    fs::write(&blob_path, &damaged).unwrap();
    let out = apply();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("frame") || err.contains("decompress"), "{err}");
    assert!(!dest.join("index.json").exists());
    // A damaged index: diff and apply both refuse it.
    let mut damaged = original.clone();
    damaged[index_at + 20] ^= 0x01;
    fs::write(&blob_path, &damaged).unwrap();
    for args in [vec!["diff", &a, &b], vec!["diff", &a, &b, "--exit-code"]] {
        let out = chunkah().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let want = if args.len() == 4 { 2 } else { 1 };
        assert_eq!(out.status.code(), Some(want), "{err}");
        assert!(err.contains("index"), "{err}");
    }
    let out = apply();
    assert_eq!(out.status.code(), Some(1));
    assert!(!dest.join("index.json").exists());
    // A truncated blob.
    fs::write(&blob_path, &original[..original.len() / 2]).unwrap();
    let out = apply();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!dest.join("index.json").exists());
    fs::write(&blob_path, &original).unwrap();
    // Malformed index.json and manifest.
    let index_json = images.join("index.json");
    let good_index = fs::read(&index_json).unwrap();
    fs::write(&index_json, b"{\"schemaVersion\": 2, \"manifests\": [").unwrap();
    let out = chunkah().args(["diff", &a, &b]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("index.json") && err.contains("bad JSON"),
        "{err}"
    );
    fs::write(&index_json, &good_index).unwrap();
    let (_, _) = manifest(&images, "b");
    let index: serde_json::Value = serde_json::from_slice(&good_index).unwrap();
    let mhex = index["manifests"][1]["digest"].as_str().unwrap()[7..].to_string();
    let mpath = images.join("blobs/sha256").join(&mhex);
    let good_manifest = fs::read(&mpath).unwrap();
    fs::write(&mpath, b"not json").unwrap();
    let out = chunkah().args(["diff", &a, &b]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&mhex), "{err}");
    fs::write(&mpath, &good_manifest).unwrap();
    // And intact, it works.
    let out = apply();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
