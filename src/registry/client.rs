//! A synchronous client of one repository of an OCI distribution registry.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use sha2::Digest as _;
use ureq::http::{self, Response};
use ureq::Body;

use super::auth::{parse_challenge, Challenge, Credentials};
use super::multipart::{byteranges_boundary, parse_byteranges, parse_content_range};
use super::reference::{valid_host, RegistryRef, Target};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::types::{
    DOCKER_INDEX_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    MAX_JSON_BYTES,
};

/// How a [`Client`] connects, authenticates and retries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `true`: `https://`, certificates verified. `false`: plain `http://`
    /// (what skopeo's `--tls-verify=false` means for a registry that
    /// speaks plain HTTP).
    pub tls_verify: bool,
    /// A PEM file of CA certificates to trust instead of the built-in
    /// Mozilla roots (for a registry with a private CA or a self-signed
    /// certificate).
    pub ca_file: Option<PathBuf>,
    /// What to authenticate with, when the registry asks.
    pub credentials: Credentials,
    /// Retries after a connection error, a 5xx or a 429; also the number of
    /// times an interrupted blob download is resumed.
    pub retries: u32,
    /// The wait before the first retry; it doubles for each next one. A
    /// `Retry-After` of N seconds on a 5xx or 429 waits that long instead
    /// (at least the backoff, at most a minute).
    pub backoff: Duration,
    /// The longest wait for a connection.
    pub connect_timeout: Duration,
    /// The longest wait for a response or for any read of its body.
    pub read_timeout: Duration,
    /// The most ranges asked for in one request; more are split.
    pub max_ranges_per_request: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            tls_verify: true,
            ca_file: None,
            credentials: Credentials::Anonymous,
            retries: 3,
            backoff: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            max_ranges_per_request: 100,
        }
    }
}

/// What a [`Client`] did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// HTTP requests sent, retries, auth and token requests included.
    pub requests: u64,
    /// Bytes of response bodies received.
    pub bytes_received: u64,
    /// Bytes of request bodies sent.
    pub bytes_sent: u64,
    /// Bytes of response status lines and headers received (approximate:
    /// `HTTP/1.1 CODE REASON\r\n`, `name: value\r\n` each, `\r\n`).
    pub header_bytes_received: u64,
    /// Requests sent again after a connection error, a 5xx or a 429.
    pub retries: u64,
    /// Blob downloads resumed with a `Range` after an interruption.
    pub resumed_downloads: u64,
    /// 206 answers of one range (with `Content-Range`).
    pub single_range_responses: u64,
    /// 206 answers of `multipart/byteranges`.
    pub multipart_responses: u64,
    /// 200 answers to range requests: the whole blob came, ranges were
    /// taken from it.
    pub full_blob_fallbacks: u64,
    /// Multi-range requests given up (416, or a multipart answer refused or
    /// incomplete) for requests of one range each.
    pub range_fallbacks: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    header_bytes_received: AtomicU64,
    retries: AtomicU64,
    resumed_downloads: AtomicU64,
    single_range_responses: AtomicU64,
    multipart_responses: AtomicU64,
    full_blob_fallbacks: AtomicU64,
    range_fallbacks: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A manifest (or index) as the registry served it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteManifest {
    /// Its media type (`Content-Type`, else the JSON's `mediaType`).
    pub media_type: String,
    /// The sha256 of its bytes.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its bytes, exactly as served.
    pub bytes: Vec<u8>,
}

/// What [`Client::put_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PushOutcome {
    /// The registry had the blob already: nothing was sent.
    Skipped,
    /// The blob was uploaded.
    Uploaded,
}

/// A client of one repository of one registry.
///
/// Every operation checks what it receives: blobs and manifests addressed by
/// digest against their sha256, ranges against the blob's size. Connection
/// errors, 5xx and 429 answers are retried with exponential backoff; a 401
/// is answered once with basic credentials or a bearer token. A `Client` is
/// `Sync`: threads may share one (the token and counters are shared).
pub struct Client {
    agent: ureq::Agent,
    /// `http://HOST` or `https://HOST`.
    base: String,
    host: String,
    repository: String,
    config: ClientConfig,
    /// The `Authorization` value sent with every request, once known.
    authorization: Mutex<Option<String>>,
    counters: Counters,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("repository", &self.repository)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A request body that can be sent again on a retry.
enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes read from the start of the reader.
    Reader(&'a mut dyn ReadSeek, u64),
}

trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

struct Request<'a> {
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Payload<'a>,
}

