//! The client of one repository of a registry: its settings, its
//! counters, and how it is made. What it does is in the sibling modules:
//! `transport` (requests, retries), `auth` (the 401 handshake), `pull`
//! (manifests and blobs), `ranges` (byte ranges), `push` (uploads).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::auth::Credentials;
use super::reference::{valid_host, RegistryRef};
use super::transport::*;
use crate::digest::Digest;
use crate::error::{Error, Result};

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
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) bytes_received: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
    pub(super) header_bytes_received: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) resumed_downloads: AtomicU64,
    pub(super) single_range_responses: AtomicU64,
    pub(super) multipart_responses: AtomicU64,
    pub(super) full_blob_fallbacks: AtomicU64,
    pub(super) range_fallbacks: AtomicU64,
}

pub(super) fn bump(c: &AtomicU64, n: u64) {
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
    pub(super) agent: ureq::Agent,
    /// `http://HOST` or `https://HOST`.
    pub(super) base: String,
    pub(super) host: String,
    pub(super) repository: String,
    pub(super) config: ClientConfig,
    /// The `Authorization` value sent with every request, once known.
    pub(super) authorization: Mutex<Option<String>>,
    pub(super) counters: Counters,
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

    /// The URL of `tail` (`manifests/TAG`, `blobs/DIGEST`) in this
    /// client's repository.
    pub fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repository)
    }

    pub(super) fn blob_url(&self, digest: &Digest) -> String {
        self.url(&format!("blobs/{digest}"))
    }

    /// Checks that the registry answers `GET /v2/` with 200 (authenticating
    /// if it asks).
    pub fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send(&mut Request::new("GET", url.clone()))?;
        self.expect(resp, "GET", &url, &[200]).map(drop)
    }
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
}
