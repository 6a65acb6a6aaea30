//! What every job takes from its context: the architecture images are read
//! for (an amd64 machine diffs and applies arm64 images of a multi-arch
//! index), the cancel flag (a set flag stops a job, publishing nothing) and
//! the events it reports.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

use chunkah::jobs::{apply, diff, report, ApplyJob, DiffJob, Event, Input, JobContext, ReportJob};
use chunkah::store::{ImageRef, StoreConfig};
use chunkah::Digest;
use common::{chunkah, TempDir};
use serde_json::{json, Value};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-rootfs.tar");
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Runs `cmd`, which must succeed; its stdout as JSON.
fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().expect("running chunkah");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// The layout's `index.json`.
fn layout_index(layout: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

/// The descriptor `index.json` lists under `tag`.
fn tagged(layout: &Path, tag: &str) -> Value {
    layout_index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {}", layout.display()))
        .clone()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// Packs the sample tree for `arch` into `layout` under `tag`, in at most
/// `max_layers` layers; the manifest digest.
fn pack_for(layout: &Path, tag: &str, arch: &str, max_layers: &str) -> String {
    let report = json_of(chunkah().args([
        "pack",
        &format!("tar:{SAMPLE}"),
        "-o",
        &format!("oci:{}:{tag}", layout.display()),
        "--arch",
        arch,
        "--max-layers",
        max_layers,
        "--source-date-epoch",
        "1700000000",
        "--json",
    ]));
    report["manifest"].as_str().unwrap().to_string()
}

/// Tags under `tag` an image index of the images tagged `parts` (tag,
/// architecture), as a multi-arch image is published.
fn tag_index(layout: &Path, tag: &str, parts: &[(&str, &str)]) {
    let manifests: Vec<Value> = parts
        .iter()
        .map(|(t, arch)| {
            let d = tagged(layout, t);
            json!({
                "mediaType": d["mediaType"],
                "digest": d["digest"],
                "size": d["size"],
                "platform": { "architecture": arch, "os": "linux" },
            })
        })
        .collect();
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": manifests,
    }))
    .unwrap();
    let digest = Digest::of(&body).to_string();
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
        &body,
    )
    .unwrap();
    let mut index = layout_index(layout);
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": INDEX_MEDIA_TYPE,
        "digest": digest,
        "size": body.len(),
        "annotations": { "org.opencontainers.image.ref.name": tag },
    }));
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

/// Two versions of a two-architecture image in one layout, tagged `v1` and
/// `v2` (indexes); the arm64 and amd64 manifest digests of v2.
fn multi_arch_series(layout: &Path) -> (String, String) {
    pack_for(layout, "v1-arm64", "arm64", "64");
    pack_for(layout, "v1-amd64", "amd64", "64");
    // v2: the same tree regrouped into two layers.
    let v2_arm64 = pack_for(layout, "v2-arm64", "aarch64", "2");
    let v2_amd64 = pack_for(layout, "v2-amd64", "x86_64", "2");
    assert_ne!(v2_arm64, v2_amd64, "the configs name their architectures");
    tag_index(
        layout,
        "v1",
        &[("v1-amd64", "amd64"), ("v1-arm64", "arm64")],
    );
    tag_index(
        layout,
        "v2",
        &[("v2-amd64", "amd64"), ("v2-arm64", "arm64")],
    );
    (v2_arm64, v2_amd64)
}

