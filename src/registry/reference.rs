//! Registry references: `docker://HOST[:PORT]/REPO[/MORE]:TAG` and
//! `docker://HOST[:PORT]/REPO@sha256:HEX`.

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::types::valid_tag;

/// What a reference points at inside a repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A tag (`:v1`).
    Tag(String),
    /// A manifest digest (`@sha256:…`).
    Digest(Digest),
}

impl Target {
    /// The last component of the manifest URL: the tag or `sha256:HEX`.
    pub fn as_url_part(&self) -> String {
        match self {
            Target::Tag(t) => t.clone(),
            Target::Digest(d) => d.to_string(),
        }
    }
}

impl fmt::Display for Target {
    /// `:TAG` or `@sha256:HEX`, as written after the repository.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tag(t) => write!(f, ":{t}"),
            Target::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// An image in a registry: `docker://HOST[:PORT]/REPO[/MORE](:TAG|@sha256:HEX)`.
///
/// There is no default registry and no default tag: the host must look like
/// one (contain a `.` or a `:`, or be `localhost`, as docker decides), and a
/// tag or digest must be given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegistryRef {
    /// `HOST[:PORT]`.
    pub host: String,
    /// The repository path (`library/debian`).
    pub repository: String,
    /// The tag or digest.
    pub target: Target,
}

/// The scheme a registry reference starts with.
pub const DOCKER_SCHEME: &str = "docker://";

impl RegistryRef {
    /// Parses `docker://HOST[:PORT]/REPO[/MORE]:TAG` or
    /// `docker://HOST[:PORT]/REPO@sha256:HEX`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("registry reference {s:?}: {why}"));
        let rest = s.strip_prefix(DOCKER_SCHEME).ok_or_else(|| {
            bad("expected docker://HOST/REPO:TAG or docker://HOST/REPO@sha256:HEX")
        })?;
        let (host, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("expected HOST/REPO after docker://"))?;
        if !valid_host(host) {
            return Err(bad(
                "the registry host must be HOST[:PORT] containing a '.' or ':', or localhost",
            ));
        }
        let (repository, target) = if let Some((repo, digest)) = rest.split_once('@') {
            let digest = Digest::parse(digest)
                .ok_or_else(|| bad("a digest is sha256: and 64 lower-case hex digits"))?;
            (repo, Target::Digest(digest))
        } else {
            let slash = rest.rfind('/').map_or(0, |i| i + 1);
            let colon = rest[slash..]
                .rfind(':')
                .ok_or_else(|| bad("a tag (:TAG) or a digest (@sha256:HEX) is required"))?;
            let (repo, tag) = (&rest[..slash + colon], &rest[slash + colon + 1..]);
            if !valid_tag(tag) {
                return Err(bad(
                    "a tag is 1 to 128 characters of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
            (repo, Target::Tag(tag.to_string()))
        };
        if !valid_repository(repository) {
            return Err(bad(
                "a repository is '/'-separated components of [a-z0-9]+([._-][a-z0-9]+)*, \
                 at most 255 characters",
            ));
        }
        Ok(RegistryRef {
            host: host.to_string(),
            repository: repository.to_string(),
            target,
        })
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{DOCKER_SCHEME}{}/{}{}",
            self.host, self.repository, self.target
        )
    }
}

/// `NAME[:PORT]` where NAME is DNS-like (or an IPv4 address) and contains a
/// `.`, or there is a port, or NAME is `localhost`.
pub(crate) fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        if p.parse::<u32>().map_or(true, |p| p == 0 || p > 65535) {
            return false;
        }
    }
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    labels_ok && (name.contains('.') || port.is_some() || name == "localhost")
}

/// Components of `[a-z0-9]+([._-][a-z0-9]+)*` separated by `/`.
fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.split(['.', '_', '-']).all(|alnum| {
                    !alnum.is_empty()
                        && alnum
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parses_and_displays_tags_and_digests() {
        let r = RegistryRef::parse("docker://127.0.0.1:5000/sample:v1").unwrap();
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository, "sample");
        assert_eq!(r.target, Target::Tag("v1".into()));
        let r = RegistryRef::parse("docker://quay.io/a/b-c/d_e.f:1.0-rc_1").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str()),
            ("quay.io", "a/b-c/d_e.f")
        );
        let s = format!("docker://localhost/x/y@sha256:{HEX}");
        let r = RegistryRef::parse(&s).unwrap();
        assert_eq!(r.host, "localhost");
        assert_eq!(r.target.as_url_part(), format!("sha256:{HEX}"));
        for ok in [
            "docker://127.0.0.1:5000/sample:v1",
            "docker://localhost:5000/a/b:latest",
            "docker://registry.example.com/library/debian:12",
            &s,
        ] {
            assert_eq!(RegistryRef::parse(ok).unwrap().to_string(), ok);
        }
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "sample:v1",
            "oci:dir:v1",
            "docker://",
            "docker://sample:v1",
            "docker://library/debian:12",
            "docker://myhost/debian:12",
            "docker://localhost/debian",
            "docker://localhost/debian:",
            "docker://localhost/debian:-x",
            "docker://localhost/debian:a/b",
            "docker://localhost/Debian:1",
            "docker://localhost/deb__ian:1",
            "docker://localhost/debian.:1",
            "docker://localhost//debian:1",
            "docker://localhost/debian/:1",
            "docker://localhost/:1",
            "docker://localhost:0/debian:1",
            "docker://localhost:99999/debian:1",
            "docker://localhost:/debian:1",
            "docker://-bad.example/debian:1",
            "docker://localhost/debian@sha256:abc",
            "docker://localhost/debian@sha512:abc",
            &format!("docker://localhost/debian@sha256:{}", HEX.to_uppercase()),
            &format!("docker://localhost/{}:1", "a".repeat(256)),
        ] {
            assert!(RegistryRef::parse(bad).is_err(), "{bad}");
        }
        let e = RegistryRef::parse("docker://localhost/debian").unwrap_err();
        assert!(e.to_string().contains("tag"), "{e}");
    }
}
