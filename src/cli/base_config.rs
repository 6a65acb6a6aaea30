//! The configuration an image is built with, read as image builders hold
//! it: `podman inspect` / `docker inspect` output (a JSON array, the last
//! image taken), one inspect object (`Config`, `Annotations`,
//! `Architecture`, `Created`), an OCI image config (`config`,
//! `architecture`, `created`), or the runtime configuration alone (`Env`,
//! `Entrypoint`, `Cmd`, `User`, `WorkingDir`, `Labels`, ...).
//!
//! Then label and annotation edits as `chunkah build --label` gives them,
//! in order: `KEY=VALUE` sets, `KEY-` removes, `-` clears all.

use std::collections::BTreeMap;

use serde_json::Value;

use chunkah::error::{Error, Result};
use chunkah::oci::types::{parse_rfc3339, RuntimeConfig};

/// An image's configuration, as given to build it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BaseConfig {
    /// Env, Entrypoint, Cmd, User, WorkingDir, Labels, ...
    pub runtime: RuntimeConfig,
    /// Manifest annotations (an inspect object's `Annotations`).
    pub annotations: BTreeMap<String, String>,
    /// The architecture it names, as given (not normalised).
    pub architecture: Option<String>,
    /// Its creation time, seconds since the epoch.
    pub created: Option<i64>,
}

impl BaseConfig {
    /// Parses `json`; `what` names it in errors.
    pub fn parse(json: &[u8], what: &str) -> Result<Self> {
        let bad = |why: String| Error::malformed(what, why);
        let value: Value =
            serde_json::from_slice(json).map_err(|e| bad(format!("not JSON: {e}")))?;
        let value = match value {
            Value::Array(mut items) => items
                .pop()
                .ok_or_else(|| bad("an empty inspect array".into()))?,
            v => v,
        };
        let Value::Object(mut object) = value else {
            return Err(bad("neither an object nor an inspect array".into()));
        };
        let string = |v: Option<Value>, key: &str| -> Result<Option<String>> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(bad(format!("{key} is not a string"))),
            }
        };
        let created = |v: Option<Value>, key: &str| -> Result<Option<i64>> {
            match string(v, key)? {
                None => Ok(None),
                // Docker's zero time: no creation time.
                Some(s) if s.starts_with("0001-01-01") => Ok(None),
                Some(s) => parse_rfc3339(&s)
                    .map(Some)
                    .ok_or_else(|| bad(format!("{key} {s:?} is not an RFC 3339 time"))),
            }
        };
        let (runtime, annotations, architecture, created) = if object.contains_key("Config") {
            // An inspect object.
            let annotations = match object.remove("Annotations") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(v) => {
                    serde_json::from_value(v).map_err(|e| bad(format!("Annotations: {e}")))?
                }
            };
            (
                object.remove("Config").unwrap_or(Value::Null),
                annotations,
                string(object.remove("Architecture"), "Architecture")?,
                created(object.remove("Created"), "Created")?,
            )
        } else if object.get("config").is_some_and(Value::is_object) {
            // An OCI image config.
            (
                object.remove("config").unwrap_or(Value::Null),
                BTreeMap::new(),
                string(object.remove("architecture"), "architecture")?,
                created(object.remove("created"), "created")?,
            )
        } else {
            (Value::Object(object), BTreeMap::new(), None, None)
        };
        let runtime = match runtime {
            Value::Null => RuntimeConfig::default(),
            v => serde_json::from_value(v)
                .map_err(|e| bad(format!("not an image runtime configuration: {e}")))?,
        };
        Ok(BaseConfig {
            runtime,
            annotations,
            architecture,
            created,
        })
    }
}

/// One edit of a label or annotation map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapEdit {
    /// `KEY=VALUE`: set.
    Set(String, String),
    /// `KEY-`: remove.
    Remove(String),
    /// `-`: remove all.
    Clear,
}

