//! The registry client against a real registry (Debian's `docker-registry`,
//! distribution 2.8) and skopeo.

mod common;

use std::io::{Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chunkah::digest::Digest;
use chunkah::oci::types::{host_architecture, Manifest};
use chunkah::registry::{Client, ClientConfig, Credentials, PushOutcome, Target};
use chunkah::store::ImageReader;
use chunkah::store::ImageRef;
use common::registry::Registry;
use common::{delta_tree, require_tool, run, TempDir};

impl Registry {
    fn client(&self, repository: &str) -> Client {
        self.client_with(repository, ClientConfig::default())
    }

    fn client_with(&self, repository: &str, config: ClientConfig) -> Client {
        let config = ClientConfig {
            tls_verify: config.tls_verify && config.ca_file.is_some(),
            backoff: Duration::from_millis(10),
            ..config
        };
        Client::new(&self.host(), repository, config).unwrap()
    }

    /// The file holding a blob in the registry's storage.
    fn blob_data(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(&hex)
            .join("data")
    }
}

/// An OCI layout `DIR:v1` packed by chunkah from the sample root file system.
fn sample_image(dir: &Path) -> PathBuf {
    let layout = dir.join("image");
    run(Command::new(env!("CARGO_BIN_EXE_chunkah")).args([
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

fn skopeo() -> PathBuf {
    require_tool("skopeo", "skopeo")
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

/// Pseudo-random bytes (the chunker's golden-vector generator).
fn noise(len: usize) -> Vec<u8> {
    chunkah::chunker::golden_input(0x9e37_79b9_7f4a_7c15, len)
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
            client.get_ranges(&digest, size, &[(10, 20)]).unwrap(),
            vec![slice(10, 20)]
        );
    });
    assert_eq!(got, (1, 1, 0, 0));

    // Edges, alone.
    for r in [(0, 1), (size - 1, size), (0, size)] {
        assert_eq!(
            client.get_ranges(&digest, size, &[r]).unwrap(),
            vec![slice(r.0, r.1)]
        );
    }

    // Several ranges, adjacent ones included: distribution 2.8 (Go's
    // http.ServeContent) answers one multipart/byteranges request.
    let ranges = [
        (0, 1),
        (1, 2),
        (100, 200),
        (5000, 6000),
        (50_000, 60_000),
        (size - 1, size),
    ];
    let want: Vec<Vec<u8>> = ranges.iter().map(|&(s, e)| slice(s, e)).collect();
    let before = client.stats();
    let got = delta(&|| assert_eq!(client.get_ranges(&digest, size, &ranges).unwrap(), want));
    assert_eq!(got, (1, 0, 1, 0), "one multipart request, no fallback");
    let wanted: u64 = ranges.iter().map(|(s, e)| e - s).sum();
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
    let many: Vec<(u64, u64)> = (0..9).map(|i| (i * 1000, i * 1000 + 10)).collect();
    let got = small.get_ranges(&digest, size, &many).unwrap();
    assert_eq!(
        got,
        many.iter().map(|&(s, e)| slice(s, e)).collect::<Vec<_>>()
    );
    let after = small.stats();
    assert_eq!(after.requests - before.requests, 3);
    assert_eq!(after.multipart_responses, 2);
    assert_eq!(after.single_range_responses, 1);

    // Out of range: refused before asking when the size is known...
    let e = client
        .get_ranges(&digest, size, &[(size - 1, size + 1)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read bytes 99999..100001"), "{e}");
    // ...and a clear error when the registry's blob is shorter than claimed.
    let e = client
        .get_ranges(&digest, size + 100, &[(size + 10, size + 20)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("416") && e.contains(&format!("blobs/{digest}")),
        "{e}"
    );
    let e = client
        .get_ranges(&digest, size + 100, &[(0, 10), (size + 10, size + 20)])
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
        client
            .get_ranges(&digest, 1000, &[(1, 3), (10, 20)])
            .unwrap(),
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

/// A tiny HTTP server on 127.0.0.1 answering each request (one per
/// connection) with `answer(request line, lower-case headers)`: for the
/// paths a real registry does not take (bearer tokens, ignored or refused
/// ranges, 503s).
fn mock_server(
    answer: impl Fn(&str, &std::collections::HashMap<String, String>) -> Vec<u8> + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let mut lines = head.split("\r\n");
            let request_line = lines.next().unwrap_or("").to_string();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let _ = stream.write_all(&answer(&request_line, &headers));
        }
    });
    host
}

fn http_answer(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn mock_client(host: &str, config: ClientConfig) -> Client {
    Client::new(
        host,
        "mock",
        ClientConfig {
            tls_verify: false,
            backoff: Duration::from_millis(5),
            ..config
        },
    )
    .unwrap()
}

#[test]
fn fetches_and_caches_bearer_tokens() {
    let host = mock_server(move |line, headers| {
        let auth = headers.get("authorization").cloned().unwrap_or_default();
        if line.starts_with("GET /token?service=mock-service&scope=repository%3Amock%3Apull ") {
            // "user:pass"
            return if auth == "Basic dXNlcjpwYXNz" {
                http_answer("200 OK", &[], br#"{"access_token":"tok"}"#)
            } else {
                http_answer("401 Unauthorized", &[], b"")
            };
        }
        if auth == "Bearer tok" {
            return http_answer("200 OK", &[], b"{}");
        }
        let port = headers["host"].rsplit(':').next().unwrap().to_string();
        let challenge = format!(
            "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"mock-service\",\
             scope=\"repository:mock:pull\""
        );
        http_answer("401 Unauthorized", &[("WWW-Authenticate", challenge)], b"")
    });
    let client = mock_client(
        &host,
        ClientConfig {
            credentials: Credentials::Basic {
                user: "user".into(),
                password: "pass".into(),
            },
            ..ClientConfig::default()
        },
    );
    client.ping().unwrap();
    client.ping().unwrap();
    // 401, token, retry; then the cached token at once.
    assert_eq!(client.stats().requests, 4);
    let wrong = mock_client(
        &host,
        ClientConfig {
            credentials: Credentials::Basic {
                user: "user".into(),
                password: "nope".into(),
            },
            ..ClientConfig::default()
        },
    );
    let e = wrong.ping().unwrap_err().to_string();
    assert!(
        e.contains("authentication failed") && e.contains("/token?"),
        "{e}"
    );
}

#[test]
fn falls_back_when_ranges_are_ignored_or_refused() {
    let data = noise(10_000);
    let digest = Digest::of(&data);
    let whole = data.clone();
    // Ignores Range: always the whole blob.
    let host = mock_server(move |_, _| http_answer("200 OK", &[], &whole));
    let client = mock_client(
        &host,
        ClientConfig {
            max_ranges_per_request: 2,
            ..ClientConfig::default()
        },
    );
    let ranges = [(0, 10), (20, 30), (40, 50), (9_990, 10_000)];
    let got = client.get_ranges(&digest, 10_000, &ranges).unwrap();
    assert_eq!(got[3], data[9_990..]);
    let stats = client.stats();
    // The whole blob came once and served the second batch too.
    assert_eq!((stats.requests, stats.full_blob_fallbacks), (1, 1));

    // Refuses several ranges (416), answers one range at a time; fails once
    // with a 503 first.
    let failed = std::sync::atomic::AtomicBool::new(false);
    let served = data.clone();
    let host = mock_server(move |_, headers| {
        if !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return http_answer("503 Service Unavailable", &[], b"busy");
        }
        let range = headers["range"].strip_prefix("bytes=").unwrap();
        if range.contains(',') {
            return http_answer(
                "416 Range Not Satisfiable",
                &[("Content-Range", "bytes */10000".into())],
                b"",
            );
        }
        let (s, e) = range.split_once('-').unwrap();
        let (s, e): (usize, usize) = (s.parse().unwrap(), e.parse().unwrap());
        http_answer(
            "206 Partial Content",
            &[("Content-Range", format!("bytes {s}-{e}/10000"))],
            &served[s..=e],
        )
    });
    let client = mock_client(&host, ClientConfig::default());
    let got = client.get_ranges(&digest, 10_000, &ranges).unwrap();
    assert_eq!(
        got,
        ranges
            .iter()
            .map(|&(s, e)| data[s as usize..e as usize].to_vec())
            .collect::<Vec<_>>()
    );
    let stats = client.stats();
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.range_fallbacks, 1);
    assert_eq!(stats.single_range_responses, 4);
    assert_eq!(stats.requests, 1 + 1 + 4);
}

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
    let chunkah = || Command::new(env!("CARGO_BIN_EXE_chunkah"));
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
                    Command::new(env!("CARGO_BIN_EXE_chunkah"))
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
    let chunkah = || Command::new(env!("CARGO_BIN_EXE_chunkah"));
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
    let chunkah = || Command::new(env!("CARGO_BIN_EXE_chunkah"));
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
    let chunkah = || Command::new(env!("CARGO_BIN_EXE_chunkah"));
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

#[test]
fn honours_retry_after() {
    let data = noise(1000);
    let digest = Digest::of(&data);
    let refused = std::sync::atomic::AtomicBool::new(false);
    let served = data.clone();
    let host = mock_server(move |_, _| {
        if !refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return http_answer("429 Too Many Requests", &[("Retry-After", "1".into())], b"");
        }
        http_answer("200 OK", &[], &served)
    });
    // The backoff alone would wait 5 ms.
    let client = mock_client(&host, ClientConfig::default());
    let started = Instant::now();
    assert_eq!(client.get_blob(&digest, 1000).unwrap(), data);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.stats().retries, 1);
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
    let chunkah = || Command::new(env!("CARGO_BIN_EXE_chunkah"));
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
    let chunkah = || Command::new(env!("CARGO_BIN_EXE_chunkah"));
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
