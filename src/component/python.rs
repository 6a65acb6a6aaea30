//! Python distributions, as pip and every PEP 376 installer record them:
//! `<name>-<version>.dist-info/` beside the packages in a `site-packages`
//! or `dist-packages` directory (of the system's Python, `/usr/local`, or a
//! virtual environment anywhere in the tree).
//!
//! From `METADATA` (email-style headers): `Name`, `Version` and the licence
//! (`License-Expression`, else a one-line `License`). From `RECORD` (CSV:
//! path, hash, size): every file the distribution installed, relative to the
//! directory that holds the `.dist-info` (scripts as `../../../bin/NAME`).
//! The component is `pypi:<name>`, the name normalised as PEP 503 says
//! (lower case, runs of `-`, `_`, `.` as one `-`).
//!
//! A distribution whose metadata cannot be read is left out with a warning
//! naming the file: one broken `.dist-info` does not hide the others, nor
//! the tree's other databases.

use std::path::Path;

use super::{
    lines, malformed, push_component, utf8, Database, InstalledPackage, OwnershipBuilder, RootFs,
};
use crate::Result;

pub(super) fn read(tree: &mut RootFs, out: &mut OwnershipBuilder) -> Result<()> {
    for site in tree.language_dirs()?.python.clone() {
        let Some(names) = tree.list(&site)? else {
            continue;
        };
        for name in names.iter().filter(|n| n.ends_with(b".dist-info")) {
            let mut dist = site.clone();
            push_component(&mut dist, name);
            if tree.node(&dist)? != Some(super::Node::Dir) {
                continue;
            }
            if let Err(e) = read_distribution(tree, out, &site, &dist) {
                out.warnings
                    .push(format!("{e}; the Python distribution is left out"));
            }
        }
    }
    Ok(())
}

/// Reads the distribution in `dist` (a `.dist-info` directory in `site`).
fn read_distribution(
    tree: &mut RootFs,
    out: &mut OwnershipBuilder,
    site: &[u8],
    dist: &[u8],
) -> Result<()> {
    let file = |name: &[u8]| {
        let mut p = dist.to_vec();
        push_component(&mut p, name);
        p
    };
    let metadata_path = file(b"METADATA");
    let Some((metadata_host, metadata)) = tree.read_file(&metadata_path)? else {
        return Err(malformed(&tree.host_path(&metadata_path), 0, "missing"));
    };
    let package = package(&metadata_host, &metadata)?;
    let record_path = file(b"RECORD");
    let record = tree.read_file(&record_path)?;
    let by = out.package(package, &metadata_host);
    // The .dist-info itself is the distribution's, whatever RECORD says.
    out.claim_listed(dist.to_vec(), by);
    let Some((record_host, record)) = record else {
        return Ok(());
    };
    for (number, line) in lines(&record) {
        let Some(raw) = first_field(line) else {
            continue;
        };
        let joined = join(site, &raw)
            .ok_or_else(|| malformed(&record_host, number, "path climbs out of the root"))?;
        let p = super::database_path(&joined, &record_host, number)?;
        let resolved = tree.resolve_parent(&p)?;
        out.claim_listed(resolved, by);
    }
    Ok(())
}

/// The distribution `METADATA` describes.
fn package(path: &Path, data: &[u8]) -> Result<InstalledPackage> {
    let headers = headers(data);
    let field = |name: &str| -> Result<Option<String>> {
        match headers
            .iter()
            .find(|(k, _, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        {
            Some((_, v, line)) => Ok(Some(utf8(v, path, *line)?.trim().to_string())),
            None => Ok(None),
        }
    };
    let name = field("Name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| malformed(path, 1, "no Name header"))?;
    let license = match field("License-Expression")? {
        Some(l) if !l.is_empty() => Some(l),
        _ => field("License")?.filter(|l| !l.is_empty() && l.len() <= 200 && !l.contains('\n')),
    };
    Ok(InstalledPackage {
        database: Database::Python,
        component: format!("pypi:{}", normalise_name(&name)),
        version: field("Version")?.filter(|v| !v.is_empty()),
        architecture: None,
        source: None,
        license,
        name,
        paths: Vec::new(),
        build_time: None,
        changelog_times: Vec::new(),
    })
}

/// The headers of an email-style message (up to the first blank line):
/// name, value (continuation lines joined by `\n`), line number.
fn headers(data: &[u8]) -> Vec<(&[u8], Vec<u8>, usize)> {
    let mut out: Vec<(&[u8], Vec<u8>, usize)> = Vec::new();
    for (number, line) in lines(data) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(last) = out.last_mut() {
                last.1.push(b'\n');
                last.1.extend_from_slice(line.trim_ascii_start());
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let value = line[colon + 1..].trim_ascii().to_vec();
            out.push((&line[..colon], value, number));
        }
    }
    out
}

/// The first field of a CSV line (`"` quoting, `""` a quote), `None` for
/// an empty one.
fn first_field(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let field = if let Some(rest) = line.strip_prefix(b"\"") {
        let mut out = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            match (rest[i], rest.get(i + 1)) {
                (b'"', Some(b'"')) => {
                    out.push(b'"');
                    i += 2;
                }
                (b'"', _) => break,
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    } else {
        line.split(|&b| b == b',')
            .next()
            .unwrap_or_default()
            .to_vec()
    };
    (!field.is_empty()).then_some(field)
}

/// `path` (from RECORD: relative to `site`, or absolute) joined to `site`,
/// `..` taken lexically; `None` if it climbs above the root.
fn join(site: &[u8], path: &[u8]) -> Option<Vec<u8>> {
    let mut out = if path.starts_with(b"/") {
        Vec::new()
    } else {
        site.to_vec()
    };
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return None;
                }
                super::pop_component(&mut out);
            }
            _ => push_component(&mut out, c),
        }
    }
    Some(out)
}

