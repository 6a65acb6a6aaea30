//! The registry client (`chunkah::registry::Client`) against a real registry
//! (Debian's `docker-registry`, distribution 2.8) and skopeo: pushes, pulls,
//! ranges, htpasswd authentication, TLS with a private CA, and a registry
//! whose storage is damaged or that has stopped.

// Byte ranges are `Range<u64>`, often one alone.
#![allow(clippy::single_range_in_vec_init)]
mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chunkah::digest::Digest;
use chunkah::oci::types::{host_architecture, Manifest};
use chunkah::registry::{Client, ClientConfig, Credentials, PushOutcome, Target};
use chunkah::store::ImageReader;
use chunkah::store::ImageRef;
use common::registry::{noise, skopeo, Registry};
use common::{chunkah, require_tool, run, TempDir};

/// An OCI layout `DIR:v1` packed by chunkah from the sample root file system.
fn sample_image(dir: &Path) -> PathBuf {
    let layout = dir.join("image");
    run(chunkah().args([
        "pack",
        concat!(
            "tar:",
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/sample-rootfs.tar"
        ),
        "-o",
        &format!("oci:{}:v1", layout.display()),
        "--json",
    ]));
    layout
}

/// The manifest descriptor's digest and media type, the manifest and its bytes.
fn read_layout(layout: &Path) -> (Digest, String, Manifest, Vec<u8>) {
    let reader =
        ImageReader::open(&ImageRef::parse(&format!("oci:{}:v1", layout.display())).unwrap())
            .unwrap();
    let (desc, manifest, bytes) = reader.manifest(host_architecture()).unwrap();
    (desc.digest, desc.media_type, manifest, bytes)
}

fn layout_blob(layout: &Path, digest: &Digest) -> PathBuf {
    layout.join("blobs/sha256").join(digest.hex())
}

/// Pushes the layout's image (blobs, then the manifest as `tag`).
fn push(client: &Client, layout: &Path, tag: &str) -> (Digest, Vec<PushOutcome>) {
    let (_, media_type, manifest, bytes) = read_layout(layout);
    let mut outcomes = Vec::new();
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let mut file = std::fs::File::open(layout_blob(layout, &d.digest)).unwrap();
        outcomes.push(client.put_blob(&d.digest, d.size, &mut file).unwrap());
    }
    let digest = client
        .put_manifest(&Target::Tag(tag.into()), &media_type, &bytes)
        .unwrap();
    (digest, outcomes)
}

#[test]
fn pushes_an_image_skopeo_reads() {
    let registry = Registry::start("reg-push");
    let work = TempDir::new("reg-push-work");
    let layout = sample_image(work.path());
    let (local_digest, _, manifest, _) = read_layout(&layout);
    let client = registry.client("sample");

    let (digest, outcomes) = push(&client, &layout, "v1");
    assert_eq!(digest, local_digest);
    assert_eq!(outcomes.len(), manifest.layers.len() + 1);
    assert!(outcomes.iter().all(|o| *o == PushOutcome::Uploaded));
    let blob_bytes: u64 = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .map(|d| d.size)
        .sum();
    let stats = client.stats();
    assert!(stats.bytes_sent >= blob_bytes, "{stats:?}");
    assert_eq!(stats.retries, 0);

    let reference = format!("docker://{}/sample:v1", registry.host());
    let out = run(Command::new(skopeo()).args(["inspect", "--tls-verify=false", &reference]));
    let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspect["Digest"], local_digest.to_string());

    let copy = work.path().join("copy");
    run(Command::new(skopeo()).args([
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &reference,
        &format!("oci:{}:v1", copy.display()),
    ]));
    assert_eq!(read_layout(&copy).0, local_digest);

    // Pushing again sends no blob.
    let before = client.stats();
    let (digest, outcomes) = push(&client, &layout, "v1");
    assert_eq!(digest, local_digest);
    assert!(outcomes.iter().all(|o| *o == PushOutcome::Skipped));
    let after = client.stats();
    assert_eq!(after.bytes_sent - before.bytes_sent, manifest_len(&layout));
}

fn manifest_len(layout: &Path) -> u64 {
    read_layout(layout).3.len() as u64
}

