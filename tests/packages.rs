//! `chunkah diff --packages` and `report --packages`: each package added,
//! removed or changed, with its versions and its bytes at the layer, chunk
//! and delta levels; the rows add up to the levels. Checked exactly on a
//! small tree whose bytes are known, and on the Debian series against what
//! dpkg-query says changed.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The levels a package report splits.
const LEVELS: [&str; 3] = ["layer", "chunk", "delta"];

/// For each level the report has, the bytes of every row (packages,
/// unowned files, metadata, layers without index) and the level's total.
fn row_sums(report: &serde_json::Value, packages: &serde_json::Value) -> Vec<(String, u64, u64)> {
    let mut sums = Vec::new();
    for level in LEVELS {
        let Some(total) = report["levels"][level]["bytes"].as_u64() else {
            continue;
        };
        let rows = packages["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["bytes"]);
        let others = ["unowned", "metadata", "notIndexed"].map(|k| &packages[k]);
        let split: u64 = rows
            .chain(others)
            .map(|b| b[level].as_u64().unwrap_or(0))
            .sum();
        sums.push((level.to_string(), split, total));
    }
    sums
}

fn assert_rows_add_up(report: &serde_json::Value, what: &str) {
    let sums = row_sums(report, &report["packages"]);
    assert!(sums.len() >= 2, "{what}: levels {sums:?}");
    for (level, split, total) in sums {
        assert_eq!(split, total, "{what}: the {level} level's rows");
    }
}

/// `name -> row` of a package report.
fn rows(packages: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    packages["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
        .collect()
}

/// A dpkg database listing `packages` (name, version, the files it owns).
fn dpkg_db(root: &Path, packages: &[(&str, &str, &[&str])]) {
    let info = root.join("var/lib/dpkg/info");
    fs::create_dir_all(&info).unwrap();
    let mut status = String::new();
    for (name, version, files) in packages {
        status.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"
        ));
        let list: String = files.iter().map(|f| format!("/{f}\n")).collect();
        fs::write(info.join(format!("{name}.list")), list).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
}

/// A file of `len` bytes no compressor shrinks, different for each seed.
fn noise_file(path: &Path, len: usize, seed: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(path, bytes).unwrap();
}

const MIB: u64 = 1 << 20;

/// v1: packages a (1 MiB), b (1 MiB) and c (256 KiB); v2: a rebuilt (new
/// content, version 2.0), b the same, c removed, d added (512 KiB).
fn small_series(dir: &Path) -> (PathBuf, PathBuf) {
    let (v1, v2) = (dir.join("v1"), dir.join("v2"));
    for (v, a_seed) in [(&v1, 1), (&v2, 2)] {
        noise_file(&v.join("usr/lib/a.bin"), MIB as usize, a_seed);
        noise_file(&v.join("usr/lib/b.bin"), MIB as usize, 3);
        fs::write(v.join("usr/lib/notes.txt"), "no package lists me\n").unwrap();
    }
    noise_file(&v1.join("usr/lib/c.bin"), 256 << 10, 4);
    noise_file(&v2.join("usr/lib/d.bin"), 512 << 10, 5);
    dpkg_db(
        &v1,
        &[
            ("a", "1.0", &["usr/lib/a.bin"]),
            ("b", "1.0", &["usr/lib/b.bin"]),
            ("c", "1.0", &["usr/lib/c.bin"]),
        ],
    );
    dpkg_db(
        &v2,
        &[
            ("a", "2.0", &["usr/lib/a.bin"]),
            ("b", "1.0", &["usr/lib/b.bin"]),
            ("d", "1.0", &["usr/lib/d.bin"]),
        ],
    );
    (v1, v2)
}

#[test]
fn each_package_costs_what_its_files_cost() {
    let tmp = TempDir::new("packages-small");
    let (v1, v2) = small_series(tmp.path());
    // Trees: uncompressed content, so every byte is known.
    let tree = stdout_json(&run(chunkah()
        .args(["diff", "--packages", "--json", "--source-date-epoch", EPOCH])
        .arg(format!("dir:{}", v1.display()))
        .arg(format!("dir:{}", v2.display()))));
    assert_rows_add_up(&tree, "trees");
    let r = rows(&tree["packages"]);
    assert_eq!(r["a"]["status"], "changed");
    assert_eq!(
        (r["a"]["oldVersion"].as_str(), r["a"]["newVersion"].as_str()),
        (Some("1.0"), Some("2.0"))
    );
    assert_eq!(
        r["a"]["bytes"]["chunk"], MIB,
        "a's new content, every chunk"
    );
    assert_eq!(r["d"]["status"], "added");
    assert_eq!(r["d"]["bytes"]["chunk"], 512 << 10);
    assert_eq!(r["c"]["status"], "removed");
    assert_eq!(r["c"]["bytes"]["chunk"], 0);
    assert!(
        !r.contains_key("b"),
        "b is the same and costs nothing: {r:?}"
    );
    assert_eq!(tree["packages"]["unchanged"], 1);
    // The status file changed and no package lists it.
    let status_len = fs::metadata(v2.join("var/lib/dpkg/status")).unwrap().len();
    assert!(tree["packages"]["unowned"]["chunk"].as_u64().unwrap() <= status_len + 200);
    assert_eq!(tree["packages"]["metadata"]["chunk"], 0);

    // Images: compressed bytes; noise compresses to a little more than itself.
    let layout = tmp.path().join("images");
    let image = |v: &str| format!("oci:{}:{v}", layout.display());
    pack_json(&v1, &image("v1"), &[]);
    pack_json(&v2, &image("v2"), &["--prior", &image("v1")]);
    let images = stdout_json(&run(chunkah().args([
        "diff",
        "--packages",
        "--json",
        &image("v1"),
        &image("v2"),
    ])));
    assert_rows_add_up(&images, "images");
    let r = rows(&images["packages"]);
    let a = r["a"]["bytes"]["chunk"].as_u64().unwrap();
    assert!((MIB..MIB + MIB / 32).contains(&a), "a: {a}");
    let d = r["d"]["bytes"]["chunk"].as_u64().unwrap();
    assert!((512 << 10..(512 << 10) + MIB / 32).contains(&d), "d: {d}");
    assert!(r.get("b").is_none_or(|b| b["bytes"]["chunk"] == 0), "{r:?}");
    assert!(
        images["packages"]["metadata"]["chunk"].as_u64().unwrap() > 0,
        "manifest, config, indexes"
    );
}

/// `name -> version` of every installed package, as dpkg-query lists them.
fn dpkg_versions(root: &Path) -> BTreeMap<String, String> {
    let out = run(Command::new(require_tool("dpkg-query", "dpkg"))
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Status}\t${Package}\t${Version}\n"]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (status, name, version) = (f.next()?, f.next()?, f.next()?);
            status
                .ends_with(" ok installed")
                .then(|| (name.to_string(), version.to_string()))
        })
        .collect()
}

