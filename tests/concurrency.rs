//! Many runs writing into one layout or archive at once: 8 processes of the
//! real binary (packs into a layout and into an archive, applies, and an
//! apply that fails after writing blobs) started together, into a new layout
//! and into one with an image already, 20 times. Every tag a run reported is
//! there afterwards, `skopeo inspect` reads it, and every blob its manifest
//! names is present with its digest.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use sha2::{Digest as _, Sha256};

const ROUNDS: usize = 20;

/// A tree of `dirs` directories of files (so a pack makes several layers);
/// `version` changes a few files in each, `extra` adds a file of its own.
fn make_tree(root: &Path, version: u32, extra: Option<&str>) {
    for d in 0..6 {
        let dir = root.join(format!("srv/part{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..40 {
            let changed = version > 1 && f % 13 == 0;
            let body: Vec<u8> = (0..(2_000 + 97 * f))
                .map(|i| ((i * 31 + f * 7 + d * 3 + if changed { 1 } else { 0 }) % 251) as u8)
                .collect();
            fs::write(dir.join(format!("file{f:03}")), body).unwrap();
        }
    }
    if let Some(name) = extra {
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/who"), name.repeat(500)).unwrap();
    }
}

fn pack(src: &Path, dest: &str) -> Command {
    let mut c = chunkah();
    c.arg("pack").arg(src).args([
        "-o",
        dest,
        "--source-date-epoch",
        EPOCH,
        "--max-layers",
        "8",
    ]);
    c
}

fn apply(from: &str, source: &str, dest: &str) -> Command {
    let mut c = chunkah();
    c.args(["apply", "--from", from, "--source", source, "-o", dest]);
    c
}

/// Checks that `tag` is in the layout at `dir` with every blob it needs.
fn check_layout_tag(dir: &Path, tag: &str, round: usize) {
    let index = read_json(&dir.join("index.json"));
    let desc = tagged(&index, tag).unwrap_or_else(|| panic!("round {round}: tag {tag} lost"));
    let blob = |digest: &serde_json::Value| -> Vec<u8> {
        let d = digest.as_str().unwrap();
        let path = dir.join("blobs/sha256").join(&d[7..]);
        let bytes =
            fs::read(&path).unwrap_or_else(|e| panic!("round {round}: {tag}: {d} missing: {e}"));
        let got = format!("sha256:{:x}", Sha256::digest(&bytes));
        assert_eq!(got, d, "round {round}: {tag}: blob damaged");
        bytes
    };
    let manifest: serde_json::Value = serde_json::from_slice(&blob(&desc["digest"])).unwrap();
    blob(&manifest["config"]["digest"]);
    for layer in manifest["layers"].as_array().unwrap() {
        blob(&layer["digest"]);
    }
    skopeo_inspect(&format!("oci:{}:{tag}", dir.display()));
}

fn skopeo_inspect(reference: &str) {
    let skopeo = require_tool("skopeo", "skopeo");
    let out = run(Command::new(skopeo).args(["inspect", reference]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["Layers"].as_array().is_some_and(|l| !l.is_empty()));
}

/// A copy of the layout `src` in which a frame of the last blob apply
/// rebuilds from ranges (going from `old` to `new`) is damaged: an apply
/// from it writes the blobs before that one, then fails.
fn damaged_copy(src: &Path, old: &str, new: &str, dest: &Path) {
    run(Command::new("cp").arg("-a").arg(src).arg(dest));
    let plan_file = dest.with_extension("plan.json");
    run(chunkah().args([
        "diff",
        &format!("oci:{}:{old}", src.display()),
        &format!("oci:{}:{new}", src.display()),
        "--plan",
        plan_file.to_str().unwrap(),
    ]));
    let plan = read_json(&plan_file);
    let rebuilt: Vec<&serde_json::Value> = plan["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["action"] == "rebuild" && !b["ranges"].as_array().unwrap().is_empty())
        .collect();
    assert!(
        rebuilt.len() >= 2,
        "the plan rebuilds several blobs: {plan}"
    );
    let last = rebuilt.last().unwrap();
    let range = &last["ranges"][0];
    let (start, end) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
    let digest = last["digest"].as_str().unwrap();
    let path = dest.join("blobs/sha256").join(&digest[7..]);
    let mut bytes = fs::read(&path).unwrap();
    bytes[((start + end) / 2) as usize] ^= 0x40;
    fs::write(&path, bytes).unwrap();
}

struct Job {
    what: String,
    child: Child,
    /// Where the image lands, if the run is meant to succeed.
    expect: Option<(PathBuf, String, bool)>,
}

fn spawn(what: String, mut cmd: Command, expect: Option<(PathBuf, String, bool)>) -> Job {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Job {
        what,
        child,
        expect,
    }
}

#[test]
fn many_writers_into_one_layout_lose_no_tag_and_no_blob() {
    let tmp = TempDir::new("concurrency");
    let trees = tmp.path().join("trees");
    let v1 = trees.join("v1");
    let v2 = trees.join("v2");
    make_tree(&v1, 1, None);
    make_tree(&v2, 2, None);
    let packs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let t = trees.join(format!("p{i}"));
            make_tree(&t, 1 + i % 2, Some(&format!("pack {i}")));
            t
        })
        .collect();
    // The images applies go between, and a copy with a damaged frame.
    let src = tmp.path().join("src");
    let src_ref = |tag: &str| format!("oci:{}:{tag}", src.display());
    run(&mut pack(&v1, &src_ref("v1")));
    run(&mut pack(&v2, &src_ref("v2")));
    let bad = tmp.path().join("bad");
    damaged_copy(&src, "v1", "v2", &bad);
    let bad_ref = format!("oci:{}:v2", bad.display());

    for round in 0..ROUNDS {
        let existing = round % 2 == 1;
        let layout = tmp.path().join(format!("layout-{round}"));
        let archive = tmp.path().join(format!("archive-{round}.tar"));
        let at = |tag: &str| format!("oci:{}:{tag}", layout.display());
        let from = if existing {
            // OLD is held in the layout being written, as a client has it.
            run(&mut pack(&v1, &at("base")));
            run(&mut pack(
                &v1,
                &format!("oci-archive:{}:base", archive.display()),
            ));
            at("base")
        } else {
            src_ref("v1")
        };
        let mut jobs = Vec::new();
        for (i, tree) in packs.iter().enumerate() {
            let tag = format!("p{i}");
            jobs.push(spawn(
                format!("pack {tag}"),
                pack(tree, &at(&tag)),
                Some((layout.clone(), tag, false)),
            ));
        }
        for i in 0..2 {
            let tag = format!("ap{i}");
            jobs.push(spawn(
                format!("apply {tag}"),
                apply(&from, &src_ref("v2"), &at(&tag)),
                Some((layout.clone(), tag, false)),
            ));
        }
        jobs.push(spawn(
            "apply from a damaged source".into(),
            apply(&from, &bad_ref, &at("bad")),
            None,
        ));
        for (i, tree) in packs.iter().take(2).enumerate() {
            let tag = format!("ar{i}");
            jobs.push(spawn(
                format!("pack into the archive {tag}"),
                pack(tree, &format!("oci-archive:{}:{tag}", archive.display())),
                Some((archive.clone(), tag, true)),
            ));
        }
        assert_eq!(jobs.len(), 8);
        let mut expected = Vec::new();
        for job in jobs {
            let out = job.child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            match job.expect {
                Some(e) => {
                    assert!(
                        out.status.success(),
                        "round {round}: {} failed: {err}",
                        job.what
                    );
                    expected.push(e);
                }
                None => {
                    assert_eq!(
                        out.status.code(),
                        Some(1),
                        "round {round}: {}: {err}",
                        job.what
                    );
                    assert!(err.contains("frame") || err.contains("decompress"), "{err}");
                }
            }
        }
        if existing {
            expected.push((layout.clone(), "base".into(), false));
            expected.push((archive.clone(), "base".into(), true));
        }
        for (place, tag, is_archive) in &expected {
            match is_archive {
                false => check_layout_tag(place, tag, round),
                true => skopeo_inspect(&format!("oci-archive:{}:{tag}", place.display())),
            }
        }
        // Nothing else is tagged; no temporary file or lock is left but the
        // layout's own lock files.
        let index = read_json(&layout.join("index.json"));
        assert!(tagged(&index, "bad").is_none());
        let n_layout = expected.iter().filter(|e| !e.2).count();
        assert_eq!(index["manifests"].as_array().unwrap().len(), n_layout);
        let leftovers = dot_names(&layout.join("blobs/sha256"));
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
        let beside = dot_names(tmp.path());
        assert!(beside.is_empty(), "round {round}: {beside:?}");
        let _ = fs::remove_dir_all(&layout);
        let _ = fs::remove_file(&archive);
    }
}