#[test]
fn reads_an_image_skopeo_pushed() {
    let registry = Registry::start("reg-pull");
    let work = TempDir::new("reg-pull-work");
    let layout = sample_image(work.path());
    let (local_digest, _, manifest, _) = read_layout(&layout);
    run(Command::new(skopeo()).args([
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/other:v1", registry.host()),
    ]));

    let client = registry.client("other");
    let remote = client.get_manifest(&Target::Tag("v1".into())).unwrap();
    assert_eq!(remote.digest, local_digest);
    assert_eq!(remote.media_type, manifest_media_type(&remote.bytes));
    let by_digest = client.get_manifest(&Target::Digest(local_digest)).unwrap();
    assert_eq!(by_digest, remote);
    let parsed: Manifest = serde_json::from_slice(&remote.bytes).unwrap();
    assert_eq!(parsed, manifest);

    let mut received = 0;
    for d in std::iter::once(&parsed.config).chain(&parsed.layers) {
        assert!(client.blob_exists(&d.digest).unwrap());
        let bytes = client.get_blob(&d.digest, d.size).unwrap();
        assert_eq!(
            bytes,
            std::fs::read(layout_blob(&layout, &d.digest)).unwrap()
        );
        let mut streamed = Vec::new();
        client
            .get_blob_to(&d.digest, d.size, &mut streamed)
            .unwrap();
        assert_eq!(streamed, bytes);
        received += 2 * d.size;
    }
    assert!(!client.blob_exists(&Digest::of(b"absent")).unwrap());
    let e = client
        .get_manifest(&Target::Tag("absent".into()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/v2/other/manifests/absent") && e.contains("404"),
        "{e}"
    );
    // A wrong size is caught.
    let config = &parsed.config;
    let e = client
        .get_blob(&config.digest, config.size - 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than"), "{e}");

    let stats = client.stats();
    assert!(
        stats.bytes_received >= received + 2 * remote.size,
        "{stats:?}"
    );
    assert!(
        stats.header_bytes_received > 100 * stats.requests / 2,
        "{stats:?}"
    );
    assert_eq!(stats.bytes_sent, 0);
}

fn manifest_media_type(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v["mediaType"].as_str().unwrap().to_string()
}

#[test]
fn reads_ranges() {
    let registry = Registry::start("reg-ranges");
    let client = registry.client("ranges");
    let data = noise(100_000);
    let size = data.len() as u64;
    let digest = Digest::of(&data);
    assert_eq!(
        client
            .put_blob(&digest, size, &mut Cursor::new(&data))
            .unwrap(),
        PushOutcome::Uploaded
    );
    let slice = |s: u64, e: u64| data[s as usize..e as usize].to_vec();
    let delta = |f: &dyn Fn()| {
        let before = client.stats();
        f();
        let after = client.stats();
        (
            after.requests - before.requests,
            after.single_range_responses - before.single_range_responses,
            after.multipart_responses - before.multipart_responses,
            after.range_fallbacks - before.range_fallbacks + after.full_blob_fallbacks
                - before.full_blob_fallbacks,
        )
    };

    // One range: a 206 with Content-Range.
    let got = delta(&|| {
        assert_eq!(
            client.get_ranges(&digest, size, &[10..20]).unwrap(),
            vec![slice(10, 20)]
        );
    });
    assert_eq!(got, (1, 1, 0, 0));

    // Edges, alone.
    for r in [0..1, size - 1..size, 0..size] {
        assert_eq!(
            client
                .get_ranges(&digest, size, std::slice::from_ref(&r))
                .unwrap(),
            vec![slice(r.start, r.end)]
        );
    }

    // Several ranges, adjacent ones included: distribution 2.8 (Go's
    // http.ServeContent) answers one multipart/byteranges request.
    let ranges = [
        0..1,
        1..2,
        100..200,
        5000..6000,
        50_000..60_000,
        size - 1..size,
    ];
    let want: Vec<Vec<u8>> = ranges.iter().map(|r| slice(r.start, r.end)).collect();
    let before = client.stats();
    let got = delta(&|| assert_eq!(client.get_ranges(&digest, size, &ranges).unwrap(), want));
    assert_eq!(got, (1, 0, 1, 0), "one multipart request, no fallback");
    let wanted: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let received = client.stats().bytes_received - before.bytes_received;
    assert!(
        received > wanted && received < wanted + 200 * ranges.len() as u64,
        "{received} bytes for {wanted}"
    );

    // More ranges than one request may hold are split.
    let small = registry.client_with(
        "ranges",
        ClientConfig {
            max_ranges_per_request: 4,
            ..ClientConfig::default()
        },
    );
    let before = small.stats();
    let many: Vec<std::ops::Range<u64>> = (0..9).map(|i| i * 1000..i * 1000 + 10).collect();
    let got = small.get_ranges(&digest, size, &many).unwrap();
    assert_eq!(
        got,
        many.iter()
            .map(|r| slice(r.start, r.end))
            .collect::<Vec<_>>()
    );
    let after = small.stats();
    assert_eq!(after.requests - before.requests, 3);
    assert_eq!(after.multipart_responses, 2);
    assert_eq!(after.single_range_responses, 1);

    // Out of range: refused before asking when the size is known...
    let e = client
        .get_ranges(&digest, size, &[size - 1..size + 1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read bytes 99999..100001"), "{e}");
    // ...and a clear error when the registry's blob is shorter than claimed.
    let e = client
        .get_ranges(&digest, size + 100, &[size + 10..size + 20])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("416") && e.contains(&format!("blobs/{digest}")),
        "{e}"
    );
    let e = client
        .get_ranges(&digest, size + 100, &[0..10, size + 10..size + 20])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the registry says the blob is 100000 bytes"),
        "{e}"
    );
}

#[test]
fn authenticates_with_htpasswd() {
    let htpasswd = require_tool("htpasswd", "apache2-utils");
    let registry = Registry::start_with("reg-auth", |dir| {
        let file = dir.join("htpasswd");
        let out = run(Command::new(&htpasswd).args(["-Bbn", "user", "pass"]));
        std::fs::write(&file, out.stdout).unwrap();
        format!(
            "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            file.display()
        )
    });
    let with = |credentials: Credentials| {
        registry.client_with(
            "secret",
            ClientConfig {
                credentials,
                ..ClientConfig::default()
            },
        )
    };
    let basic = |user: &str, password: &str| Credentials::Basic {
        user: user.into(),
        password: password.into(),
    };

    // Right password: works, and the credentials are remembered.
    let client = with(basic("user", "pass"));
    client.ping().unwrap();
    let data = b"secret blob".to_vec();
    let digest = Digest::of(&data);
    client
        .put_blob(&digest, data.len() as u64, &mut Cursor::new(&data))
        .unwrap();
    assert_eq!(client.get_blob(&digest, data.len() as u64).unwrap(), data);
    let stats = client.stats();
    // One 401 for the first request only.
    assert_eq!(stats.requests, 6, "{stats:?}");

    // Wrong or no password: a clear error naming the registry.
    for (credentials, detail) in [
        (basic("user", "wrong"), "user \"user\" was refused"),
        (Credentials::Anonymous, "no credentials were given"),
    ] {
        let client = with(credentials);
        for e in [
            client.ping().unwrap_err(),
            client.get_blob(&digest, data.len() as u64).unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(
                e.contains(&format!(
                    "authentication failed for registry {}",
                    registry.host()
                )) && e.contains(detail),
                "{e}"
            );
        }
    }

    // Credentials found in an auth.json, under an https:// key.
    let auth = registry.dir.path().join("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"https://{}":{{"auth":"dXNlcjpwYXNz"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let found = Credentials::from_files(&registry.host(), &[auth]).unwrap();
    assert_eq!(found, basic("user", "pass"));
    with(found).ping().unwrap();
}

#[test]
fn speaks_tls_with_a_private_ca() {
    let openssl = require_tool("openssl", "openssl");
    let registry = Registry::start_with("reg-tls", |dir| {
        let p = |n: &str| dir.join(n).display().to_string();
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(Command::new(&openssl).args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=chunkah test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ]));
        run(Command::new(&openssl).args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("leaf.key"),
            "-out",
            &p("leaf.csr"),
        ]));
        run(Command::new(&openssl).args([
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-extfile",
            &p("leaf.ext"),
            "-out",
            &p("leaf.pem"),
        ]));
        format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            p("leaf.pem"),
            p("leaf.key")
        )
    });
    let ca = registry.dir.path().join("ca.pem");
    let client = registry.client_with(
        "tls",
        ClientConfig {
            ca_file: Some(ca),
            ..ClientConfig::default()
        },
    );
    client.ping().unwrap();
    let data = noise(1000);
    let digest = Digest::of(&data);
    client
        .put_blob(&digest, 1000, &mut Cursor::new(&data))
        .unwrap();
    assert_eq!(
        client.get_ranges(&digest, 1000, &[1..3, 10..20]).unwrap(),
        vec![data[1..3].to_vec(), data[10..20].to_vec()]
    );
    // Without the CA, the certificate is refused, and not retried.
    let e = Client::new(
        &registry.host(),
        "tls",
        ClientConfig {
            retries: 1,
            backoff: Duration::from_millis(10),
            ..ClientConfig::default()
        },
    )
    .unwrap()
    .ping()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("https://127.0.0.1")
            && e.contains("certificate")
            && e.contains("after 1 attempt:"),
        "{e}"
    );
}

