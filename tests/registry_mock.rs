//! The registry client against tiny HTTP servers the tests start, for what a
//! real registry does not do: bearer tokens, ranges ignored or refused, 503s
//! and `Retry-After`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use chunkah::digest::Digest;
use chunkah::registry::{Client, ClientConfig, Credentials};
use common::registry::noise;

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
    let ranges = [0..10, 20..30, 40..50, 9_990..10_000];
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
            .map(|r| data[r.start as usize..r.end as usize].to_vec())
            .collect::<Vec<_>>()
    );
    let stats = client.stats();
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.range_fallbacks, 1);
    assert_eq!(stats.single_range_responses, 4);
    assert_eq!(stats.requests, 1 + 1 + 4);
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