#[test]
fn diff_and_apply_read_the_image_of_the_architecture_asked_for() {
    let dir = TempDir::new("jobs-arch");
    let layout = dir.path().join("images");
    let (v2_arm64, v2_amd64) = multi_arch_series(&layout);
    let images = |tag: &str| format!("oci:{}:{tag}", layout.display());

    for (arch, want) in [("arm64", &v2_arm64), ("amd64", &v2_amd64)] {
        let diff = json_of(
            chunkah().args([
                "diff",
                &images("v1"),
                &images("v2"),
                "--arch",
                arch,
                "--json",
                "--plan",
                dir.path()
                    .join(format!("plan-{arch}.json"))
                    .to_str()
                    .unwrap(),
            ]),
        );
        let plan: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(format!("plan-{arch}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(plan["manifest"]["digest"], want.as_str(), "{arch}");
        assert_eq!(diff["same"], false);

        let client = dir.path().join(format!("client-{arch}"));
        let applied = json_of(chunkah().args([
            "apply",
            "--from",
            &images("v1"),
            "--source",
            &images("v2"),
            "-o",
            &format!("oci:{}:v2", client.display()),
            "--arch",
            arch,
            "--json",
        ]));
        assert_eq!(applied["manifest"], want.as_str(), "{arch}");
        assert_eq!(applied["bytesRead"], diff["levels"]["chunk"]["bytes"]);
        // The rebuilt image is that architecture's, blob for blob.
        let d = tagged(&client, "v2");
        assert_eq!(d["digest"], want.as_str());
        let manifest: Value = serde_json::from_slice(&blob(&client, want)).unwrap();
        let config: Value = serde_json::from_slice(&blob(
            &client,
            manifest["config"]["digest"].as_str().unwrap(),
        ))
        .unwrap();
        assert_eq!(config["architecture"], arch);
    }

    // An architecture the index lacks is an error naming it.
    let out = chunkah()
        .args(["diff", &images("v1"), &images("v2"), "--arch", "riscv64"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("linux/riscv64"), "{err}");
}

fn context() -> JobContext<'static> {
    JobContext {
        store: StoreConfig {
            scratch_dir: Some(std::env::temp_dir()),
            ..StoreConfig::default()
        },
        ..JobContext::default()
    }
}

#[test]
fn the_library_takes_the_architecture_from_the_context() {
    let dir = TempDir::new("jobs-arch-lib");
    let layout = dir.path().join("images");
    let (v2_arm64, _) = multi_arch_series(&layout);
    let image = |tag: &str| ImageRef::Layout {
        dir: layout.clone(),
        tag: Some(tag.into()),
    };
    let ctx = JobContext {
        architecture: "arm64".into(),
        ..context()
    };
    let report = diff(
        &DiffJob {
            old: Input::Image(image("v1")),
            new: Input::Image(image("v2")),
            options: Default::default(),
            source_date_epoch: None,
            packages: false,
        },
        &ctx,
    )
    .unwrap();
    assert_eq!(report.plan.unwrap().manifest.digest.to_string(), v2_arm64);
    // A tarball is a pack source, not a diff input: said, not guessed.
    let tarball = diff(
        &DiffJob {
            old: Input::Tar(SAMPLE.into()),
            new: Input::Image(image("v2")),
            options: Default::default(),
            source_date_epoch: None,
            packages: false,
        },
        &ctx,
    )
    .unwrap_err();
    assert!(
        matches!(tarball, chunkah::Error::Unsupported { .. }),
        "{tarball}"
    );
    assert!(
        tarball.to_string().contains("sample-rootfs.tar"),
        "{tarball}"
    );
}

#[test]
fn a_set_cancel_flag_stops_apply_and_publishes_nothing() {
    let dir = TempDir::new("jobs-cancel");
    let layout = dir.path().join("images");
    multi_arch_series(&layout);
    let image = |tag: &str| ImageRef::Layout {
        dir: layout.clone(),
        tag: Some(tag.into()),
    };
    let client = dir.path().join("client");
    // Cancelled as soon as the first blob is in place.
    let ctx = context();
    let cancel = ctx.cancel.clone();
    let seen = std::sync::Mutex::new(Vec::new());
    let listen = |e: &Event| {
        seen.lock().unwrap().push(e.clone());
        if let Event::BlobWritten { done: 1, .. } = e {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let job = ApplyJob {
        from: image("v1"),
        source: image("v2"),
        dest: ImageRef::Layout {
            dir: client.clone(),
            tag: Some("v2".into()),
        },
        options: Default::default(),
    };
    let err = apply(&job, &ctx.with_events(&listen)).unwrap_err();
    assert!(matches!(err, chunkah::Error::Cancelled), "{err}");
    let seen = seen.into_inner().unwrap();
    assert!(
        matches!(seen.first(), Some(Event::Opening { .. })),
        "{seen:?}"
    );
    assert!(
        seen.contains(&Event::BlobWritten { done: 1, total: 3 }),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::BlobWritten { done: 2, .. })),
        "{seen:?}"
    );
    // No tag, no blob left behind.
    if client.join("index.json").exists() {
        assert!(layout_index(&client)["manifests"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    let blobs = client.join("blobs/sha256");
    if blobs.exists() {
        assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0);
    }

    // The same job without the flag goes through.
    let outcome = apply(&job, &context()).unwrap();
    assert!(outcome.reference.ends_with(":v2"), "{}", outcome.reference);

    // A report is cancelled between steps; it tells each step planned.
    let ctx = context();
    let steps = std::sync::Mutex::new(Vec::new());
    let listen = |e: &Event| {
        if let Event::StepPlanned { done, total } = e {
            steps.lock().unwrap().push((*done, *total));
        }
    };
    let series = ReportJob {
        images: vec![image("v1"), image("v2"), image("v1")],
        options: Default::default(),
        packages: false,
    };
    let r = report(&series, &ctx.with_events(&listen)).unwrap();
    assert_eq!(r.steps.len(), 2);
    assert_eq!(*steps.lock().unwrap(), vec![(1, 2), (2, 2)]);
    ctx.cancel.store(true, Ordering::Relaxed);
    assert!(matches!(
        report(&series, &ctx),
        Err(chunkah::Error::Cancelled)
    ));
}

#[test]
fn layouts_follow_as_many_nested_indexes_as_registries() {
    let dir = TempDir::new("jobs-nested");
    let layout = dir.path().join("images");
    pack_for(&layout, "amd64", "amd64", "64");
    // chunkah::oci::read::MAX_INDEX_DEPTH indexes, each holding the one before.
    let depth = chunkah::oci::read::MAX_INDEX_DEPTH;
    let mut below = "amd64".to_string();
    for level in 1..=depth + 1 {
        let tag = format!("nested-{level}");
        tag_index(&layout, &tag, &[(&below, "amd64")]);
        below = tag;
    }
    let diff = |tag: &str| {
        chunkah()
            .args([
                "diff",
                &format!("oci:{}:amd64", layout.display()),
                &format!("oci:{}:{tag}", layout.display()),
                "--arch",
                "amd64",
            ])
            .output()
            .unwrap()
    };
    let ok = diff(&format!("nested-{depth}"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let deep = diff(&format!("nested-{}", depth + 1));
    assert_eq!(deep.status.code(), Some(1));
    let err = String::from_utf8_lossy(&deep.stderr);
    assert!(err.contains("nested too deep"), "{err}");
}