impl<'a> Request<'a> {
    fn new(method: &'static str, url: String) -> Self {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Payload::Empty,
        }
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, body: Payload<'a>) -> Self {
        self.body = body;
        self
    }
}

/// An error about `url` that is not an error status of the registry's.
fn url_error(url: &str, why: impl Into<String>) -> Error {
    Error::registry(url, None, why)
}

/// A reader that adds what it reads to a counter.
struct Counting<'c, R> {
    inner: R,
    counter: &'c AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        bump(self.counter, n as u64);
        Ok(n)
    }
}

/// The longest `Retry-After` honoured; a server asking more is retried
/// after this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A response's `Retry-After` in seconds (the HTTP-date form is ignored:
/// the backoff applies).
fn retry_after(resp: &Response<Body>) -> Option<Duration> {
    let value = resp.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Whether a transport error is worth a retry: connection errors and
/// timeouts are, a refused certificate is not.
fn transient(e: &ureq::Error) -> bool {
    match e {
        // rustls reports a refused certificate as InvalidData: no retry.
        ureq::Error::Io(io) => io.kind() != io::ErrorKind::InvalidData,
        _ => matches!(
            e,
            ureq::Error::ConnectionFailed
                | ureq::Error::Timeout(_)
                | ureq::Error::BodyStalled
                | ureq::Error::Protocol(_)
        ),
    }
}

/// `%`-encodes all but unreserved characters, for a query value.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header<'r>(resp: &'r Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The manifest media types asked for.
const MANIFEST_ACCEPT: [&str; 4] = [
    MANIFEST_MEDIA_TYPE,
    INDEX_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
    DOCKER_INDEX_MEDIA_TYPE,
];

/// Bytes of an error body kept for a message.
const MAX_ERROR_BODY: u64 = 4 << 10;

/// What a request for some ranges of a blob got.
enum Batch {
    /// Each range's bytes, or `None` where the answer did not cover it.
    Parts(Vec<Option<Vec<u8>>>),
    /// The whole blob (a 200).
    Whole(Vec<u8>),
    /// The request was refused (416) or the answer could not be used.
    Refused,
}

impl Client {
    /// A client for `repository` on `host` (`HOST[:PORT]`).
    pub fn new(host: &str, repository: &str, mut config: ClientConfig) -> Result<Self> {
        if !valid_host(host) {
            return Err(Error::Config(format!(
                "registry host {host:?} is not HOST[:PORT]"
            )));
        }
        if repository.is_empty() || repository.contains(['?', '#', ' ', '@', ':']) {
            return Err(Error::Config(format!(
                "repository {repository:?} is not a repository path"
            )));
        }
        if config.max_ranges_per_request == 0 {
            return Err(Error::Config(
                "max_ranges_per_request must be at least 1".into(),
            ));
        }
        if config.retries > 20 {
            return Err(Error::Config(format!(
                "retries is {}, at most 20 (the backoff doubles each time)",
                config.retries
            )));
        }
        config.credentials = config.credentials.resolve(host)?;
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &config.ca_file {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&read_pem_certs(ca)?));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(config.tls_verify)
            .tls_config(tls.build())
            .timeout_connect(Some(config.connect_timeout))
            .timeout_recv_response(Some(config.read_timeout))
            .timeout_per_read(Some(config.read_timeout))
            .user_agent(concat!("chunkah/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let scheme = if config.tls_verify { "https" } else { "http" };
        Ok(Client {
            agent,
            base: format!("{scheme}://{host}"),
            host: host.to_string(),
            repository: repository.to_string(),
            config,
            authorization: Mutex::new(None),
            counters: Counters::default(),
        })
    }

    /// A client for the registry and repository of `reference`.
    pub fn for_ref(reference: &RegistryRef, config: ClientConfig) -> Result<Self> {
        Client::new(&reference.host, &reference.repository, config)
    }

    /// The registry's `HOST[:PORT]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The repository.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// What this client did so far.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            requests: get(&c.requests),
            bytes_received: get(&c.bytes_received),
            bytes_sent: get(&c.bytes_sent),
            header_bytes_received: get(&c.header_bytes_received),
            retries: get(&c.retries),
            resumed_downloads: get(&c.resumed_downloads),
            single_range_responses: get(&c.single_range_responses),
            multipart_responses: get(&c.multipart_responses),
            full_blob_fallbacks: get(&c.full_blob_fallbacks),
            range_fallbacks: get(&c.range_fallbacks),
        }
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repository)
    }

    fn blob_url(&self, digest: &Digest) -> String {
        self.url(&format!("blobs/{digest}"))
    }

    /// Checks that the registry answers `GET /v2/` with 200 (authenticating
    /// if it asks).
    pub fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send(&mut Request::new("GET", url.clone()))?;
        self.expect(resp, "GET", &url, &[200]).map(drop)
    }

    /// The manifest or index `target` names, checked against the digest
    /// when addressed by one, at most [`MAX_JSON_BYTES`].
    pub fn get_manifest(&self, target: &Target) -> Result<RemoteManifest> {
        let url = self.url(&format!("manifests/{}", target.as_url_part()));
        let resp = self.send(
            &mut Request::new("GET", url.clone()).header("Accept", MANIFEST_ACCEPT.join(", ")),
        )?;
        let resp = self.expect(resp, "GET", &url, &[200])?;
        let content_type = header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let bytes = self.read_body(resp, MAX_JSON_BYTES, &url)?;
        let digest = Digest::of(&bytes);
        if let Target::Digest(expected) = target {
            if digest != *expected {
                return Err(Error::digest_mismatch(
                    format!("{url}: the manifest served"),
                    expected,
                    digest,
                ));
            }
        }
        let media_type = if MANIFEST_ACCEPT.contains(&content_type.as_str()) {
            content_type
        } else {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
                .unwrap_or(content_type)
        };
        Ok(RemoteManifest {
            media_type,
            digest,
            size: bytes.len() as u64,
            bytes,
        })
    }

    /// Whether the repository has the blob (`HEAD`).
    pub fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let url = self.blob_url(digest);
        let resp = self.send(&mut Request::new("HEAD", url.clone()))?;
        match resp.status().as_u16() {
            404 => Ok(false),
            _ => self.expect(resp, "HEAD", &url, &[200]).map(|_| true),
        }
    }

    /// The blob `digest`, `size` bytes long, checked against its digest.
    pub fn get_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(size.min(MAX_JSON_BYTES) as usize);
        self.get_blob_to(digest, size, &mut bytes)?;
        Ok(bytes)
    }

    /// Streams the blob `digest` (`size` bytes) into `writer`, resuming an
    /// interrupted transfer from where it stopped (at most `retries` times),
    /// and checks its sha256 at the end. On an error, what was written is
    /// not the blob and must be discarded.
    pub fn get_blob_to(&self, digest: &Digest, size: u64, writer: &mut dyn Write) -> Result<()> {
        let url = self.blob_url(digest);
        let mut hasher = sha2::Sha256::new();
        let mut received = 0u64;
        let mut resumes = 0u32;
        let mut buf = vec![0u8; 256 << 10];
        'transfer: loop {
            let mut request = Request::new("GET", url.clone());
            if received > 0 {
                request = request.header("Range", format!("bytes={received}-"));
            }
            let resp = self.send(&mut request)?;
            let resp = self.expect(resp, "GET", &url, &[200, 206])?;
            // Bytes of this answer to skip: all we have, if it starts at 0.
            let mut skip = 0;
            if resp.status() == 206 {
                let range = header(&resp, "content-range").and_then(parse_content_range);
                if received == 0 || range.map(|r| r.start) != Some(received) {
                    return Err(url_error(
                        &url,
                        format!(
                            "asked for bytes {received}- and got Content-Range {:?}",
                            header(&resp, "content-range").unwrap_or("")
                        ),
                    ));
                }
            } else {
                skip = received;
            }
            let mut body = Counting {
                inner: resp.into_body().into_reader(),
                counter: &self.counters.bytes_received,
            };
            loop {
                let n = match body.read(&mut buf) {
                    Ok(0) => break 'transfer,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        if resumes >= self.config.retries {
                            return Err(url_error(
                                &url,
                                format!(
                                    "download interrupted at byte {received} of {size} \
                                     after {resumes} resumptions: {e}"
                                ),
                            ));
                        }
                        self.sleep_backoff(resumes);
                        resumes += 1;
                        bump(&self.counters.resumed_downloads, 1);
                        continue 'transfer;
                    }
                };
                let mut chunk = &buf[..n];
                if skip > 0 {
                    let s = skip.min(n as u64) as usize;
                    skip -= s as u64;
                    chunk = &chunk[s..];
                }
                if received + chunk.len() as u64 > size {
                    return Err(url_error(
                        &url,
                        format!("the registry sent more than the {size} bytes expected"),
                    ));
                }
                writer.write_all(chunk).map_err(Error::Stream)?;
                hasher.update(chunk);
                received += chunk.len() as u64;
            }
        }
        if received != size {
            return Err(url_error(
                &url,
                format!("the registry sent {received} bytes, expected {size}"),
            ));
        }
        let got = Digest(hasher.finalize().into());
        if got != *digest {
            return Err(Error::digest_mismatch(
                format!("{url}: the bytes served"),
                digest,
                got,
            ));
        }
        Ok(())
    }

    /// The `[start, end)` `ranges` (sorted, not overlapping, within `size`)
    /// of the blob `digest`, asking for many in one request
    /// (`Range: bytes=a-b,c-d`), at most
    /// [`ClientConfig::max_ranges_per_request`] a request.
    ///
    /// A `multipart/byteranges` answer and a single range are taken as they
    /// come; a whole blob (200) is checked against its digest and serves
    /// every range; a 416 or an unusable multipart answer makes the client
    /// ask for each range alone. [`Stats`] tells which happened.
    pub fn get_ranges(
        &self,
        digest: &Digest,
        size: u64,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<Vec<u8>>> {
        let url = self.blob_url(digest);
        let mut previous_end = 0;
        for &(start, end) in ranges {
            if start >= end || end > size || start < previous_end {
                return Err(url_error(
                    &url,
                    format!(
                        "cannot read bytes {start}..{end} of a {size}-byte blob \
                         (ranges must be non-empty, sorted, disjoint and inside the blob)"
                    ),
                ));
            }
            previous_end = end;
        }
        let mut out = vec![None; ranges.len()];
        let mut whole = None;
        let indices: Vec<usize> = (0..ranges.len()).collect();
        for batch in indices.chunks(self.config.max_ranges_per_request) {
            self.fill(&url, digest, size, ranges, batch, &mut out, &mut whole)?;
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every range filled"))
            .collect())
    }

    /// Fills `out[i]` for `i` in `batch`: from `whole` if the whole blob came
    /// already, else with one request, then one request per range missing.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        url: &str,
        digest: &Digest,
        size: u64,
        ranges: &[(u64, u64)],
        batch: &[usize],
        out: &mut [Option<Vec<u8>>],
        whole: &mut Option<Vec<u8>>,
    ) -> Result<()> {
        if let Some(w) = whole {
            for &i in batch {
                let (s, e) = ranges[i];
                out[i] = Some(w[s as usize..e as usize].to_vec());
            }
            return Ok(());
        }
        let wanted: Vec<(u64, u64)> = batch.iter().map(|&i| ranges[i]).collect();
        match self.fetch_ranges(url, digest, size, &wanted)? {
            Batch::Whole(w) => {
                *whole = Some(w);
                self.fill(url, digest, size, ranges, batch, out, whole)
            }
            Batch::Parts(parts) => {
                let mut missing = Vec::new();
                for (&i, part) in batch.iter().zip(parts) {
                    match part {
                        Some(p) => out[i] = Some(p),
                        None => missing.push(i),
                    }
                }
                if missing.is_empty() {
                    return Ok(());
                }
                if batch.len() == 1 {
                    let (s, e) = ranges[batch[0]];
                    return Err(url_error(
                        url,
                        format!("asked for bytes {s}..{e} and the answer does not hold them"),
                    ));
                }
                bump(&self.counters.range_fallbacks, 1);
                for i in missing {
                    self.fill(url, digest, size, ranges, &[i], out, whole)?;
                }
                Ok(())
            }
            Batch::Refused => {
                bump(&self.counters.range_fallbacks, 1);
                for &i in batch {
                    self.fill(url, digest, size, ranges, &[i], out, whole)?;
                }
                Ok(())
            }
        }
    }

    /// One request for `ranges` of the blob.
    fn fetch_ranges(
        &self,
        url: &str,
        digest: &Digest,
        size: u64,
        ranges: &[(u64, u64)],
    ) -> Result<Batch> {
        let spec: Vec<String> = ranges
            .iter()
            .map(|(s, e)| format!("{s}-{}", e - 1))
            .collect();
        let spec = format!("bytes={}", spec.join(","));
        let resp = self.send(&mut Request::new("GET", url.to_string()).header("Range", &spec))?;
        let status = resp.status().as_u16();
        if status == 416 && ranges.len() > 1 {
            drop(resp);
            return Ok(Batch::Refused);
        }
        let resp = self.expect(resp, "GET", url, &[200, 206]).map_err(|e| {
            if status == 416 {
                url_error(
                    url,
                    format!(
                        "416 Range Not Satisfiable for {spec}: the registry's blob is shorter \
                         than the {size} bytes expected"
                    ),
                )
            } else {
                e
            }
        })?;
        if status == 200 {
            bump(&self.counters.full_blob_fallbacks, 1);
            let body = self.read_body(resp, size, url)?;
            if body.len() as u64 != size || Digest::of(&body) != *digest {
                return Err(url_error(
                    url,
                    format!(
                        "the whole blob was sent for {spec} and it does not match its \
                         digest and size ({} bytes)",
                        body.len()
                    ),
                ));
            }
            return Ok(Batch::Whole(body));
        }
        let wrong_total = |total: Option<u64>| {
            url_error(
                url,
                format!(
                    "the registry says the blob is {} bytes, expected {size}",
                    total.map_or("an unknown number of".into(), |t| t.to_string())
                ),
            )
        };
        let covered = |start: u64, end: u64, data: &[u8]| -> Vec<Option<Vec<u8>>> {
            ranges
                .iter()
                .map(|&(s, e)| {
                    (start <= s && e <= end)
                        .then(|| data[(s - start) as usize..(e - start) as usize].to_vec())
                })
                .collect()
        };
        let content_type = header(&resp, "content-type").unwrap_or("").to_string();
        if let Some(boundary) = byteranges_boundary(&content_type) {
            bump(&self.counters.multipart_responses, 1);
            let wanted: u64 = ranges.iter().map(|(s, e)| e - s).sum();
            // Data, plus headers of each part (Go writes ~130 bytes a part).
            let limit = wanted + 1024 * ranges.len() as u64 + 4096;
            let body = match self.read_body(resp, limit, url) {
                Ok(b) => b,
                Err(_) => return Ok(Batch::Refused),
            };
            let parts = match parse_byteranges(&body, &boundary, ranges.len()) {
                Ok(p) => p,
                Err(_) => return Ok(Batch::Refused),
            };
            let mut out = vec![None; ranges.len()];
            for part in parts {
                if part.range.total.is_some_and(|t| t != size) {
                    return Err(wrong_total(part.range.total));
                }
                let data = &body[part.data];
                for (slot, found) in
                    out.iter_mut()
                        .zip(covered(part.range.start, part.range.end, data))
                {
                    if slot.is_none() {
                        *slot = found;
                    }
                }
            }
            return Ok(Batch::Parts(out));
        }
        bump(&self.counters.single_range_responses, 1);
        let range = header(&resp, "content-range")
            .and_then(parse_content_range)
            .ok_or_else(|| url_error(url, "a 206 answer without a valid Content-Range"))?;
        if range.total.is_some_and(|t| t != size) {
            return Err(wrong_total(range.total));
        }
        let span = ranges[ranges.len() - 1].1 - ranges[0].0;
        if range.end - range.start > span {
            return Ok(Batch::Refused);
        }
        let body = self.read_body(resp, range.end - range.start, url)?;
        if body.len() as u64 != range.end - range.start {
            return Err(url_error(
                url,
                format!(
                    "the answer is {} bytes, its Content-Range says {}",
                    body.len(),
                    range.end - range.start
                ),
            ));
        }
        Ok(Batch::Parts(covered(range.start, range.end, &body)))
    }

    /// Uploads the blob `digest` (`size` bytes, read from the start of
    /// `reader`) in one request, unless the repository has it.
    pub fn put_blob<R: Read + Seek>(
        &self,
        digest: &Digest,
        size: u64,
        reader: &mut R,
    ) -> Result<PushOutcome> {
        if self.blob_exists(digest)? {
            return Ok(PushOutcome::Skipped);
        }
        let url = self.url("blobs/uploads/");
        let resp = self.send(&mut Request::new("POST", url.clone()).body(Payload::Bytes(&[])))?;
        let resp = self.expect(resp, "POST", &url, &[202])?;
        let location = header(&resp, "location")
            .ok_or_else(|| url_error(&url, "a 202 answer without Location"))?
            .to_string();
        drop(resp);
        let mut put = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            return Err(url_error(
                &url,
                format!("unusable upload Location {location:?}"),
            ));
        };
        put.push(if put.contains('?') { '&' } else { '?' });
        put.push_str(&format!("digest={}", query_escape(&digest.to_string())));
        let resp = self.send(
            &mut Request::new("PUT", put.clone())
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", size.to_string())
                .body(Payload::Reader(reader, size)),
        )?;
        let resp = self.expect(resp, "PUT", &self.blob_url(digest), &[201])?;
        self.check_digest_header(&resp, digest, &self.blob_url(digest))?;
        Ok(PushOutcome::Uploaded)
    }

    /// Uploads a manifest (or index) of `media_type` under `target` (a tag,
    /// or its own digest), and returns its digest.
    pub fn put_manifest(&self, target: &Target, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let url = self.url(&format!("manifests/{}", target.as_url_part()));
        if let Target::Digest(d) = target {
            if *d != digest {
                return Err(url_error(
                    &url,
                    format!("the manifest's digest is {digest}"),
                ));
            }
        }
        let resp = self.send(
            &mut Request::new("PUT", url.clone())
                .header("Content-Type", media_type)
                .body(Payload::Bytes(bytes)),
        )?;
        let resp = self.expect(resp, "PUT", &url, &[201])?;
        self.check_digest_header(&resp, &digest, &url)?;
        Ok(digest)
    }

    fn check_digest_header(&self, resp: &Response<Body>, digest: &Digest, url: &str) -> Result<()> {
        match header(resp, "docker-content-digest") {
            Some(d) if Digest::parse(d.trim()) != Some(*digest) => Err(url_error(
                url,
                format!("the registry stored {d}, expected {digest}"),
            )),
            _ => Ok(()),
        }
    }

    /// `resp` if its status is one of `ok`, else an error naming the URL,
    /// the status and the registry's error codes.
    fn expect(
        &self,
        resp: Response<Body>,
        method: &str,
        url: &str,
        ok: &[u16],
    ) -> Result<Response<Body>> {
        let status = resp.status();
        if ok.contains(&status.as_u16()) {
            return Ok(resp);
        }
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            self.read_body(resp, MAX_ERROR_BODY, url)
                .unwrap_or_default()
        };
        Err(Error::registry(
            url,
            Some(status.as_u16()),
            format!("{method}: {}{}", status_text(status), error_summary(&body)),
        ))
    }

    /// A response body, at most `limit` bytes (more is an error).
    fn read_body(&self, resp: Response<Body>, limit: u64, url: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        Counting {
            inner: resp.into_body().into_reader(),
            counter: &self.counters.bytes_received,
        }
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| url_error(url, format!("reading the answer: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(url_error(
                url,
                format!("the answer is longer than {limit} bytes"),
            ));
        }
        Ok(bytes)
    }

    /// The wait before retry number `attempt + 1`: the backoff doubled
    /// `attempt` times.
    fn backoff(&self, attempt: u32) -> Duration {
        self.config.backoff.saturating_mul(1 << attempt.min(20))
    }

    fn sleep_backoff(&self, attempt: u32) {
        std::thread::sleep(self.backoff(attempt));
    }

    /// Sends `request`, answering a 401 once with credentials or a token.
    fn send(&self, request: &mut Request<'_>) -> Result<Response<Body>> {
        let mut fresh = false;
        loop {
            let authorization = self.authorization.lock().expect("not poisoned").clone();
            let resp = self.send_retrying(request, authorization.as_deref())?;
            if resp.status() != 401 {
                return Ok(resp);
            }
            let challenge = header(&resp, "www-authenticate").map(str::to_string);
            drop(resp);
            if fresh {
                return Err(self.auth_failed(&request.url, None));
            }
            self.authenticate(challenge.as_deref(), &request.url)?;
            fresh = true;
        }
    }

    fn auth_failed(&self, url: &str, why: Option<&str>) -> Error {
        let who = match &self.config.credentials {
            Credentials::Anonymous | Credentials::AuthFiles(_) => {
                "no credentials were given".to_string()
            }
            Credentials::Basic { user, .. } => format!("user {user:?} was refused"),
        };
        url_error(
            url,
            format!(
                "authentication failed for registry {}: {}",
                self.host,
                why.unwrap_or(&who)
            ),
        )
    }

    /// Answers a `WWW-Authenticate` challenge: sets the `Authorization` sent
    /// from now on.
    fn authenticate(&self, challenge: Option<&str>, url: &str) -> Result<()> {
        let value = match challenge.and_then(parse_challenge) {
            None => {
                return Err(self.auth_failed(
                    url,
                    Some(&format!(
                        "401 with an unsupported challenge {:?}",
                        challenge.unwrap_or("")
                    )),
                ))
            }
            Some(Challenge::Basic) => self
                .config
                .credentials
                .basic_header()
                .ok_or_else(|| self.auth_failed(url, None))?,
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => format!(
                "Bearer {}",
                self.fetch_token(&realm, service.as_deref(), scope.as_deref())?
            ),
        };
        *self.authorization.lock().expect("not poisoned") = Some(value);
        Ok(())
    }

    /// A bearer token from the token server `realm`.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String> {
        if self.config.tls_verify && !realm.starts_with("https://") {
            return Err(self.auth_failed(
                realm,
                Some("the token server is not https (credentials would be sent in clear)"),
            ));
        }
        let mut url = realm.to_string();
        for (k, v) in [("service", service), ("scope", scope)] {
            if let Some(v) = v {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&format!("{k}={}", query_escape(v)));
            }
        }
        let mut request = Request::new("GET", url.clone());
        let basic = self.config.credentials.basic_header();
        let resp = self.send_retrying(&mut request, basic.as_deref())?;
        if resp.status() == 401 || resp.status() == 403 {
            return Err(self.auth_failed(&url, None));
        }
        let resp = self.expect(resp, "GET", &url, &[200])?;
        let body = self.read_body(resp, 1 << 20, &url)?;
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| url_error(&url, format!("bad token JSON: {e}")))?;
        ["token", "access_token"]
            .iter()
            .find_map(|k| json.get(k)?.as_str().filter(|t| !t.is_empty()))
            .map(str::to_string)
            .ok_or_else(|| url_error(&url, "no token in the answer"))
    }

    /// Sends `request`, again after a connection error, a 5xx or a 429, up
    /// to `retries` times with exponential backoff.
    fn send_retrying(
        &self,
        request: &mut Request<'_>,
        authorization: Option<&str>,
    ) -> Result<Response<Body>> {
        let attempts = self.config.retries + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt == attempts;
            let plural = if attempt == 1 { "" } else { "s" };
            let mut asked_wait = None;
            match self.send_once(request, authorization) {
                Ok(resp) => {
                    let status = resp.status();
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        return Ok(resp);
                    }
                    asked_wait = retry_after(&resp);
                    if last {
                        let e = self
                            .expect(resp, request.method, &request.url, &[])
                            .expect_err("no status is accepted");
                        let Error::Registry {
                            status, message, ..
                        } = e
                        else {
                            unreachable!("expect gives registry errors")
                        };
                        return Err(Error::registry(
                            &request.url,
                            status,
                            format!("failed after {attempt} attempt{plural}: {message}"),
                        ));
                    }
                }
                Err(SendError::Local(e)) => return Err(e),
                Err(SendError::Transport(e)) if transient(&e) && !last => {}
                Err(SendError::Transport(e)) => {
                    return Err(url_error(
                        &request.url,
                        format!(
                            "{} failed after {attempt} attempt{plural}: {e}",
                            request.method
                        ),
                    ))
                }
            }
            bump(&self.counters.retries, 1);
            // The server may say how long to wait (in seconds): at least the
            // backoff, at most MAX_RETRY_AFTER.
            let backoff = self.backoff(attempt - 1);
            std::thread::sleep(asked_wait.map_or(backoff, |w| w.min(MAX_RETRY_AFTER).max(backoff)));
        }
    }

    /// Sends `request` once.
    fn send_once(
        &self,
        request: &mut Request<'_>,
        authorization: Option<&str>,
    ) -> std::result::Result<Response<Body>, SendError> {
        let mut builder = http::Request::builder()
            .method(request.method)
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(a) = authorization {
            builder = builder.header("Authorization", a);
        }
        let local = |e: String| SendError::Local(url_error(&request.url, e));
        bump(&self.counters.requests, 1);
        let resp = match &mut request.body {
            Payload::Empty => self
                .agent
                .run(builder.body(()).map_err(|e| local(e.to_string()))?),
            Payload::Bytes(b) => {
                bump(&self.counters.bytes_sent, b.len() as u64);
                self.agent
                    .run(builder.body(*b).map_err(|e| local(e.to_string()))?)
            }
            Payload::Reader(reader, len) => {
                reader
                    .seek(SeekFrom::Start(0))
                    .map_err(|e| SendError::Local(Error::Stream(e)))?;
                let mut counting = Counting {
                    inner: (&mut **reader).take(*len),
                    counter: &self.counters.bytes_sent,
                };
                let body = ureq::SendBody::from_reader(&mut counting);
                self.agent
                    .run(builder.body(body).map_err(|e| local(e.to_string()))?)
            }
        };
        let resp = resp.map_err(SendError::Transport)?;
        let status = resp.status();
        let mut n = "HTTP/1.1 000 \r\n\r\n".len() + status.canonical_reason().map_or(0, str::len);
        for (name, value) in resp.headers() {
            n += name.as_str().len() + 2 + value.len() + 2;
        }
        bump(&self.counters.header_bytes_received, n as u64);
        Ok(resp)
    }
}

