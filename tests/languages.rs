//! Python and npm packages on real trees: a virtual environment that pip
//! filled from real wheels, an application that npm filled from real
//! package tarballs (both offline, from the pinned fixtures
//! scripts/setup.sh downloads). chunkah's packages are what `pip list` and
//! `npm ls` say; `pack` groups their files by package, `sbom` lists them
//! with pkg:pypi and pkg:npm URLs, `diff --packages` names what changed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::sbom::{run_check, venv, CYCLONEDX_CHECK, SPDX_CHECK};
use common::*;

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("CHUNKAH_LANG_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/chunkah/lang-fixtures")
        });
    assert!(
        dir.join("ready-2").is_file(),
        "no wheels and npm packages in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

const VENV: &str = "opt/venv";
const APP: &str = "srv/app";

/// The tree's Python: its virtual environment's interpreter.
fn venv_python(root: &Path) -> PathBuf {
    root.join(VENV).join("bin/python")
}

/// `pip --python VENV ARGS…` with the machine's pip, offline.
fn pip(root: &Path) -> Command {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "pip", "--disable-pip-version-check", "--python"])
        .arg(venv_python(root));
    cmd
}

/// A tree with a virtual environment holding `wheels` (names, from the
/// fixture directory `wheel_dir`) and an npm application holding
/// `tarballs` (paths in the fixtures).
fn tree(root: &Path, wheel_dir: &str, wheels: &[&str], tarballs: &[&str]) {
    let f = fixtures();
    run(Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(root.join(VENV)));
    run(pip(root)
        .args(["install", "-q", "--no-index", "--find-links"])
        .arg(f.join(wheel_dir))
        .args(wheels));
    std::fs::create_dir_all(root.join(APP)).unwrap();
    npm_install(root, tarballs);
}

/// `npm install` of `tarballs` (paths in the fixtures) into the tree's
/// application, offline.
fn npm_install(root: &Path, tarballs: &[&str]) {
    let f = fixtures();
    run(Command::new(require_tool("npm", "npm"))
        .current_dir(root.join(APP))
        .args([
            "install",
            "--offline",
            "--no-audit",
            "--no-fund",
            "--silent",
        ])
        .args(tarballs.iter().map(|t| f.join(t))));
}

/// `ecosystem name -> version` as pip and npm list them.
fn listed(root: &Path) -> BTreeMap<String, String> {
    let out = run(pip(root).args(["list", "--format", "json"]));
    let pip: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut all: BTreeMap<String, String> = pip
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                format!("pypi {}", p["name"].as_str().unwrap()),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let out = run(Command::new(require_tool("npm", "npm"))
        .current_dir(root.join(APP))
        .args(["ls", "--json", "--all"]));
    let npm: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (name, p) in npm["dependencies"].as_object().unwrap() {
        all.insert(
            format!("npm {name}"),
            p["version"].as_str().unwrap().to_string(),
        );
    }
    all
}

fn spdx(root: &Path, out: &Path) -> serde_json::Value {
    run(chunkah()
        .args([
            "sbom",
            "--format",
            "spdx-json",
            "--source-date-epoch",
            EPOCH,
            "-o",
        ])
        .arg(out)
        .arg(format!("dir:{}", root.display())));
    read_json(out)
}

