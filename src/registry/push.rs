//! Uploading blobs (monolithic, skipped when the repository has them) and
//! manifests.

use std::io::{Read, Seek};

use ureq::http::Response;
use ureq::Body;

use super::client::*;
use super::reference::Target;
use super::transport::*;
use crate::digest::Digest;
use crate::error::Result;

impl Client {
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
}
