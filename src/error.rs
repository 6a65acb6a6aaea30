//! The library's one error type.
//!
//! Every variant carries what a caller needs to act on it without parsing
//! text: the path of a file that could not be read ([`Error::Io`]), the
//! thing that does not parse and why ([`Error::Malformed`]), what does not
//! match its digest and both digests ([`Error::DigestMismatch`]), the URL,
//! HTTP status and error codes of a registry failure ([`Error::Registry`]). The messages are
//! written to be printed as they are, one cause after the other.

use std::fmt::Display;
use std::path::PathBuf;

/// Everything that can go wrong in chunkah's library.
///
/// The enum is non-exhaustive: later stages add variants without breaking
/// callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option is out of range or inconsistent (a usage mistake).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A backend was requested that this build or CPU cannot run.
    #[error("backend {backend} is not available: {reason}")]
    BackendUnavailable {
        /// The backend's name.
        backend: &'static str,
        /// Why it cannot run here.
        reason: String,
    },

    /// A name did not parse as a backend or algorithm.
    #[error("unknown {what} {value:?} (expected one of: {expected})")]
    UnknownName {
        /// What kind of name was expected.
        what: &'static str,
        /// What was given.
        value: String,
        /// The accepted names.
        expected: &'static str,
    },

    /// An I/O error on a file or directory of this machine.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned: a real path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The lock that guards an image layout or archive against other
    /// writers could not be taken.
    #[error("{what}: cannot take the lock {}: {source}", path.display())]
    Lock {
        /// The layout or archive guarded.
        what: String,
        /// The lock file.
        path: PathBuf,
        /// Why the lock could not be taken.
        #[source]
        source: std::io::Error,
    },

    /// An I/O error on a stream that has no path (a pipe).
    #[error("reading stream: {0}")]
    Stream(#[source] std::io::Error),

    /// The caller asked the work to stop (Ctrl-C in the CLI).
    #[error("interrupted")]
    Cancelled,

    /// Input that does not parse or breaks the rules of its format: an image
    /// (manifest, config, index, layer), a tarball, a chunk index.
    #[error("{what}: {why}")]
    Malformed {
        /// What is malformed: a path, a reference and the part of it
        /// (`oci:out:v1 layer 3 (sha256:…)`), a URL.
        what: String,
        /// What is wrong with it.
        why: String,
    },

    /// Content that does not match the digest it was named by.
    #[error("{what}: digest mismatch: expected {expected}, got {got}")]
    DigestMismatch {
        /// What was checked (a blob, a frame, a layer's uncompressed tar).
        what: String,
        /// The digest it should have (`sha256:…`, or a BLAKE3 chunk id).
        expected: String,
        /// The digest of what was read.
        got: String,
    },

    /// A registry request failed: the registry answered with an error
    /// status, could not be reached, or sent something unusable.
    #[error("{url}: {message}")]
    Registry {
        /// The URL asked.
        url: String,
        /// The HTTP status, when the registry answered.
        status: Option<u16>,
        /// What happened (with the registry's own error codes, if any).
        message: String,
        /// The error codes of the registry's answer (`{"errors":[{"code":…}]}`),
        /// in its order; empty when it gave none.
        codes: Vec<RegistryErrorCode>,
    },

    /// Something valid that this build or this input cannot do (a registry
    /// reference in a build without the `registry` feature, a layer media
    /// type chunkah cannot read).
    #[error("{what}: {why}")]
    Unsupported {
        /// What was asked for.
        what: String,
        /// Why it cannot be done.
        why: String,
    },

    /// A package database (dpkg, apk, pacman, rpm) has content that does not parse.
    #[error("{}:{line}: {message}", path.display())]
    PackageDb {
        /// The database file.
        path: PathBuf,
        /// The line concerned, counted from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },

    /// An image was published, but an artifact to publish beside it (a
    /// binary delta, an SBOM) could not be made (the image stands; the
    /// artifact is missing).
    #[error("{image} was published, but not {artifact}")]
    AfterPublish {
        /// The image published.
        image: String,
        /// What is missing: "the delta from BASE", "its spdx-json SBOM".
        artifact: String,
        /// Why it could not be made.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// [`Error::Malformed`]: `what` is wrong because of `why`.
    pub fn malformed(what: impl Display, why: impl Into<String>) -> Self {
        Error::Malformed {
            what: what.to_string(),
            why: why.into(),
        }
    }

    /// [`Error::DigestMismatch`].
    pub fn digest_mismatch(what: impl Display, expected: impl Display, got: impl Display) -> Self {
        Error::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// [`Error::Registry`].
    pub fn registry(
        url: impl Into<String>,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        Error::Registry {
            url: url.into(),
            status,
            message: message.into(),
            codes: Vec::new(),
        }
    }

    /// [`Error::Unsupported`].
    pub fn unsupported(what: impl Display, why: impl Into<String>) -> Self {
        Error::Unsupported {
            what: what.to_string(),
            why: why.into(),
        }
    }
}

/// An error code of the OCI distribution spec, as a registry gives it in
/// an error answer's body (`{"errors":[{"code":"BLOB_UNKNOWN",…}]}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegistryErrorCode {
    /// `BLOB_UNKNOWN`: the repository has no such blob.
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload failed.
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: the upload session is unknown.
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: what was sent does not match its digest.
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a blob (or manifest) the manifest references
    /// is not in the repository.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: the manifest does not parse or breaks the rules.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: the repository has no such manifest.
    ManifestUnknown,
    /// `NAME_INVALID`: the repository name is not valid.
    NameInvalid,
    /// `NAME_UNKNOWN`: the registry has no such repository.
    NameUnknown,
    /// `SIZE_INVALID`: the content's length does not match.
    SizeInvalid,
    /// `UNAUTHORIZED`: credentials are needed.
    Unauthorized,
    /// `DENIED`: access to the resource is denied.
    Denied,
    /// `UNSUPPORTED`: the operation is not supported.
    Unsupported,
    /// `TOOMANYREQUESTS`: too many requests.
    TooManyRequests,
    /// A code the spec does not list, as the registry wrote it.
    Other(String),
}

impl RegistryErrorCode {
    /// The code the registry wrote, as one of the spec's or [`Self::Other`].
    pub fn parse(code: &str) -> Self {
        use RegistryErrorCode::*;
        match code {
            "BLOB_UNKNOWN" => BlobUnknown,
            "BLOB_UPLOAD_INVALID" => BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => BlobUploadUnknown,
            "DIGEST_INVALID" => DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => ManifestBlobUnknown,
            "MANIFEST_INVALID" => ManifestInvalid,
            "MANIFEST_UNKNOWN" => ManifestUnknown,
            "NAME_INVALID" => NameInvalid,
            "NAME_UNKNOWN" => NameUnknown,
            "SIZE_INVALID" => SizeInvalid,
            "UNAUTHORIZED" => Unauthorized,
            "DENIED" => Denied,
            "UNSUPPORTED" => Unsupported,
            "TOOMANYREQUESTS" => TooManyRequests,
            other => Other(other.to_string()),
        }
    }

    /// The code as the spec writes it.
    pub fn as_str(&self) -> &str {
        use RegistryErrorCode::*;
        match self {
            BlobUnknown => "BLOB_UNKNOWN",
            BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            DigestInvalid => "DIGEST_INVALID",
            ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ManifestInvalid => "MANIFEST_INVALID",
            ManifestUnknown => "MANIFEST_UNKNOWN",
            NameInvalid => "NAME_INVALID",
            NameUnknown => "NAME_UNKNOWN",
            SizeInvalid => "SIZE_INVALID",
            Unauthorized => "UNAUTHORIZED",
            Denied => "DENIED",
            Unsupported => "UNSUPPORTED",
            TooManyRequests => "TOOMANYREQUESTS",
            Other(code) => code,
        }
    }
}

impl Display for RegistryErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Result` with chunkah's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
