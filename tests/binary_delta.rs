//! Binary deltas through the real binary: `chunkah delta` publishes one
//! beside NEW, `diff` shows its level, `apply` takes it and rebuilds NEW
//! digest for digest; a delta for another base is not taken, a corrupt one
//! falls back to ranges with a correct image, and deltas from two older
//! versions serve each client its own.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

/// Packs versions 1, 2 and 3 into one layout; returns their references.
fn images(tmp: &Path) -> [String; 3] {
    let layout = tmp.join("images");
    [1, 2, 3].map(|v| {
        let src = tmp.join(format!("src-{v}"));
        delta_tree(&src, v);
        let reference = format!("oci:{}:v{v}", layout.display());
        run(chunkah()
            .arg("pack")
            .arg(&src)
            .args(["-o", &reference, "--quiet", "--max-layers", "2"])
            .args(["--source-date-epoch", "1700000000"]));
        reference
    })
}

fn manifest_digest(layout: &Path, tag: &str) -> String {
    let index = read_json(&layout.join("index.json"));
    let desc = tagged(&index, tag).unwrap_or_else(|| panic!("no tag {tag}"));
    desc["digest"].as_str().unwrap().to_string()
}

fn apply(from: &str, source: &str, dest: &Path) -> (serde_json::Value, String) {
    let out = run(chunkah()
        .args(["apply", "--from", from, "--source", source, "-o"])
        .arg(format!("oci:{}:new", dest.display()))
        .arg("--json"));
    (
        stdout_json(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_delta_is_published_found_and_applied() {
    let tmp = TempDir::new("binary-delta");
    let [v1, v2, v3] = images(tmp.path());
    let layout = tmp.path().join("images");
    let dest = format!("oci:{}", layout.display());
    // Deltas to v3 from v1 and from v2, both published beside v3.
    let mut made = Vec::new();
    for old in [&v1, &v2] {
        let report = stdout_json(&run(
            chunkah().args(["delta", old, &v3, "-o", &dest, "--json", "--quiet"])
        ));
        let stats = &report["stats"];
        assert!(report["parts"].as_u64().unwrap() > 0, "{report}");
        // The library was found under its old version's name.
        assert!(stats["byVersion"].as_u64().unwrap() >= 1, "{report}");
        assert_eq!(stats["coveredFrames"], stats["missingFrames"], "{report}");
        // The rebuilt layer's index comes from the delta too.
        assert!(stats["indexParts"].as_u64().unwrap() >= 1, "{report}");
        assert!(stats["indexPartBytes"].as_u64() < stats["indexBytes"].as_u64());
        made.push(report);
    }
    let v3_digest = manifest_digest(&layout, "v3");
    let referrers_tag = format!("sha256-{}", &v3_digest[7..]);
    // Both are listed in v3's referrers, under the tag schema.
    let index_hex = &manifest_digest(&layout, &referrers_tag)[7..];
    let referrers = read_json(&layout.join("blobs/sha256").join(index_hex));
    let listed: Vec<&str> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        made.iter()
            .map(|r| r["manifest"].as_str().unwrap())
            .collect::<Vec<_>>()
    );
    // The artifact names v3 as its subject; skopeo still reads v3.
    let artifact = read_json(
        &layout
            .join("blobs/sha256")
            .join(&made[0]["manifest"].as_str().unwrap()[7..]),
    );
    assert_eq!(artifact["subject"]["digest"], v3_digest.as_str());
    assert_eq!(artifact["artifactType"], "application/vnd.chunkah.delta.v1");
    run(Command::new(require_tool("skopeo", "skopeo"))
        .arg("inspect")
        .arg(&v3));

    for (old, report) in [(&v1, &made[0]), (&v2, &made[1])] {
        // diff shows the delta level, below the chunk level.
        let diff = stdout_json(&run(chunkah().args(["diff", old, &v3, "--json"])));
        let l = &diff["levels"];
        let delta = l["delta"]["bytes"].as_u64().unwrap();
        let chunk = l["chunk"]["bytes"].as_u64().unwrap();
        assert!(delta * 3 < chunk, "{old}: delta {delta}, chunk {chunk}");
        let table = String::from_utf8(run(chunkah().args(["diff", old, &v3])).stdout).unwrap();
        assert!(table.contains("delta"), "{table}");
        // apply takes this client's own delta, reads exactly the delta
        // level, and rebuilds v3 digest for digest.
        let out = tmp.path().join(format!("out-{}", &old[old.len() - 2..]));
        let (applied, _) = apply(old, &v3, &out);
        assert_eq!(
            applied["delta"]["manifest"], report["manifest"],
            "{applied}"
        );
        assert_eq!(applied["fallbacks"].as_array().unwrap().len(), 0);
        assert_eq!(applied["bytesRead"].as_u64().unwrap(), delta, "{applied}");
        // The delta's own count: every index part made was taken, and what
        // they and the parts cost is within the total.
        let used = &applied["delta"];
        assert!(report["stats"]["indexParts"].as_u64().unwrap() > 0);
        assert_eq!(
            used["indexParts"], report["stats"]["indexParts"],
            "{applied}"
        );
        let delta_read = used["bytesRead"].as_u64().unwrap();
        assert!(
            delta_read > report["stats"]["indexPartBytes"].as_u64().unwrap() && delta_read < delta,
            "{applied}"
        );
        assert_eq!(applied["requests"], l["delta"]["requests"]);
        assert_eq!(manifest_digest(&out, "new"), v3_digest);
        // --no-delta: ranges only, the chunk level plus asking for nothing.
        let plain = tmp.path().join(format!("plain-{}", &old[old.len() - 2..]));
        let out = run(chunkah()
            .args(["apply", "--from", old, "--source", &v3, "--no-delta", "-o"])
            .arg(format!("oci:{}:new", plain.display()))
            .arg("--json"));
        assert_eq!(stdout_json(&out)["bytesRead"].as_u64().unwrap(), chunk);
        assert_eq!(manifest_digest(&plain, "new"), v3_digest);
    }
    // report shows the delta level in its JSON, table and chart.
    let svg = tmp.path().join("report.svg");
    let report = stdout_json(&run(chunkah()
        .args(["report", &v2, &v3, "--json", "--svg"])
        .arg(&svg)));
    let diff = stdout_json(&run(chunkah().args(["diff", &v2, &v3, "--json"])));
    assert_eq!(report["steps"][0]["levels"], diff["levels"]);
    assert!(
        report["steps"][0]["levels"]["delta"]["bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    let chart = fs::read_to_string(&svg).unwrap();
    assert_eq!(chart.matches("<title>").count(), 5, "{chart}");
    assert!(chart.contains("<title>delta: "), "{chart}");
    let table = String::from_utf8(run(chunkah().args(["report", &v2, &v3])).stdout).unwrap();
    assert!(table.lines().next().unwrap().ends_with("delta"), "{table}");
    // v2 has no delta: apply asks, finds none, and pulls by ranges.
    let out = tmp.path().join("out-v2");
    let (applied, _) = apply(&v1, &v2, &out);
    assert!(applied.get("delta").is_none(), "{applied}");
    assert_eq!(manifest_digest(&out, "new"), manifest_digest(&layout, "v2"));
    let diff = stdout_json(&run(chunkah().args(["diff", &v1, &v2, "--json"])));
    assert!(diff["levels"].get("delta").is_none(), "{diff}");
}

#[test]
fn a_corrupt_delta_falls_back_to_ranges() {
    let tmp = TempDir::new("binary-delta-bad");
    let [v1, _, v3] = images(tmp.path());
    let layout = tmp.path().join("images");
    let report = stdout_json(&run(chunkah().args([
        "delta",
        &v1,
        &v3,
        "-o",
        &format!("oci:{}", layout.display()),
        "--json",
        "--quiet",
    ])));
    let artifact = read_json(
        &layout
            .join("blobs/sha256")
            .join(&report["manifest"].as_str().unwrap()[7..]),
    );
    let blob = layout
        .join("blobs/sha256")
        .join(&artifact["layers"][0]["digest"].as_str().unwrap()[7..]);
    let original = fs::read(&blob).unwrap();
    let v3_digest = manifest_digest(&layout, "v3");
    // Damage each part in turn (a byte in the middle of the first part, one
    // near the end of the parts): the image is still right, and the part
    // is reported as a fallback.
    let lookup_at: usize = artifact["layers"][0]["annotations"]["dev.chunkah.delta.lookup.offset"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for (i, at) in [lookup_at / 2, lookup_at - 3].into_iter().enumerate() {
        let mut bad = original.clone();
        bad[at] ^= 0x55;
        fs::write(&blob, &bad).unwrap();
        let out = tmp.path().join(format!("out-{i}"));
        let (applied, stderr) = apply(&v1, &v3, &out);
        let fallbacks = applied["fallbacks"].as_array().unwrap();
        assert!(!fallbacks.is_empty(), "{applied}");
        assert!(stderr.contains("fetched by ranges instead"), "{stderr}");
        if i == 1 {
            // The end of the parts is the last index part: the index is
            // read from NEW instead.
            assert!(
                fallbacks
                    .iter()
                    .any(|f| f["reason"].as_str().unwrap().contains("index part")),
                "{applied}"
            );
        }
        assert_eq!(manifest_digest(&out, "new"), v3_digest);
    }
    // A damaged lookup: the whole delta is set aside.
    let mut bad = original.clone();
    let last = bad.len() - 2;
    bad[last] ^= 0x55;
    fs::write(&blob, &bad).unwrap();
    let out = tmp.path().join("out-lookup");
    let (applied, stderr) = apply(&v1, &v3, &out);
    assert!(applied.get("delta").is_none(), "{applied}");
    assert!(applied["fallbacks"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("lookup"));
    assert!(stderr.contains("the delta not used"), "{stderr}");
    assert_eq!(manifest_digest(&out, "new"), v3_digest);
    fs::write(&blob, &original).unwrap();
    // A delta from v1 does not serve a client holding v2: no delta for
    // that pair, ranges, the right image.
    let out = tmp.path().join("out-other-base");
    let v2 = format!("oci:{}:v2", layout.display());
    let (applied, _) = apply(&v2, &v3, &out);
    assert!(applied.get("delta").is_none(), "{applied}");
    assert_eq!(applied["fallbacks"].as_array().unwrap().len(), 0);
    assert_eq!(manifest_digest(&out, "new"), v3_digest);
}

#[test]
fn bad_delta_arguments_are_usage_errors() {
    let tmp = TempDir::new("binary-delta-args");
    let out = chunkah()
        .args(["delta", "oci:/nonexistent:a", "oci:/nonexistent:b", "-o"])
        .arg(format!("oci:{}", tmp.path().join("d").display()))
        .args(["--level", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--level"));
    let out = chunkah()
        .args(["delta", "oci:/nonexistent:a", "oci:/nonexistent:b", "-o"])
        .arg(format!("oci:{}", tmp.path().join("d").display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"));
    assert!(!tmp.path().join("d").exists());
}

#[test]
fn pack_publishes_deltas_from_older_versions() {
    let tmp = TempDir::new("binary-delta-pack");
    let [v1, v2, _] = images(tmp.path());
    let src = tmp.path().join("src-3");
    let layout = tmp.path().join("published");
    let v3 = format!("oci:{}:v3", layout.display());
    let out = run(chunkah()
        .arg("pack")
        .arg(&src)
        .args(["-o", &v3, "--quiet", "--max-layers", "2", "--json"])
        .args(["--source-date-epoch", "1700000000", "--prior", &v2])
        .args(["--delta-from", &v1, "--delta-from", &v2]));
    let report = stdout_json(&out);
    let deltas = report["deltas"].as_array().unwrap();
    assert_eq!(deltas.len(), 2, "{report}");
    assert_eq!(deltas[0]["target"], report["manifest"]);
    for (old, delta) in [&v1, &v2].into_iter().zip(deltas) {
        let dest = tmp.path().join(format!("out-{}", &old[old.len() - 2..]));
        let (applied, _) = apply(old, &v3, &dest);
        assert_eq!(applied["delta"]["manifest"], delta["manifest"], "{applied}");
        assert_eq!(
            manifest_digest(&dest, "new"),
            manifest_digest(&layout, "v3")
        );
    }
    // A base that cannot be read is found before anything is packed.
    let bad = tmp.path().join("bad");
    let out = chunkah()
        .arg("pack")
        .arg(&src)
        .arg("-o")
        .arg(format!("oci:{}:x", bad.display()))
        .args(["--delta-from", "oci:/nonexistent-chunkah:v0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-chunkah"));
    assert!(!bad.exists());
}
