//! The `chunkah` binary against a real registry (Debian's `docker-registry`)
//! and skopeo: the series pushed and pulled partially, registry images as
//! pack sources, priors and old images, `apply` from a damaged, stopped or
//! dying registry publishing nothing, and binary deltas pushed beside an
//! image, one at a time and concurrently.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use chunkah::digest::Digest;
use chunkah::oci::types::{host_architecture, Manifest};
use chunkah::registry::{Client, ClientConfig, Target};
use chunkah::store::ImageReader;
use chunkah::store::ImageRef;
use common::registry::{skopeo, Registry};
use common::{chunkah, delta_tree, require_tool, run, TempDir};

/// The series through a registry with the chunkah binary: `pack -o docker://`
/// pushes, skopeo reads back the same digests, `diff` and `apply` read the
/// registry, apply's bytes on the wire are within 2% of the plan's chunk
/// level (plus response headers), and 16 concurrent partial pulls all verify.
#[test]
fn series_steps_push_and_pull_partially_through_the_registry() {
    let series = std::path::PathBuf::from(std::env::var_os("CHUNKAH_SERIES_DIR").unwrap_or_else(
        || panic!("set CHUNKAH_SERIES_DIR to the output of ../shared/data/make-rootfs-series.sh (scripts/test.sh does)"),
    ));
    let registry = Registry::start("series-registry");
    let tmp = TempDir::new("series-pull");
    let remote = |v: &str| format!("docker://{}/series:{v}", registry.host());
    let local = |v: &str| format!("oci:{}:{v}", tmp.path().join("local").display());
    let versions = ["v1", "v2", "v3"];
    for (i, v) in versions.iter().enumerate() {
        // The same image, locally (a client's copy) and pushed.
        let mut common_args: Vec<String> = vec![
            "--source-date-epoch".into(),
            "1700000000".into(),
            "--quiet".into(),
        ];
        if i > 0 {
            common_args.push("--prior".into());
            common_args.push(local(versions[i - 1]));
        }
        let src = series.join(v);
        run(chunkah()
            .arg("pack")
            .arg(&src)
            .args(["-o", &local(v)])
            .args(&common_args));
        run(chunkah()
            .arg("pack")
            .arg(&src)
            .args(["-o", &remote(v), "--tls-verify=false"])
            .args(&common_args));
        // skopeo reads it back, digest for digest.
        let copy = tmp.path().join(format!("copy-{v}"));
        run(Command::new(require_tool("skopeo", "skopeo"))
            .args(["copy", "--src-tls-verify=false", "--preserve-digests"])
            .arg(remote(v))
            .arg(format!("oci:{}:{v}", copy.display())));
        let digest_of = |layout: &Path| {
            let index: serde_json::Value =
                serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
            index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == *v)
                .unwrap()["digest"]
                .clone()
        };
        assert_eq!(
            digest_of(&copy),
            digest_of(&tmp.path().join("local")),
            "{v}"
        );
    }
    // One range per request, then up to 8 in a multi-range request.
    let mut multipart = 0;
    for (pair, per) in versions.windows(2).flat_map(|p| [(p, "1"), (p, "8")]) {
        let (old, new) = (pair[0], pair[1]);
        let diff: serde_json::Value = serde_json::from_slice(
            &run(chunkah().args([
                "diff",
                &local(old),
                &remote(new),
                "--json",
                "--tls-verify=false",
                "--ranges-per-request",
                per,
            ]))
            .stdout,
        )
        .unwrap();
        let chunk = diff["levels"]["chunk"]["bytes"].as_u64().unwrap();
        let dest = tmp.path().join(format!("applied-{new}-{per}"));
        let applied: serde_json::Value = serde_json::from_slice(
            &run(chunkah().args([
                "apply",
                "--from",
                &local(old),
                "--source",
                &remote(new),
                "--tls-verify=false",
                "-o",
                &format!("oci:{}:{new}", dest.display()),
                "--json",
                "--ranges-per-request",
                per,
            ]))
            .stdout,
        )
        .unwrap();
        assert_eq!(
            applied["bytesRead"].as_u64().unwrap(),
            chunk,
            "{old}->{new}"
        );
        let wire = &applied["wire"];
        let body = wire["bytesReceived"].as_u64().unwrap();
        let headers = wire["headerBytesReceived"].as_u64().unwrap();
        assert!(
            body <= chunk + chunk / 50 && body >= chunk,
            "{old}->{new}: {body} bytes on the wire for a plan of {chunk}"
        );
        assert!(
            headers < 1024 * wire["requests"].as_u64().unwrap(),
            "{wire}"
        );
        // One request more: asking for a binary delta (a 404: none).
        assert_eq!(
            wire["requests"].as_u64().unwrap(),
            diff["levels"]["chunk"]["requests"].as_u64().unwrap() + 1,
            "{wire}"
        );
        assert_eq!(wire["fullBlobFallbacks"], 0, "{wire}");
        assert_eq!(wire["rangeFallbacks"], 0, "{wire}");
        multipart += wire["multipartResponses"].as_u64().unwrap();
    }
    // Some blob had several ranges: they came in multipart responses.
    assert!(multipart > 0);
    // 16 concurrent partial pulls of v3 from v2, each verified.
    let results: Vec<std::process::Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let dest = tmp.path().join(format!("load-{i}"));
                let (from, source) = (local("v2"), remote("v3"));
                s.spawn(move || {
                    chunkah()
                        .args(["apply", "--from", &from, "--source", &source])
                        .args(["--tls-verify=false", "-o"])
                        .arg(format!("oci:{}:v3", dest.display()))
                        .output()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in results.iter().enumerate() {
        assert!(
            out.status.success(),
            "pull {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `apply` from a registry that serves damaged bytes, or that is gone: a
/// clear error, and no image at the destination.
#[test]
fn apply_from_a_broken_registry_publishes_nothing() {
    let mut registry = Registry::start("apply-faults");
    let tmp = TempDir::new("apply-faults");
    let local = |v: &str| format!("oci:{}:{v}", tmp.path().join("local").display());
    let host = registry.host();
    let remote = |v: &str| format!("docker://{host}/faults:{v}");
    // Two versions of a tree: one large file changes in its middle.
    for v in ["a", "b"] {
        let src = tmp.path().join(format!("src-{v}"));
        std::fs::create_dir_all(&src).unwrap();
        let mut big = chunkah::chunker::golden_input(3, 2 << 20);
        if v == "b" {
            big[1 << 20..(1 << 20) + 64].fill(7);
        }
        std::fs::write(src.join("big"), big).unwrap();
        for dest in [local(v), remote(v)] {
            run(chunkah()
                .arg("pack")
                .arg(&src)
                .args(["-o", &dest, "--tls-verify=false", "--quiet"])
                .args(["--source-date-epoch", "1700000000", "--max-layers", "1"]));
        }
    }
    let dest = tmp.path().join("dest");
    let apply = || {
        chunkah()
            .args(["apply", "--from", &local("a"), "--source", &remote("b")])
            .args(["--tls-verify=false", "-o"])
            .arg(format!("oci:{}:b", dest.display()))
            .output()
            .unwrap()
    };
    // Damage the new layer in the registry's storage: a frame fails its digest.
    let manifest = registry
        .client("faults")
        .get_manifest(&Target::Tag("b".into()))
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let layer = Digest::parse(m["layers"][0]["digest"].as_str().unwrap()).unwrap();
    let data = registry.blob_data(&layer);
    let good = std::fs::read(&data).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    for b in &mut bad[middle - 2000..middle + 2000] {
        *b ^= 0x5a;
    }
    std::fs::write(&data, &bad).unwrap();
    let out = apply();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("frame"), "{err}");
    assert!(!dest.join("index.json").exists());
    // Mended, then the registry stops: the error says so, nothing is published.
    std::fs::write(&data, &good).unwrap();
    registry.stop();
    let out = apply();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("attempt"), "{err}");
    assert!(!dest.join("index.json").exists());
}

/// The manifest digest `oci:LAYOUT:TAG` points at.
fn tagged_digest(reference: &str) -> Digest {
    let reader = ImageReader::open(&ImageRef::parse(reference).unwrap()).unwrap();
    reader.manifest(host_architecture()).unwrap().0.digest
}

#[test]
fn registry_images_are_pack_sources_priors_and_old_images() {
    let registry = Registry::start("sources");
    let tmp = TempDir::new("reg-sources");
    let layout = |name: &str, v: &str| format!("oci:{}:{v}", tmp.path().join(name).display());
    let host = registry.host();
    let remote = |repo: &str, v: &str| format!("docker://{host}/{repo}:{v}");
    let epoch = [
        "--source-date-epoch",
        "1700000000",
        "--tls-verify=false",
        "--quiet",
    ];
    // Two versions of a tree: a small file changes, a large one in its middle.
    for v in ["a", "b"] {
        let src = tmp.path().join(format!("src-{v}"));
        std::fs::create_dir_all(src.join("etc")).unwrap();
        let mut big = chunkah::chunker::golden_input(5, 3 << 20);
        if v == "b" {
            big[3 << 19..(3 << 19) + 64].fill(9);
        }
        std::fs::write(src.join("big"), big).unwrap();
        std::fs::write(src.join("etc/version"), v).unwrap();
        for dest in [layout("local", v), remote("src", v)] {
            run(chunkah()
                .arg("pack")
                .arg(&src)
                .args(["-o", &dest])
                .args(epoch));
        }
    }

    // Rechunking from the registry gives what rechunking the same image from
    // a layout gives; the layers are downloaded whole and checked.
    for v in ["a", "b"] {
        run(chunkah()
            .args(["pack", &layout("local", v), "-o", &layout("re-local", v)])
            .args(epoch));
        run(chunkah()
            .args(["pack", &remote("src", v), "-o", &layout("re-remote", v)])
            .args(epoch));
        assert_eq!(
            tagged_digest(&layout("re-remote", v)),
            tagged_digest(&layout("re-local", v))
        );
    }
    // A skopeo-pushed gzip image is a source too: same layers as its original.
    run(Command::new(skopeo()).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-compress-format",
        "gzip",
        &layout("local", "a"),
        &remote("gz", "a"),
    ]));
    run(chunkah()
        .args(["pack", &remote("gz", "a"), "-o", &layout("re-gz", "a")])
        .args(epoch));
    let diff_ids = |r: &str| {
        let reader = ImageReader::open(&ImageRef::parse(r).unwrap()).unwrap();
        reader
            .image(host_architecture())
            .unwrap()
            .config
            .rootfs
            .diff_ids
    };
    assert_eq!(
        diff_ids(&layout("re-gz", "a")),
        diff_ids(&layout("re-local", "a"))
    );

    // --prior from the registry keeps the same grouping as from a layout.
    let src_b = tmp.path().join("src-b");
    for (prior, out) in [
        (layout("local", "a"), "prior-local"),
        (remote("src", "a"), "prior-remote"),
    ] {
        run(chunkah()
            .arg("pack")
            .arg(&src_b)
            .args(["--prior", &prior, "-o", &layout(out, "b")])
            .args(epoch));
    }
    assert_eq!(
        tagged_digest(&layout("prior-remote", "b")),
        tagged_digest(&layout("prior-local", "b"))
    );

    // apply (as `pull`) with OLD in the registry too: NEW rebuilt digest for
    // digest.
    let out = run(chunkah()
        .args([
            "pull",
            "--from",
            &remote("src", "a"),
            "--source",
            &remote("src", "b"),
        ])
        .args([
            "-o",
            &layout("applied", "b"),
            "--tls-verify=false",
            "--json",
        ]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = tagged_digest(&layout("local", "b"));
    assert_eq!(report["manifest"], expected.to_string());
    assert_eq!(tagged_digest(&layout("applied", "b")), expected);

    // A tag the registry lacks: exit 1, the error names it, nothing written.
    let out = chunkah()
        .args(["pack", &remote("src", "absent"), "-o", &layout("none", "x")])
        .args(epoch)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("absent") && err.contains("404"), "{err}");
    assert!(!tmp.path().join("none").exists(), "{err}");
    // A host that does not resolve: the same, after the retries.
    let out = chunkah()
        .args([
            "pack",
            "docker://no-such-host.invalid/r:t",
            "-o",
            &layout("none", "x"),
        ])
        .args(epoch)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no-such-host.invalid") && err.contains("attempts"),
        "{err}"
    );
    assert!(!tmp.path().join("none").exists(), "{err}");
}