enum SendError {
    /// Not the network's fault: no retry.
    Local(Error),
    Transport(ureq::Error),
}

fn status_text(status: http::StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// `: CODE message; …` from a registry's JSON error body, else its start.
fn error_summary(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if body.is_empty() {
        return String::new();
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let list: Vec<String> = e
            .errors
            .iter()
            .take(5)
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect();
        return format!(": {}", list.join("; "));
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    format!(": {}", text.trim())
}

/// The certificates of a PEM file.
fn read_pem_certs(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(Error::malformed(path.display(), format!("bad PEM: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(Error::malformed(
            path.display(),
            "no certificate in the file",
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_query_values() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(query_escape("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn summarises_registry_errors() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_summary(body), ": MANIFEST_UNKNOWN manifest unknown");
        assert_eq!(error_summary(b"plain text\n"), ": plain text");
        assert_eq!(error_summary(b""), "");
    }

    #[test]
    fn refuses_bad_settings() {
        let c = |host: &str, repo: &str, config: ClientConfig| Client::new(host, repo, config);
        assert!(c("localhost:5000", "a/b", ClientConfig::default()).is_ok());
        assert!(c("nohost", "a", ClientConfig::default()).is_err());
        assert!(c("localhost", "a?b", ClientConfig::default()).is_err());
        let zero = ClientConfig {
            max_ranges_per_request: 0,
            ..ClientConfig::default()
        };
        assert!(c("localhost", "a", zero).is_err());
        let ca = ClientConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..ClientConfig::default()
        };
        assert!(c("localhost", "a", ca).is_err());
    }

    #[test]
    fn refuses_bad_ranges_before_any_request() {
        // Nothing listens on port 9 of localhost; no request is made anyway.
        let client = Client::new(
            "127.0.0.1:9",
            "a",
            ClientConfig {
                tls_verify: false,
                retries: 0,
                ..ClientConfig::default()
            },
        )
        .unwrap();
        let d = Digest::of(b"x");
        for bad in [
            vec![(0, 0)],
            vec![(5, 3)],
            vec![(0, 11)],
            vec![(4, 6), (0, 2)],
            vec![(0, 3), (2, 4)],
        ] {
            let e = client.get_ranges(&d, 10, &bad).unwrap_err();
            assert!(e.to_string().contains("cannot read bytes"), "{e}");
        }
        assert_eq!(client.stats().requests, 0);
    }
}