/// What changed from `old` to `new` by dpkg-query: `name -> (status, old
/// version, new version)`.
fn dpkg_changes(old: &Path, new: &Path) -> BTreeMap<String, (String, String, String)> {
    version_changes(&dpkg_versions(old), &dpkg_versions(new))
}

/// The changes a package report lists, as [`dpkg_changes`] writes them.
fn reported_changes(packages: &serde_json::Value) -> BTreeMap<String, (String, String, String)> {
    rows(packages)
        .into_iter()
        .filter(|(_, p)| p["status"] != "same")
        .map(|(name, p)| {
            let v = |k: &str| p[k].as_str().unwrap_or("").to_string();
            (
                name,
                (
                    p["status"].as_str().unwrap().to_string(),
                    v("oldVersion"),
                    v("newVersion"),
                ),
            )
        })
        .collect()
}

#[test]
fn the_series_updates_are_named_with_their_versions_and_bytes() {
    let series = PathBuf::from(std::env::var_os("CHUNKAH_SERIES_DIR").unwrap_or_else(|| {
        panic!("set CHUNKAH_SERIES_DIR to the output of ../shared/data/make-rootfs-series.sh (scripts/test.sh does)")
    }));
    let tmp = TempDir::new("packages-series");
    let layout = tmp.path().join("images");
    let image = |v: &str| format!("oci:{}:{v}", layout.display());
    let versions = ["v1", "v2", "v3"];
    for (i, v) in versions.iter().enumerate() {
        let prior = i.checked_sub(1).map(|p| image(versions[p]));
        let extra: Vec<&str> = prior.iter().flat_map(|p| ["--prior", p.as_str()]).collect();
        pack_json(&series.join(v), &image(v), &extra);
    }
    run(chunkah().args(["delta", &image("v1"), &image("v2"), "--quiet"]));

    // v1 -> v2, the security updates: exactly what dpkg-query says changed.
    let report = stdout_json(&run(chunkah().args([
        "diff",
        "--packages",
        "--json",
        &image("v1"),
        &image("v2"),
    ])));
    assert!(
        report["levels"]["delta"]["bytes"].as_u64().is_some(),
        "a delta is used"
    );
    assert_rows_add_up(&report, "v1->v2");
    let want = dpkg_changes(&series.join("v1"), &series.join("v2"));
    assert!(
        want.len() >= 5 && want.values().all(|c| c.0 == "changed"),
        "{want:?}"
    );
    let packages = &report["packages"];
    assert_eq!(reported_changes(packages), want);
    let r = rows(packages);
    let chunk_of = |names: &mut dyn Iterator<Item = &String>| -> u64 {
        names
            .map(|n| r[n]["bytes"]["chunk"].as_u64().unwrap())
            .sum()
    };
    for name in want.keys() {
        for level in LEVELS {
            assert!(
                r[name]["bytes"][level].as_u64().unwrap() > 0,
                "{name} costs nothing at the {level} level"
            );
        }
    }
    // The updated packages are what the chunk level fetches; unchanged ones
    // cost only what shares a frame with them.
    let changed = chunk_of(&mut want.keys());
    let same: Vec<&String> = r.keys().filter(|n| !want.contains_key(*n)).collect();
    let same_bytes = chunk_of(&mut same.into_iter());
    let chunk = report["levels"]["chunk"]["bytes"].as_u64().unwrap();
    assert!(changed >= chunk * 3 / 4, "changed {changed} of {chunk}");
    assert!(
        same_bytes * 20 <= changed,
        "same {same_bytes}, changed {changed}"
    );

    // The table says the same, a row per update with old -> new.
    let table = String::from_utf8(
        run(chunkah().args(["diff", "--packages", &image("v1"), &image("v2")])).stdout,
    )
    .unwrap();
    for (name, (_, old, new)) in &want {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()));
        let line = line.unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        assert!(line.contains(&format!("{old} -> {new}")), "{line}");
    }
    assert!(
        table.contains("(metadata)") && table.contains("(unowned files)"),
        "{table}"
    );

    // The same trees diffed as directories name the same updates.
    let trees = stdout_json(&run(chunkah()
        .args(["diff", "--packages", "--json", "--source-date-epoch", EPOCH])
        .arg(format!("dir:{}", series.join("v1").display()))
        .arg(format!("dir:{}", series.join("v2").display()))));
    assert_rows_add_up(&trees, "trees v1->v2");
    assert_eq!(reported_changes(&trees["packages"]), want);

    // report --packages: each step's rows add up, and the sums over the
    // series are the steps' sums.
    let series_report = stdout_json(&run(chunkah()
        .args(["report", "--packages", "--json"])
        .args(versions.map(image))));
    let steps = series_report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for (step, pair) in steps.iter().zip(versions.windows(2)) {
        assert_rows_add_up(step, &format!("report step {pair:?}"));
        let want = dpkg_changes(&series.join(pair[0]), &series.join(pair[1]));
        assert_eq!(reported_changes(&step["packages"]), want, "{pair:?}");
    }
    let summed = &series_report["packages"];
    let total = |level: &str| -> u64 {
        steps
            .iter()
            .map(|s| {
                s["levels"][level]["bytes"]
                    .as_u64()
                    .or(s["levels"]["chunk"]["bytes"].as_u64())
                    .unwrap()
            })
            .sum()
    };
    for level in LEVELS {
        let split: u64 = summed["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["bytes"])
            .chain(["unowned", "metadata"].map(|k| &summed[k]))
            .map(|b| b[level].as_u64().unwrap())
            .sum();
        assert_eq!(split, total(level), "the series' {level} level");
    }
    // python3 arrives in v3; perl-base changes in v2 only.
    let summed_rows = rows(summed);
    let perl = &summed_rows["perl-base"];
    assert_eq!(perl["changedIn"], 1);
    let perl_versions: Vec<&str> = perl["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let v1_perl = dpkg_versions(&series.join("v1"))["perl-base"].clone();
    let v2_perl = dpkg_versions(&series.join("v2"))["perl-base"].clone();
    assert_eq!(perl_versions, [v1_perl.as_str(), v2_perl.as_str()]);
    assert!(summed_rows.contains_key("python3"));
}

/// The total size of the layers of the image a pack report describes.
fn layer_bytes(report: &serde_json::Value) -> u64 {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum()
}

#[test]
fn packages_are_read_from_the_sbom_beside_a_registry_image() {
    let tmp = TempDir::new("packages-registry");
    let (v1, v2) = small_series(tmp.path());
    let registry = common::registry::Registry::start("packages-registry");
    let remote = |repo: &str, v: &str| format!("docker://{}/{repo}:{v}", registry.host());
    let tls = "--tls-verify=false";
    let mut sizes = 0;
    for repo in ["with-sbom", "without"] {
        let sbom: &[&str] = if repo == "with-sbom" {
            &["--sbom", "spdx-json"]
        } else {
            &[]
        };
        let old = pack_json(&v1, &remote(repo, "v1"), &[&[tls][..], sbom].concat());
        let prior = remote(repo, "v1");
        let new = pack_json(
            &v2,
            &remote(repo, "v2"),
            &[&[tls, "--prior", &prior][..], sbom].concat(),
        );
        // Both repositories hold the same images (but for the SBOMs).
        sizes = layer_bytes(&old) + layer_bytes(&new);
    }
    let diff = |repo: &str| {
        stdout_json(&run(chunkah().args([
            "diff",
            "--packages",
            "--json",
            tls,
            &remote(repo, "v1"),
            &remote(repo, "v2"),
        ])))
    };
    let (with, without) = (diff("with-sbom"), diff("without"));
    assert_rows_add_up(&with, "with SBOMs");
    assert_rows_add_up(&without, "without");
    let from = |r: &serde_json::Value| -> Vec<String> {
        r["packages"]["readFrom"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        from(&with).iter().all(|s| s.starts_with("sbom sha256:")),
        "{:?}",
        from(&with)
    );
    assert_eq!(from(&without), ["layers", "layers"]);
    // The same packages, versions and bytes either way (the images are the
    // same but for their referrers).
    assert_eq!(
        with["packages"]["packages"],
        without["packages"]["packages"]
    );
    assert_eq!(with["levels"]["chunk"], without["levels"]["chunk"]);
    // Without an SBOM both images are downloaded whole; with one, only the
    // documents, manifests and indexes.
    let read = |r: &serde_json::Value| r["bytesRead"].as_u64().unwrap();
    assert!(read(&without) >= sizes, "{} < {sizes}", read(&without));
    assert!(read(&with) * 10 < sizes, "{} of {sizes}", read(&with));
}
