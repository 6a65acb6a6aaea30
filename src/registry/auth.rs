//! Registry credentials, `auth.json` files and `WWW-Authenticate` challenges.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, Result};

/// The largest auth file read, in bytes.
const MAX_AUTH_FILE_BYTES: u64 = 1 << 20;

/// What a client authenticates with.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: only anonymous access.
    #[default]
    Anonymous,
    /// A user name and password, sent as HTTP basic authentication to the
    /// registry or to its token server.
    Basic {
        /// The user name.
        user: String,
        /// The password (never printed by `Debug`).
        password: String,
    },
    /// The entry for the registry's host in the first of these `auth.json`
    /// files that has one (missing files are skipped); anonymous if none
    /// has. Resolved when a [`crate::registry::Client`] is made.
    AuthFiles(Vec<PathBuf>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::AuthFiles(files) => f.debug_tuple("AuthFiles").field(files).finish(),
            Credentials::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<hidden>")
                .finish(),
        }
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header, if there are credentials.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Anonymous | Credentials::AuthFiles(_) => None,
            Credentials::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
        }
    }

    /// These credentials for `host`: [`Credentials::AuthFiles`] read,
    /// the others as they are.
    pub fn resolve(&self, host: &str) -> Result<Self> {
        match self {
            Credentials::AuthFiles(files) => Credentials::from_files(host, files),
            other => Ok(other.clone()),
        }
    }

    /// Credentials for `host` from the first of `files` that has an entry for
    /// it. Missing files are skipped; unreadable or malformed ones are errors.
    pub fn from_files(host: &str, files: &[PathBuf]) -> Result<Self> {
        for file in files {
            let bytes = match read_bounded(file) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(file, e)),
            };
            if let Some(c) = credentials_in(file, &bytes, host)? {
                return Ok(c);
            }
        }
        Ok(Credentials::Anonymous)
    }
}

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_AUTH_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_AUTH_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "auth file larger than 1 MiB",
        ));
    }
    Ok(bytes)
}

/// The auth files looked at, in order, given a way to read the environment.
pub fn default_auth_files(env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = env("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        files.push(Path::new(&d).join("containers/auth.json"));
    }
    if let Some(home) = env("HOME").filter(|v| !v.is_empty()) {
        let home = Path::new(&home);
        files.push(home.join(".config/containers/auth.json"));
        files.push(home.join(".docker/config.json"));
    }
    files
}

/// `HOST` from an `auths` key: `HOST`, `https://HOST`, `http://HOST/v1/`.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    k.strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k)
}

/// The entry for `host` in the `auths` map of an auth file's JSON.
fn credentials_in(file: &Path, bytes: &[u8], host: &str) -> Result<Option<Credentials>> {
    let bad = |why: String| Error::malformed(file.display(), why);
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("bad JSON: {e}")))?;
    let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let entry = auths
        .get(host)
        .or_else(|| auths.iter().find(|(k, _)| key_host(k) == host).map(|e| e.1));
    let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(|a| a.as_str()) else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| bad(format!("the auth of {host} is not base64: {e}")))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| bad(format!("the auth of {host} is not UTF-8")))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad(format!("the auth of {host} is not user:password")))?;
    Ok(Some(Credentials::Basic {
        user: user.to_string(),
        password: password.to_string(),
    }))
}

/// A `WWW-Authenticate` challenge the client can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (one challenge: what registries
/// send). `None` for schemes other than Basic and Bearer.
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params)?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `name=token` or `name="quoted \" string"`, separated by commas.
fn parse_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().to_string();
        if name.is_empty() || out.len() >= 32 {
            return None;
        }
        rest = rest[eq + 1..].trim_start();
        let mut value = String::new();
        if let Some(q) = rest.strip_prefix('"') {
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &q[end?..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value.push_str(rest[..end].trim());
            rest = &rest[end..];
        }
        out.push((name, value));
        rest = rest.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://x/t, scope="a\"b""#),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: None,
                scope: Some("a\"b".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn reads_auth_files_in_order() {
        let dir = std::env::temp_dir().join(format!("chunkah-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let first = dir.join("first.json");
        let second = dir.join("second.json");
        std::fs::write(
            &first,
            format!(
                r#"{{"auths":{{"https://a.example:5000":{{"auth":"{}"}}}}}}"#,
                b64("u1:p:1")
            ),
        )
        .unwrap();
        std::fs::write(
            &second,
            format!(
                r#"{{"auths":{{"a.example:5000":{{"auth":"{}"}},"b.example":{{"auth":"{}"}}}}}}"#,
                b64("u2:p2"),
                b64("u3:p3")
            ),
        )
        .unwrap();
        let files = [dir.join("missing.json"), first.clone(), second.clone()];
        let basic = |u: &str, p: &str| Credentials::Basic {
            user: u.into(),
            password: p.into(),
        };
        assert_eq!(
            Credentials::from_files("a.example:5000", &files).unwrap(),
            basic("u1", "p:1")
        );
        assert_eq!(
            Credentials::from_files("b.example", &files).unwrap(),
            basic("u3", "p3")
        );
        assert_eq!(
            Credentials::from_files("c.example", &files).unwrap(),
            Credentials::Anonymous
        );
        assert!(!format!("{:?}", basic("u", "secret")).contains("secret"));
        std::fs::write(&first, "{not json").unwrap();
        let e = Credentials::from_files("a.example:5000", &files).unwrap_err();
        assert!(e.to_string().contains("first.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();

        let env = |k: &str| match k {
            "REGISTRY_AUTH_FILE" => Some(OsString::from("/r.json")),
            "HOME" => Some(OsString::from("/home/u")),
            _ => None,
        };
        assert_eq!(
            default_auth_files(env),
            vec![
                PathBuf::from("/r.json"),
                PathBuf::from("/home/u/.config/containers/auth.json"),
                PathBuf::from("/home/u/.docker/config.json"),
            ]
        );
    }
}