#[test]
fn pip_and_npm_trees_list_grouping_and_sboms_agree_with_pip_and_npm() {
    let tmp = TempDir::new("languages");
    let root = tmp.path().join("root");
    tree(
        &root,
        "wheels",
        &["six", "idna", "packaging", "wheel"],
        &[
            "npm/ms-2.1.3.tgz",
            "npm/is-number-7.0.0.tgz",
            "npm/isaacs-string-locale-compare-1.1.0.tgz",
        ],
    );
    let want = listed(&root);
    assert_eq!(want.len(), 7, "{want:?}");

    // The SBOM lists exactly those, with their package URLs and files.
    let doc = spdx(&root, &tmp.path().join("sbom.json"));
    let packages: Vec<&serde_json::Value> =
        doc["packages"].as_array().unwrap().iter().skip(1).collect();
    let mut got = BTreeMap::new();
    for p in &packages {
        let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
        let ecosystem = purl
            .strip_prefix("pkg:")
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        got.insert(
            format!("{ecosystem} {}", p["name"].as_str().unwrap()),
            p["versionInfo"].as_str().unwrap().to_string(),
        );
    }
    assert_eq!(got, want);
    let purls: Vec<&str> = packages
        .iter()
        .map(|p| p["externalRefs"][0]["referenceLocator"].as_str().unwrap())
        .collect();
    for expected in [
        "pkg:pypi/six@1.16.0",
        "pkg:npm/ms@2.1.3",
        "pkg:npm/%40isaacs/string-locale-compare@1.1.0",
    ] {
        assert!(purls.contains(&expected), "{expected} in {purls:?}");
    }
    // Every file pip says six installed is six's in the document.
    let show = String::from_utf8(run(pip(&root).args(["show", "-f", "six"])).stdout).unwrap();
    let location = show
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap();
    let site = Path::new(location)
        .strip_prefix(&root)
        .unwrap()
        .to_path_buf();
    let six = packages.iter().find(|p| p["name"] == "six").unwrap();
    let files_of = |p: &serde_json::Value| -> Vec<String> {
        let ids: Vec<&str> = p["hasFiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| ids.contains(&f["SPDXID"].as_str().unwrap()))
            .map(|f| {
                f["fileName"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("./")
                    .to_string()
            })
            .collect()
    };
    let six_files = files_of(six);
    let pip_files: Vec<String> = show
        .lines()
        .skip_while(|l| *l != "Files:")
        .skip(1)
        .map(|l| site.join(l.trim()).to_string_lossy().into_owned())
        .collect();
    assert!(pip_files.len() >= 5, "{show}");
    for f in &pip_files {
        assert!(six_files.contains(f), "{f} not six's: {six_files:?}");
    }
    // The validators that did not write it accept it.
    let venv = venv();
    let (ok, said) = run_check(&venv, SPDX_CHECK, &tmp.path().join("sbom.json"));
    assert!(ok, "{said}");
    // And the CycloneDX document, by its strict schema, names the same URLs.
    let cdx = tmp.path().join("sbom.cdx.json");
    run(chunkah()
        .args([
            "sbom",
            "--format",
            "cyclonedx-json",
            "--source-date-epoch",
            EPOCH,
            "-o",
        ])
        .arg(&cdx)
        .arg(format!("dir:{}", root.display())));
    let (ok, said) = run_check(&venv, CYCLONEDX_CHECK, &cdx);
    assert!(ok, "{said}");
    let cdx = read_json(&cdx);
    let mut cdx_purls: Vec<&str> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    cdx_purls.sort_unstable();
    let mut spdx_purls = purls.clone();
    spdx_purls.sort_unstable();
    assert_eq!(cdx_purls, spdx_purls);

    // pack puts each package's files with its component, named pypi:/npm:.
    let layout = tmp.path().join("images");
    let report = pack_json(&root, &format!("oci:{}:v1", layout.display()), &[]);
    let components: Vec<&str> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["components"].as_array().unwrap())
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in [
        "pypi:six",
        "pypi:idna",
        "pypi:packaging",
        "pypi:wheel",
        "npm:ms",
        "npm:is-number",
        "npm:@isaacs/string-locale-compare",
    ] {
        assert!(components.contains(&c), "{c} in {components:?}");
    }
}

#[test]
fn diff_packages_names_python_and_npm_updates_as_pip_and_npm_list_them() {
    let tmp = TempDir::new("languages-diff");
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    tree(&old, "wheels-old", &["six"], &["npm-old/ms-2.1.2.tgz"]);
    run(pip(&old)
        .args(["install", "-q", "--no-index", "--find-links"])
        .arg(fixtures().join("wheels"))
        .arg("idna"));
    npm_install(&old, &["npm/is-number-7.0.0.tgz"]);
    tree(
        &new,
        "wheels",
        &["six", "packaging"],
        &["npm/ms-2.1.3.tgz", "npm/is-number-7.0.0.tgz"],
    );
    let (was, now) = (listed(&old), listed(&new));
    let want = version_changes(&was, &now);
    assert_eq!(
        want.len(),
        4,
        "six and ms changed, packaging added, idna removed: {want:?}"
    );
    let report = stdout_json(&run(chunkah()
        .args(["diff", "--packages", "--json", "--source-date-epoch", EPOCH])
        .arg(format!("dir:{}", old.display()))
        .arg(format!("dir:{}", new.display()))));
    let got: BTreeMap<String, (String, String, String)> = report["packages"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] != "same")
        .map(|p| {
            let ecosystem = if p["database"] == "python" {
                "pypi"
            } else {
                "npm"
            };
            let v = |k: &str| p[k].as_str().unwrap_or("").to_string();
            (
                format!("{ecosystem} {}", p["name"].as_str().unwrap()),
                (
                    p["status"].as_str().unwrap().to_string(),
                    v("oldVersion"),
                    v("newVersion"),
                ),
            )
        })
        .collect();
    assert_eq!(got, want);
    let six = report["packages"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "six")
        .unwrap();
    assert!(
        six["bytes"]["chunk"].as_u64().unwrap() > 10_000,
        "six.py changed: {six}"
    );
}
