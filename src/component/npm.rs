//! npm packages: each `node_modules/<name>/` (and `node_modules/@scope/<name>/`)
//! holding a `package.json`, anywhere in the tree; a package's own
//! `node_modules` holds its nested dependencies, read the same way.
//!
//! From `package.json`: `name`, `version` and `license` (a string, or the
//! older `{"type": ...}`). npm records no file list, so a package owns its
//! directory and everything in it but its nested `node_modules`. The
//! component is `npm:<name>`.
//!
//! A package whose `package.json` cannot be read is left out with a warning
//! naming the file.

use super::{push_component, Database, InstalledPackage, Node, OwnershipBuilder, RootFs};
use crate::Result;

/// How deep a package's files are listed, and nested `node_modules`
/// followed: far past any real tree, and a bound on a hostile one.
const MAX_DEPTH: usize = 64;

pub(super) fn read(tree: &mut RootFs, out: &mut OwnershipBuilder) -> Result<()> {
    let mut pending: Vec<(Vec<u8>, usize)> = tree
        .language_dirs()?
        .npm
        .iter()
        .map(|d| (d.clone(), 0))
        .collect();
    while let Some((modules, depth)) = pending.pop() {
        for package in package_dirs(tree, &modules)? {
            match read_package(tree, out, &package, depth) {
                Ok(nested) => pending.extend(nested.map(|n| (n, depth + 1))),
                Err(e) => out
                    .warnings
                    .push(format!("{e}; the npm package is left out")),
            }
        }
    }
    Ok(())
}

/// The package directories in the `node_modules` directory `modules`:
/// `NAME` and `@SCOPE/NAME`, not `.bin` nor `.package-lock.json`.
fn package_dirs(tree: &RootFs, modules: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut dirs = Vec::new();
    for name in tree.list(modules)?.unwrap_or_default() {
        if name.starts_with(b".") {
            continue;
        }
        let mut dir = modules.to_vec();
        push_component(&mut dir, &name);
        if tree.node(&dir)? != Some(Node::Dir) {
            continue;
        }
        if !name.starts_with(b"@") {
            dirs.push(dir);
            continue;
        }
        for scoped in tree.list(&dir)?.unwrap_or_default() {
            let mut p = dir.clone();
            push_component(&mut p, &scoped);
            if tree.node(&p)? == Some(Node::Dir) {
                dirs.push(p);
            }
        }
    }
    Ok(dirs)
}

/// Reads the package in `dir` and claims its files; returns its nested
/// `node_modules`, if it has one (and is not too deep).
fn read_package(
    tree: &mut RootFs,
    out: &mut OwnershipBuilder,
    dir: &[u8],
    depth: usize,
) -> Result<Option<Vec<u8>>> {
    let mut manifest = dir.to_vec();
    push_component(&mut manifest, b"package.json");
    let Some((host, data)) = tree.read_file(&manifest)? else {
        // A directory without package.json is not a package (npm leaves
        // such directories behind); its files stay unowned.
        return Ok(None);
    };
    let json: serde_json::Value = serde_json::from_slice(&data)
        .map_err(|e| super::malformed(&host, e.line(), format!("not JSON: {e}")))?;
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let name = text("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| super::malformed(&host, 1, "no \"name\""))?;
    let license = match json.get("license") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => {
            o.get("type").and_then(|t| t.as_str()).map(str::to_string)
        }
        _ => None,
    };
    let by = out.package(
        InstalledPackage {
            database: Database::Npm,
            component: format!("npm:{name}"),
            version: text("version").filter(|v| !v.is_empty()),
            architecture: None,
            source: None,
            license,
            name,
            paths: Vec::new(),
            build_time: None,
            changelog_times: Vec::new(),
        },
        &host,
    );
    let mut nested = None;
    let mut stack = vec![(dir.to_vec(), 0usize)];
    while let Some((d, level)) = stack.pop() {
        out.claim_listed(d.clone(), by);
        for entry in tree.list(&d)?.unwrap_or_default() {
            let mut p = d.clone();
            push_component(&mut p, &entry);
            let node = tree.node(&p)?;
            if level == 0 && entry == b"node_modules" {
                if node == Some(Node::Dir) && depth < MAX_DEPTH {
                    nested = Some(p);
                }
                continue;
            }
            match node {
                Some(Node::Dir) if level < MAX_DEPTH => stack.push((p, level + 1)),
                Some(_) => out.claim_listed(p, by),
                None => {}
            }
        }
    }
    Ok(nested)
}

#[cfg(test)]
mod tests {
    use crate::component::test_support::TempRoot;
    use crate::component::{read_packages_in, DirRoot};
    use std::fs;
    use std::path::Path;

    fn package(dir: &Path, json: &str, files: &[&str]) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("package.json"), json).unwrap();
        for f in files {
            let p = dir.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f).unwrap();
        }
    }

    #[test]
    fn packages_scoped_and_nested_are_read_and_a_broken_one_is_a_warning() {
        let root = TempRoot::new("npm");
        let app = root.path().join("srv/app/node_modules");
        package(
            &app.join("ms"),
            r#"{"name":"ms","version":"2.1.3","license":"MIT"}"#,
            &["index.js"],
        );
        package(
            &app.join("debug"),
            r#"{"name":"debug","version":"4.3.4","license":{"type":"MIT"}}"#,
            &["src/index.js", "src/node.js"],
        );
        package(
            &app.join("debug/node_modules/ms"),
            r#"{"name":"ms","version":"2.1.2"}"#,
            &["index.js"],
        );
        package(
            &app.join("@scope/util"),
            r#"{"name":"@scope/util","version":"1.0.0"}"#,
            &["a.js"],
        );
        package(&app.join("broken"), "{not json", &["x.js"]);
        fs::create_dir_all(app.join(".bin")).unwrap();
        fs::write(app.join(".package-lock.json"), "{}").unwrap();
        let ownership = read_packages_in(&DirRoot::open(root.path()).unwrap()).unwrap();
        let listed: Vec<_> = ownership
            .packages()
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_deref(), p.license.as_deref()))
            .collect();
        assert_eq!(
            listed,
            [
                ("@scope/util", Some("1.0.0"), None),
                ("debug", Some("4.3.4"), Some("MIT")),
                ("ms", Some("2.1.2"), None),
                ("ms", Some("2.1.3"), Some("MIT")),
            ]
        );
        let owner = |p: &str| ownership.owner(Path::new("srv/app/node_modules").join(p).as_path());
        assert_eq!(owner("debug/src/node.js"), Some("npm:debug"));
        assert_eq!(owner("debug/node_modules/ms/index.js"), Some("npm:ms"));
        assert_eq!(
            owner("debug/node_modules"),
            None,
            "the nested modules directory is no package's"
        );
        assert_eq!(owner("@scope/util/a.js"), Some("npm:@scope/util"));
        assert_eq!(owner("broken/x.js"), None);
        assert_eq!(owner(".package-lock.json"), None);
        let nested = ownership
            .packages()
            .iter()
            .find(|p| p.version.as_deref() == Some("2.1.2"))
            .unwrap();
        assert_eq!(
            nested.paths,
            [
                "srv/app/node_modules/debug/node_modules/ms",
                "srv/app/node_modules/debug/node_modules/ms/index.js",
                "srv/app/node_modules/debug/node_modules/ms/package.json"
            ]
            .map(std::path::PathBuf::from)
        );
        assert_eq!(ownership.warnings().len(), 1, "{:?}", ownership.warnings());
        assert!(
            ownership.warnings()[0].contains("broken/package.json"),
            "{:?}",
            ownership.warnings()
        );
    }
}