/// A distribution name as PEP 503 normalises it: lower case, each run of
/// `-`, `_` and `.` one `-`.
pub(crate) fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for ch in name.chars() {
        if matches!(ch, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(ch.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::test_support::TempRoot;
    use crate::component::{read_package_databases, read_packages_in, DirRoot};
    use std::fs;

    #[test]
    fn names_are_normalised_as_pep_503_says() {
        assert_eq!(
            normalise_name("Django_REST.framework"),
            "django-rest-framework"
        );
        assert_eq!(normalise_name("zope..interface"), "zope-interface");
        assert_eq!(normalise_name("six"), "six");
    }

    #[test]
    fn record_fields_and_paths() {
        assert_eq!(first_field(b"six.py,sha256=abc,123").unwrap(), b"six.py");
        assert_eq!(
            first_field(b"\"a,b \"\"c\"\".py\",,").unwrap(),
            b"a,b \"c\".py"
        );
        assert_eq!(first_field(b""), None);
        assert_eq!(
            join(b"usr/lib/python3/site-packages", b"../../../bin/pip").unwrap(),
            b"usr/bin/pip"
        );
        assert_eq!(join(b"a/site-packages", b"/etc/x").unwrap(), b"etc/x");
        assert_eq!(join(b"a", b"../../x"), None);
    }

    fn dist(root: &Path, site: &str, dir: &str, metadata: &str, record: Option<&str>) {
        let d = root.join(site).join(dir);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("METADATA"), metadata).unwrap();
        if let Some(r) = record {
            fs::write(d.join("RECORD"), r).unwrap();
        }
    }

    #[test]
    fn a_venv_and_the_system_site_are_read_and_a_broken_distribution_is_a_warning() {
        let root = TempRoot::new("python");
        let r = root.path();
        let venv = "opt/app/.venv/lib/python3.12/site-packages";
        dist(
            r,
            venv,
            "Six-1.16.0.dist-info",
            "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n\nlong\ndescription\n",
            Some("six.py,sha256=x,34549\nsix-1.16.0.dist-info/RECORD,,\n__pycache__/six.cpython-312.pyc,,\n../../../bin/six-tool,,\n"),
        );
        fs::write(r.join(venv).join("six.py"), "").unwrap();
        dist(
            r,
            "usr/lib/python3/dist-packages",
            "Foo_Bar-2.0.dist-info",
            "Name: Foo_Bar\nVersion: 2.0\nLicense-Expression: Apache-2.0\nLicense: the long\n  text\n",
            None,
        );
        dist(r, venv, "broken-1.dist-info", "Version: 1\n", None);
        let ownership = read_packages_in(&DirRoot::open(r).unwrap()).unwrap();
        let packages = ownership.packages();
        let names: Vec<_> = packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_deref(),
                    p.license.as_deref(),
                    p.component.as_str(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("Foo_Bar", Some("2.0"), Some("Apache-2.0"), "pypi:foo-bar"),
                ("six", Some("1.16.0"), Some("MIT"), "pypi:six"),
            ]
        );
        let owner = |p: &str| ownership.owner(Path::new(p));
        assert_eq!(owner(&format!("{venv}/six.py")), Some("pypi:six"));
        assert_eq!(
            owner(&format!("{venv}/__pycache__/six.cpython-312.pyc")),
            Some("pypi:six")
        );
        assert_eq!(owner("opt/app/.venv/bin/six-tool"), Some("pypi:six"));
        assert_eq!(
            owner("usr/lib/python3/dist-packages/Foo_Bar-2.0.dist-info"),
            Some("pypi:foo-bar")
        );
        assert_eq!(ownership.warnings().len(), 1, "{:?}", ownership.warnings());
        assert!(ownership.warnings()[0].contains("broken-1.dist-info/METADATA"));
        assert!(ownership.warnings()[0].contains("no Name header"));
        // Grouping reads the same owners.
        let strict = read_package_databases(r).unwrap();
        assert_eq!(
            strict.owner(Path::new("opt/app/.venv/bin/six-tool")),
            Some("pypi:six")
        );
        // A walked tree finds the same, without listing directories again.
        let tree = crate::walk::walk_dir(r).unwrap();
        let walked = crate::component::read_package_databases_walked(r, &tree).unwrap();
        assert_eq!(walked, strict);
    }
}
