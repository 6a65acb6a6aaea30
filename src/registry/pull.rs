//! Reading manifests and whole blobs, checked against their digests;
//! downloads resumed where they broke.

use std::io::{self, Read, Write};

use sha2::Digest as _;
use ureq::http::Response;
use ureq::Body;

use super::client::*;
use super::multipart::parse_content_range;
use super::reference::Target;
use super::transport::*;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::types::{
    DOCKER_INDEX_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    MAX_JSON_BYTES,
};

/// The manifest media types asked for.
const MANIFEST_ACCEPT: [&str; 4] = [
    MANIFEST_MEDIA_TYPE,
    INDEX_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
    DOCKER_INDEX_MEDIA_TYPE,
];

impl Client {
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

    /// Whether the repository has the manifest `digest` (`HEAD`).
    pub fn manifest_exists(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("manifests/{digest}"));
        let resp = self.send(
            &mut Request::new("HEAD", url.clone()).header("Accept", MANIFEST_ACCEPT.join(", ")),
        )?;
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
        let mut download = Download {
            url: self.blob_url(digest),
            size,
            writer,
            hasher: sha2::Sha256::new(),
            received: 0,
            resumes: 0,
        };
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let (resp, skip) = self.request_rest(&download)?;
            match self.copy_answer(resp, skip, &mut download, &mut buf)? {
                Transfer::Done => break,
                Transfer::Resume => continue,
            }
        }
        download.finish(digest)
    }

    /// Asks for the bytes of the blob `download` has not received yet; the
    /// answer, and how many of its first bytes to skip (all received, when
    /// the registry sends the blob from its start).
    fn request_rest(&self, download: &Download<'_>) -> Result<(Response<Body>, u64)> {
        let (url, received) = (&download.url, download.received);
        let mut request = Request::new("GET", url.clone());
        if received > 0 {
            request = request.header("Range", format!("bytes={received}-"));
        }
        let resp = self.send(&mut request)?;
        let resp = self.expect(resp, "GET", url, &[200, 206])?;
        if resp.status() != 206 {
            return Ok((resp, received));
        }
        let range = header(&resp, "content-range").and_then(parse_content_range);
        if received == 0 || range.map(|r| r.start) != Some(received) {
            return Err(url_error(
                url,
                format!(
                    "asked for bytes {received}- and got Content-Range {:?}",
                    header(&resp, "content-range").unwrap_or("")
                ),
            ));
        }
        Ok((resp, 0))
    }

    /// Copies the answer `resp` (its first `skip` bytes left out) into the
    /// download, through `buf`, until it ends or breaks (then the download
    /// is resumed after a backoff, at most `retries` times).
    fn copy_answer(
        &self,
        resp: Response<Body>,
        mut skip: u64,
        download: &mut Download<'_>,
        buf: &mut [u8],
    ) -> Result<Transfer> {
        let mut body = Counting {
            inner: resp.into_body().into_reader(),
            counter: &self.counters.bytes_received,
        };
        loop {
            let n = match body.read(buf) {
                Ok(0) => return Ok(Transfer::Done),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let (received, size, resumes) =
                        (download.received, download.size, download.resumes);
                    if resumes >= self.config.retries {
                        return Err(url_error(
                            &download.url,
                            format!(
                                "download interrupted at byte {received} of {size} \
                                 after {resumes} resumptions: {e}"
                            ),
                        ));
                    }
                    self.sleep_backoff(resumes);
                    download.resumes += 1;
                    bump(&self.counters.resumed_downloads, 1);
                    return Ok(Transfer::Resume);
                }
            };
            let mut chunk = &buf[..n];
            if skip > 0 {
                let s = skip.min(n as u64) as usize;
                skip -= s as u64;
                chunk = &chunk[s..];
            }
            download.take(chunk)?;
        }
    }
}

/// How copying one answer of a download ended.
enum Transfer {
    /// The answer ended.
    Done,
    /// It broke: ask for the rest.
    Resume,
}

/// A blob being downloaded: where its bytes go, and what came so far.
struct Download<'w> {
    url: String,
    size: u64,
    writer: &'w mut dyn Write,
    hasher: sha2::Sha256,
    received: u64,
    resumes: u32,
}

impl Download<'_> {
    /// Writes and hashes the next bytes of the blob; more than its size
    /// is an error.
    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        if self.received + chunk.len() as u64 > self.size {
            return Err(url_error(
                &self.url,
                format!(
                    "the registry sent more than the {} bytes expected",
                    self.size
                ),
            ));
        }
        self.writer.write_all(chunk).map_err(Error::Stream)?;
        self.hasher.update(chunk);
        self.received += chunk.len() as u64;
        Ok(())
    }

    /// Checks the whole blob came: its size, and its sha256 against `digest`.
    fn finish(self, digest: &Digest) -> Result<()> {
        let (url, size, received) = (&self.url, self.size, self.received);
        if received != size {
            return Err(url_error(
                url,
                format!("the registry sent {received} bytes, expected {size}"),
            ));
        }
        let got = Digest(self.hasher.finalize().into());
        if got != *digest {
            return Err(Error::digest_mismatch(
                format!("{url}: the bytes served"),
                digest,
                got,
            ));
        }
        Ok(())
    }
}