#[test]
fn reports_faults() {
    let mut registry = Registry::start("reg-faults");
    let client = registry.client("faults");
    let data = noise(300_000);
    let digest = Digest::of(&data);
    let size = data.len() as u64;
    client
        .put_blob(&digest, size, &mut Cursor::new(&data))
        .unwrap();

    // A byte flipped in the registry's storage: a digest mismatch.
    let file = registry.blob_data(&digest);
    let mut stored = std::fs::read(&file).unwrap();
    assert_eq!(stored, data);
    stored[12_345] ^= 1;
    std::fs::write(&file, &stored).unwrap();
    let e = client.get_blob(&digest, size).unwrap_err().to_string();
    assert!(
        e.contains("digest mismatch") && e.contains(&format!("blobs/{digest}")),
        "{e}"
    );
    let e = client
        .get_blob_to(&digest, size, &mut std::io::sink())
        .unwrap_err()
        .to_string();
    assert!(e.contains("digest mismatch"), "{e}");

    // A stopped registry: connection refused, retried, then a clear error.
    registry.stop();
    let client = registry.client_with(
        "faults",
        ClientConfig {
            retries: 2,
            ..ClientConfig::default()
        },
    );
    let e = client.blob_exists(&digest).unwrap_err().to_string();
    assert!(
        e.contains("failed after 3 attempts") && e.contains(&registry.host()),
        "{e}"
    );
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries), (3, 2));
}
