//! The house is one-way: each module of the library imports only modules
//! below it in the pipeline. Read from the sources, so a new import that
//! goes upward fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules, bottom first. A module may use only those before it.
const LAYERS: [&str; 15] = [
    "error",
    "digest",
    "io",
    "chunker",
    "walk",
    "component",
    "grouping",
    "layer",
    "oci",
    "sbom",
    "registry",
    "store",
    "delta",
    "update",
    "jobs",
];

fn sources(module: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        out.push(file);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    assert!(!out.is_empty(), "no source for module {module}");
    out
}

/// The modules of the crate `text` names as `crate::NAME`, outside comments.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn no_module_imports_one_above_it() {
    let mut wrong = Vec::new();
    for (rank, module) in LAYERS.iter().enumerate() {
        for file in sources(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in uses(&text) {
                if used == *module {
                    continue;
                }
                match LAYERS.iter().position(|m| *m == used) {
                    Some(r) if r < rank => {}
                    Some(_) => wrong.push(format!("{} uses crate::{used}", file.display())),
                    None => wrong.push(format!(
                        "{} uses unknown module crate::{used}",
                        file.display()
                    )),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports going up the pipeline:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let text =
        "use crate::store::ImageReader;\n// crate::jobs in a comment\nfn f() { crate::io::x(); }";
    assert_eq!(
        uses(text),
        ["io", "store"].iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn every_module_of_the_library_is_ranked() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line
            .trim()
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            assert!(LAYERS.contains(&name), "module {name} is not in LAYERS");
        }
    }
}