/// A TCP proxy to `target` that forwards until `budget` bytes have come
/// back from it, then cuts every connection and stops listening: a registry
/// that goes away in the middle of a transfer. Returns its address.
fn dying_proxy(target: String, budget: u64) -> String {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            if dead.load(Ordering::SeqCst) {
                // Closing the listener: later connections are refused.
                break;
            }
            let Ok(upstream) = TcpStream::connect(&target) else {
                break;
            };
            let (mut c_read, mut u_write) =
                (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut u_write);
            });
            let (sent, dead) = (sent.clone(), dead.clone());
            std::thread::spawn(move || {
                let (mut upstream, mut client) = (upstream, client);
                let mut buf = [0u8; 4096];
                loop {
                    let n = match upstream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let before = sent.fetch_add(n as u64, Ordering::SeqCst);
                    if dead.load(Ordering::SeqCst) || before + n as u64 > budget {
                        dead.store(true, Ordering::SeqCst);
                        break;
                    }
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
                let _ = upstream.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    host
}

#[test]
fn apply_through_a_registry_that_dies_mid_pull_publishes_nothing() {
    let registry = Registry::start("apply-dies");
    let tmp = TempDir::new("apply-dies");
    // Each version in a layout of its own: `local-a` holds OLD only.
    let local = |v: &str| {
        format!(
            "oci:{}:{v}",
            tmp.path().join(format!("local-{v}")).display()
        )
    };
    let direct = |v: &str| format!("docker://{}/dies:{v}", registry.host());
    // A large file changed in eight places: eight frames to fetch.
    for v in ["a", "b"] {
        let src = tmp.path().join(format!("src-{v}"));
        std::fs::create_dir_all(&src).unwrap();
        let mut big = chunkah::chunker::golden_input(7, 8 << 20);
        if v == "b" {
            for i in 0..8 {
                let at = (i << 20) + (1 << 19);
                big[at..at + 64].fill(3);
            }
        }
        std::fs::write(src.join("big"), big).unwrap();
        for dest in [local(v), direct(v)] {
            run(chunkah()
                .arg("pack")
                .arg(&src)
                .args(["-o", &dest, "--tls-verify=false", "--quiet"])
                .args(["--source-date-epoch", "1700000000", "--max-layers", "1"]));
        }
    }
    let plan = run(chunkah().args([
        "diff",
        &local("a"),
        &direct("b"),
        "--tls-verify=false",
        "--json",
    ]));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let chunk_bytes = plan["levels"]["chunk"]["bytes"].as_u64().unwrap();
    assert!(chunk_bytes > 8 * 100_000, "{plan}");
    // The proxy dies once about half the planned bytes have gone through;
    // into a new layout, and into the layout holding OLD (`local`).
    let local_dir = tmp.path().join("local-a");
    let listing = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        (
            names,
            std::fs::read_to_string(dir.join("index.json")).unwrap(),
        )
    };
    let before = listing(&local_dir);
    let dest = tmp.path().join("dest");
    for target in [
        format!("oci:{}:b", dest.display()),
        format!("oci:{}:b", local_dir.display()),
    ] {
        let proxy = dying_proxy(registry.host(), chunk_bytes / 2);
        let out = chunkah()
            .args(["apply", "--from", &local("a")])
            .args(["--source", &format!("docker://{proxy}/dies:b")])
            .args(["--tls-verify=false", "--parallel", "1", "-o", &target])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&proxy) && err.contains("attempt"), "{err}");
        assert!(err.contains("/blobs/"), "not in a blob transfer: {err}");
        // A layout apply created is gone again; the other one is as it was.
        assert!(!dest.exists(), "{err}");
        assert_eq!(listing(&local_dir), before, "{err}");
    }
    // The same apply straight from the registry succeeds.
    run(chunkah()
        .args(["apply", "--from", &local("a"), "--source", &direct("b")])
        .args(["--tls-verify=false", "-o"])
        .arg(format!("oci:{}:b", dest.display())));
    assert!(dest.join("index.json").exists());
}