impl MapEdit {
    /// Parses `KEY=VALUE` (split at the first `=`; the key not empty),
    /// `KEY-` or `-`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s.split_once('=') {
            Some(("", _)) => Err(format!("{s:?}: the key is empty")),
            Some((k, v)) => Ok(MapEdit::Set(k.to_string(), v.to_string())),
            None if s == "-" => Ok(MapEdit::Clear),
            None => match s.strip_suffix('-') {
                Some(k) if !k.is_empty() => Ok(MapEdit::Remove(k.to_string())),
                _ => Err(format!("{s:?} is not KEY=VALUE, KEY- or -")),
            },
        }
    }

    /// Applies `edits` to `map`, in order.
    pub fn apply_all(map: &mut BTreeMap<String, String>, edits: &[MapEdit]) {
        for e in edits {
            match e {
                MapEdit::Set(k, v) => {
                    map.insert(k.clone(), v.clone());
                }
                MapEdit::Remove(k) => {
                    map.remove(k);
                }
                MapEdit::Clear => map.clear(),
            }
        }
    }
}

/// The GOARCH name of an architecture as tools spell it (`x86_64` →
/// `amd64`, `aarch64` → `arm64`, ...); other names as they are.
/// `s` if it can be an architecture name (for clap: `--arch`).
pub fn parse_arch(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    match ok {
        true => Ok(s.to_string()),
        false => Err(format!(
            "{s:?} is not an architecture name (amd64, arm64, x86_64, aarch64, ...)"
        )),
    }
}

/// The GOARCH name for `arch` (`x86_64` is `amd64`, `aarch64` is `arm64`).
pub fn normalize_architecture(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i486" | "i586" | "i686" | "x86" => "386",
        "powerpc64le" | "ppc64el" | "powerpc64" => "ppc64le",
        "armv7l" | "armhf" | "armv7" => "arm",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_config_is_read() {
        let inspect =
            br#"[{"Config":{"Cmd":["x"]}},{"Config":{"Entrypoint":["/bin/sh"],"Labels":{"a":"1"}},
            "Annotations":{"n":"v"},"Architecture":"arm64","Created":"2023-11-14T22:13:20.5Z"}]"#;
        let c = BaseConfig::parse(inspect, "inspect").unwrap();
        assert_eq!(c.runtime.labels["a"], "1");
        assert!(c.runtime.other.contains_key("Entrypoint") && !c.runtime.other.contains_key("Cmd"));
        assert_eq!(c.annotations["n"], "v");
        assert_eq!(
            (c.architecture.as_deref(), c.created),
            (Some("arm64"), Some(1_700_000_000))
        );
        let oci = br#"{"architecture":"amd64","created":"2023-11-14T22:13:20Z","config":{"User":"1000"}}"#;
        let c = BaseConfig::parse(oci, "oci").unwrap();
        assert_eq!(c.runtime.other["User"], "1000");
        assert_eq!(
            (c.architecture.as_deref(), c.created),
            (Some("amd64"), Some(1_700_000_000))
        );
        let bare = br#"{"Entrypoint":["/bin/bash"],"Cmd":["-c","echo hi"],"WorkingDir":"/root"}"#;
        let c = BaseConfig::parse(bare, "bare").unwrap();
        assert_eq!(c.runtime.other.len(), 3);
        assert_eq!(c.created, None);
        for bad in [
            &b"[]"[..],
            b"{",
            b"3",
            br#"{"Config":{},"Created":"yesterday"}"#,
        ] {
            assert!(BaseConfig::parse(bad, "bad").is_err());
        }
    }

    #[test]
    fn label_edits_apply_in_order() {
        let mut m: BTreeMap<String, String> = [("base1", "x"), ("base2", "y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let edits: Vec<MapEdit> = ["base1-", "new=1", "new=2", "eq=a=b", "empty="]
            .iter()
            .map(|s| MapEdit::parse(s).unwrap())
            .collect();
        MapEdit::apply_all(&mut m, &edits);
        let got: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [("base2", "y"), ("empty", ""), ("eq", "a=b"), ("new", "2")]
        );
        MapEdit::apply_all(
            &mut m,
            &[MapEdit::Clear, MapEdit::Set("k".into(), "v".into())],
        );
        assert_eq!(m.len(), 1);
        for bad in ["=v", "foo", "", "-x-"] {
            // "-x-" removes the key "-x": allowed; the rest are not.
            assert_eq!(MapEdit::parse(bad).is_err(), bad != "-x-", "{bad}");
        }
    }
}
