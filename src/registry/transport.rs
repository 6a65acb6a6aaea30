//! Sending requests: retries with backoff after connection errors, 5xx and
//! 429 answers, `Retry-After`, the 401 handshake once, errors that name the
//! URL and status, bodies read with limits and counted.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ureq::http::{self, Response};
use ureq::Body;

use super::client::*;
use crate::error::{Error, RegistryErrorCode, Result};

/// A request body that can be sent again on a retry.
pub(super) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes read from the start of the reader.
    Reader(&'a mut dyn ReadSeek, u64),
}

pub(super) trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

pub(super) struct Request<'a> {
    pub(super) method: &'static str,
    pub(super) url: String,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Payload<'a>,
}

impl<'a> Request<'a> {
    pub(super) fn new(method: &'static str, url: String) -> Self {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Payload::Empty,
        }
    }
    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub(super) fn body(mut self, body: Payload<'a>) -> Self {
        self.body = body;
        self
    }
}

/// An error about `url` that is not an error status of the registry's.
pub(super) fn url_error(url: &str, why: impl Into<String>) -> Error {
    Error::registry(url, None, why)
}

/// A reader that adds what it reads to a counter.
pub(super) struct Counting<'c, R> {
    pub(super) inner: R,
    pub(super) counter: &'c AtomicU64,
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
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A response's `Retry-After` in seconds (the HTTP-date form is ignored:
/// the backoff applies).
pub(super) fn retry_after(resp: &Response<Body>) -> Option<Duration> {
    let value = resp.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Whether a transport error is worth a retry: connection errors and
/// timeouts are, a refused certificate is not.
pub(super) fn transient(e: &ureq::Error) -> bool {
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
pub(super) fn query_escape(s: &str) -> String {
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

pub(super) fn header<'r>(resp: &'r Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Bytes of an error body kept for a message.
pub(super) const MAX_ERROR_BODY: u64 = 4 << 10;

impl Client {
    /// `resp` if its status is one of `ok`, else an error naming the URL,
    /// the status and the registry's error codes.
    pub(super) fn expect(
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
        let body = ErrorBody::parse(&body);
        Err(Error::Registry {
            url: url.to_string(),
            status: Some(status.as_u16()),
            message: format!("{method}: {}{}", status_text(status), body.summary),
            codes: body.codes,
        })
    }

    /// A response body, at most `limit` bytes (more is an error).
    pub(super) fn read_body(&self, resp: Response<Body>, limit: u64, url: &str) -> Result<Vec<u8>> {
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
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        self.config.backoff.saturating_mul(1 << attempt.min(20))
    }

    pub(super) fn sleep_backoff(&self, attempt: u32) {
        std::thread::sleep(self.backoff(attempt));
    }

    /// Sends `request`, answering a 401 once with credentials or a token.
    pub(super) fn send(&self, request: &mut Request<'_>) -> Result<Response<Body>> {
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

    /// Sends `request`, again after a connection error, a 5xx or a 429, up
    /// to `retries` times with exponential backoff.
    pub(super) fn send_retrying(
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
                            status,
                            message,
                            codes,
                            ..
                        } = e
                        else {
                            unreachable!("expect gives registry errors")
                        };
                        return Err(Error::Registry {
                            url: request.url.clone(),
                            status,
                            message: format!("failed after {attempt} attempt{plural}: {message}"),
                            codes,
                        });
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
    pub(super) fn send_once(
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

pub(super) enum SendError {
    /// Not the network's fault: no retry.
    Local(Error),
    Transport(ureq::Error),
}

pub(super) fn status_text(status: http::StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// A registry's error answer body, parsed once: the codes it gives and a
/// summary for the message.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ErrorBody {
    /// The codes of `{"errors":[{"code":…}]}`, in order; empty for a body
    /// that is not such JSON.
    pub(super) codes: Vec<RegistryErrorCode>,
    /// `: CODE message; …` (at most five), else the body's start; empty
    /// for an empty body.
    pub(super) summary: String,
}

impl ErrorBody {
    pub(super) fn parse(body: &[u8]) -> ErrorBody {
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
            return ErrorBody {
                codes: Vec::new(),
                summary: String::new(),
            };
        }
        if let Ok(e) = serde_json::from_slice::<Errors>(body) {
            let list: Vec<String> = e
                .errors
                .iter()
                .take(5)
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect();
            return ErrorBody {
                codes: e
                    .errors
                    .iter()
                    .filter(|e| !e.code.is_empty())
                    .map(|e| RegistryErrorCode::parse(&e.code))
                    .collect(),
                summary: format!(": {}", list.join("; ")),
            };
        }
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
        ErrorBody {
            codes: Vec::new(),
            summary: format!(": {}", text.trim()),
        }
    }
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
        let summary = |body: &[u8]| ErrorBody::parse(body).summary;
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(summary(body), ": MANIFEST_UNKNOWN manifest unknown");
        assert_eq!(summary(b"plain text\n"), ": plain text");
        assert_eq!(summary(b""), "");
    }

    #[test]
    fn parses_registry_error_codes() {
        let body = br#"{"errors":[
            {"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"},
            {"code":"QUOTA_EXCEEDED","message":"over quota"}]}"#;
        let parsed = ErrorBody::parse(body);
        assert_eq!(
            parsed.codes,
            vec![
                RegistryErrorCode::ManifestBlobUnknown,
                RegistryErrorCode::Other("QUOTA_EXCEEDED".into()),
            ]
        );
        assert_eq!(
            parsed.summary,
            ": MANIFEST_BLOB_UNKNOWN blob unknown to registry; QUOTA_EXCEEDED over quota"
        );
        assert_eq!(parsed.codes[1].as_str(), "QUOTA_EXCEEDED");
        assert_eq!(
            RegistryErrorCode::parse("TOOMANYREQUESTS"),
            RegistryErrorCode::TooManyRequests
        );
        let plain = ErrorBody::parse(b"<html>502 Bad Gateway</html>");
        assert!(plain.codes.is_empty());
        assert_eq!(plain.summary, ": <html>502 Bad Gateway</html>");
    }
}