/// Binary deltas through the registry: pushed beside the image (the image
/// and its tags undisturbed, skopeo still copies it), found by the
/// referrers tag schema, used by `pull`; each client takes the delta from
/// its own version; an image with no delta pulls by ranges; a corrupted
/// delta falls back to ranges with a correct image.
#[test]
fn deltas_pushed_beside_the_image_are_used_by_pull() {
    let registry = Registry::start("reg-delta");
    let tmp = TempDir::new("reg-delta");
    let local = |v: u8| format!("oci:{}:v{v}", tmp.path().join("local").display());
    let remote = |v: u8| format!("docker://{}/delta:v{v}", registry.host());
    let repository = format!("docker://{}/delta", registry.host());
    for v in [1, 2, 3] {
        let src = tmp.path().join(format!("src-{v}"));
        delta_tree(&src, v);
        for dest in [local(v), remote(v)] {
            run(chunkah()
                .arg("pack")
                .arg(&src)
                .args(["-o", &dest, "--quiet", "--max-layers", "2"])
                .args(["--source-date-epoch", "1700000000", "--tls-verify=false"]));
        }
    }
    let remote_digest = |reference: &str| {
        let store = chunkah::store::StoreConfig {
            registry: ClientConfig {
                tls_verify: false,
                ..ClientConfig::default()
            },
            scratch_dir: None,
        };
        let reader = ImageReader::open_with(&ImageRef::parse(reference).unwrap(), &store).unwrap();
        reader.manifest(host_architecture()).unwrap().0.digest
    };
    let v3 = remote_digest(&remote(3));
    let mut deltas = Vec::new();
    for old in [1, 2] {
        let out = run(chunkah().args(["delta", &local(old), &remote(3)]).args([
            "--json",
            "--quiet",
            "--tls-verify=false",
        ]));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        deltas.push(report["manifest"].as_str().unwrap().to_string());
    }
    // The image and its tag are as they were; the referrers tag is there.
    assert_eq!(remote_digest(&remote(3)), v3);
    let tags = run(Command::new(skopeo())
        .args(["list-tags", "--tls-verify=false"])
        .arg(&repository));
    let tags = String::from_utf8_lossy(&tags.stdout).into_owned();
    assert!(tags.contains(&format!("sha256-{}", v3.hex())), "{tags}");
    let copy = tmp.path().join("copy");
    run(Command::new(skopeo())
        .args(["copy", "--src-tls-verify=false", "--preserve-digests"])
        .arg(remote(3))
        .arg(format!("oci:{}:v3", copy.display())));
    let pull = |old: u8, new: u8, dest: &Path| -> serde_json::Value {
        let out = run(chunkah()
            .args(["pull", "--from", &local(old), "--source", &remote(new)])
            .args(["--tls-verify=false", "--json", "-o"])
            .arg(format!("oci:{}:new", dest.display())));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let digest_in = |dest: &Path| tagged_digest(&format!("oci:{}:new", dest.display()));
    for (old, delta) in [1, 2].into_iter().zip(&deltas) {
        let dest = tmp.path().join(format!("pulled-{old}"));
        let diff: serde_json::Value = serde_json::from_slice(
            &run(chunkah().args([
                "diff",
                &local(old),
                &remote(3),
                "--json",
                "--tls-verify=false",
            ]))
            .stdout,
        )
        .unwrap();
        let pulled = pull(old, 3, &dest);
        assert_eq!(pulled["delta"]["manifest"], delta.as_str(), "{pulled}");
        assert_eq!(pulled["fallbacks"].as_array().unwrap().len(), 0);
        assert_eq!(pulled["bytesRead"], diff["levels"]["delta"]["bytes"]);
        assert!(
            diff["levels"]["delta"]["bytes"].as_u64().unwrap() * 3
                < diff["levels"]["chunk"]["bytes"].as_u64().unwrap(),
            "{diff}"
        );
        assert_eq!(
            pulled["wire"]["requests"],
            diff["levels"]["delta"]["requests"]
        );
        assert_eq!(digest_in(&dest), v3);
    }
    // v2 has no delta: ranges.
    let dest = tmp.path().join("pulled-plain");
    let pulled = pull(1, 2, &dest);
    assert!(pulled.get("delta").is_none(), "{pulled}");
    assert_eq!(digest_in(&dest), remote_digest(&remote(2)));
    // The delta from v2, damaged in the registry's storage: ranges for its
    // parts, the right image.
    let artifact = plain_http_client(&registry, "delta")
        .get_manifest(&Target::Digest(Digest::parse(&deltas[1]).unwrap()))
        .unwrap();
    let artifact: Manifest = serde_json::from_slice(&artifact.bytes).unwrap();
    let data = registry.blob_data(&artifact.layers[0].digest);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[10] ^= 0x55;
    std::fs::write(&data, &bytes).unwrap();
    let dest = tmp.path().join("pulled-bad");
    let pulled = pull(2, 3, &dest);
    assert!(
        !pulled["fallbacks"].as_array().unwrap().is_empty(),
        "{pulled}"
    );
    assert_eq!(digest_in(&dest), v3);
}

/// A client of `repository` in the test registry (plain HTTP).
fn plain_http_client(registry: &Registry, repository: &str) -> Client {
    let config = ClientConfig {
        tls_verify: false,
        ..ClientConfig::default()
    };
    Client::new(&registry.host(), repository, config).unwrap()
}

/// Deltas of one image from several bases pushed at the same time: the
/// referrers tag schema has no atomic update, and each run must still find
/// its delta listed, whatever order the runs read and write the index in.
#[test]
fn concurrent_delta_pushes_keep_every_referrer() {
    const BASES: u8 = 4;
    let registry = Registry::start("reg-delta-many");
    let tmp = TempDir::new("reg-delta-many");
    let local = |v: u8| format!("oci:{}:v{v}", tmp.path().join("local").display());
    let target = format!("docker://{}/many:new", registry.host());
    for v in 1..=BASES + 1 {
        let src = tmp.path().join(format!("src-{v}"));
        delta_tree(&src, v);
        let dest = match v {
            v if v <= BASES => local(v),
            _ => target.clone(),
        };
        run(chunkah()
            .arg("pack")
            .arg(&src)
            .args(["-o", &dest, "--quiet", "--max-layers", "2"])
            .args(["--source-date-epoch", "1700000000", "--tls-verify=false"]));
    }
    let client = plain_http_client(&registry, "many");
    let subject = client
        .get_manifest(&Target::Tag("new".into()))
        .unwrap()
        .digest;
    for round in 0..3 {
        // Base 1 twice, at two levels (two different deltas from one base):
        // one of them is listed, and neither run fails.
        let runs: Vec<_> = (1..=BASES)
            .map(|v| (v, "3"))
            .chain([(1, "4")])
            .map(|(v, level)| {
                chunkah()
                    .args(["delta", &local(v), &target, "--json", "--quiet"])
                    .args(["--tls-verify=false", "--level", level])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut made = Vec::new();
        for child in runs {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            made.push(report["manifest"].as_str().unwrap().to_string());
        }
        let index = client
            .get_manifest(&Target::Tag(format!("sha256-{}", subject.hex())))
            .unwrap();
        let index: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
        let listed: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        // Each base's delta once: every run's, none twice, one of the two
        // from base 1.
        assert_eq!(listed.len(), BASES as usize, "round {round}: {index}");
        for m in &made[1..BASES as usize] {
            assert!(
                listed.contains(&m.as_str()),
                "round {round}: {m} lost: {index}"
            );
        }
        let (first, second) = (&made[0], &made[BASES as usize]);
        assert_ne!(first, second);
        assert!(
            listed.contains(&first.as_str()) != listed.contains(&second.as_str()),
            "round {round}: {index}"
        );
    }
}
