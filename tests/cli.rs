//! The real `chunkah` binary: output format, options, errors and exit codes.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use chunkah::chunker::{golden_input, Algorithm, Chunker, ChunkerConfig};
use chunkah::ChunkId;
use common::TempDir;
use serde_json::Value;

fn chunkah(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = common::chunkah();
    cmd.args(args).env_remove("CHUNKAH_BACKEND");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running chunkah");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

fn sample() -> (TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = TempDir::new("cli");
    let path = dir.0.join("sample.bin");
    let data = golden_input(77, 3_000_000);
    std::fs::write(&path, &data).unwrap();
    (dir, path, data)
}

#[test]
fn chunks_are_json_lines_matching_the_library() {
    let (_dir, path, data) = sample();
    let p = path.to_str().unwrap();
    for algorithm in ["fastcdc", "vector"] {
        let out = chunkah(&["chunk", "--algorithm", algorithm, p], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = lines(&out);
        let config =
            ChunkerConfig::default().with_algorithm(algorithm.parse::<Algorithm>().unwrap());
        let expected = Chunker::auto(config).chunks(&data);
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g["path"], p);
            assert_eq!(g["offset"], e.offset);
            assert_eq!(g["length"], e.length);
            let bytes = &data[e.offset as usize..(e.offset + e.length) as usize];
            assert_eq!(g["digest"], ChunkId::of(bytes).to_string());
            assert_eq!(g.as_object().unwrap().len(), 4);
        }
    }
}

#[test]
fn stdin_threads_backends_and_sizes_give_the_same_cuts() {
    let (_dir, path, data) = sample();
    let p = path.to_str().unwrap();
    let reference = lines(&chunkah(
        &["chunk", "--digest", "none", "--backend", "scalar", p],
        None,
    ));
    assert!(reference.len() > 10);
    assert!(reference.iter().all(|l| l.get("digest").is_none()));
    let strip = |v: Vec<Value>| -> Vec<(u64, u64)> {
        v.iter()
            .map(|l| (l["offset"].as_u64().unwrap(), l["length"].as_u64().unwrap()))
            .collect()
    };
    let reference = strip(reference);
    let stdin = lines(&chunkah(&["chunk", "--digest", "none", "-"], Some(&data)));
    assert!(stdin.iter().all(|l| l["path"] == "-"));
    assert_eq!(strip(stdin), reference);
    let threaded = lines(&chunkah(
        &["chunk", "--digest", "none", "--threads", "3", p],
        None,
    ));
    assert_eq!(strip(threaded), reference);
    let sized = lines(&chunkah(
        &[
            "chunk", "--digest", "none", "--min", "16KiB", "--avg", "64K", "--max", "262144", p,
        ],
        None,
    ));
    assert_eq!(strip(sized), reference);
    let small = lines(&chunkah(
        &[
            "chunk", "--digest", "none", "--min", "1K", "--avg", "4K", "--max", "16K", p,
        ],
        None,
    ));
    assert!(small.len() > 4 * reference.len());
}

#[test]
fn several_files_print_in_order() {
    let (dir, path, _) = sample();
    let small = dir.0.join("small.txt");
    std::fs::write(&small, b"hello").unwrap();
    let empty = dir.0.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let out = chunkah(
        &[
            "chunk",
            small.to_str().unwrap(),
            empty.to_str().unwrap(),
            path.to_str().unwrap(),
            small.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success());
    let got = lines(&out);
    assert_eq!(got.first().unwrap()["path"], small.to_str().unwrap());
    assert_eq!(got.first().unwrap()["length"], 5);
    assert_eq!(got.last().unwrap()["path"], small.to_str().unwrap());
    assert!(got.iter().all(|l| l["path"] != empty.to_str().unwrap()));
}

#[test]
fn errors_name_the_cause_and_exit_non_zero() {
    let (dir, path, _) = sample();
    let missing = dir.0.join("missing.bin");
    let out = chunkah(&["chunk", missing.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing.bin") && err.contains("No such file"),
        "{err}"
    );

    let out = chunkah(&["chunk", dir.0.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));

    let p = path.to_str().unwrap();
    for (args, needle) in [
        (vec!["chunk", "--min", "12Q", p], "unknown suffix"),
        (vec!["chunk", "--min", "1", p], "minimum size 1"),
        (
            vec!["chunk", "--normalization", "7", p],
            "normalization level 7",
        ),
        (vec!["chunk", "--backend", "sse9", p], "unknown backend"),
        (vec!["chunk", "--threads", "0", p], "--threads"),
    ] {
        let out = chunkah(&args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        // Values out of range are usage mistakes, found by clap or after it.
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A usage error is exit code 2.
    assert_eq!(chunkah(&["chunk"], None).status.code(), Some(2));
}

#[test]
fn pack_names_sources_and_usage_mistakes_exit_2() {
    let dir = TempDir::new("cli");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-rootfs.tar");
    let layout = format!("oci:{}", dir.0.join("out").display());
    for (args, needle) in [
        (vec!["pack", sample, "-o", "/tmp/x"], "expected oci:DIR"),
        (
            vec!["pack", sample, "-o", "docker-archive:x.tar"],
            "unknown transport \"docker-archive\"",
        ),
        (
            vec!["pack", sample, "--max-layers", "0", "-o", &layout],
            "--max-layers",
        ),
        (
            vec!["pack", sample, "--label", "foo", "-o", &layout],
            "KEY=VALUE",
        ),
        (
            vec!["pack", "foo:bar", "-o", &layout],
            "unknown transport \"foo\"",
        ),
        (
            vec!["pack", sample, "-o", "dir:/tmp/x"],
            "dir: names a root file system, not an image",
        ),
        (
            vec!["build", "--rootfs", sample, "-o", "tar:x.tar"],
            "tar: names a root file system, not an output",
        ),
        (
            vec!["build", "--rootfs", sample, "-o", "foo:x"],
            "unknown transport \"foo\"",
        ),
        (vec!["chunk", "--min", "0", sample], "minimum size 0"),
    ] {
        let out = chunkah(&args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A missing tarball is named once.
    let missing = dir.0.join("missing.tar");
    let out = chunkah(&["pack", missing.to_str().unwrap(), "-o", &layout], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("missing.tar").count(), 1, "{err}");
    // A bare file path is a tarball; a malformed one is an error whose
    // message carries no raw control bytes.
    let bad = dir.0.join("bad.tar");
    let mut bytes = vec![0x1bu8, b'[', b'3', b'1', b'm'];
    bytes.extend(std::iter::repeat_n(b'A', 600));
    std::fs::write(&bad, &bytes).unwrap();
    let out = chunkah(&["pack", bad.to_str().unwrap(), "-o", &layout], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.tar"), "{err}");
    assert!(
        !err.trim_end().chars().any(|c| c.is_control()),
        "control characters reach the terminal: {err:?}"
    );
    assert!(!dir.0.join("out").exists(), "a failed pack left its layout");
}

/// The README's sample output is what `pack --json` prints for the sample.
#[test]
fn the_readme_sample_is_what_pack_prints() {
    let dir = TempDir::new("cli");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = common::chunkah()
        .current_dir(root)
        .args(["pack", "tar:testdata/sample-rootfs.tar", "-o"])
        .arg(format!("oci:{}", dir.0.join("sample-image").display()))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let short = |d: &Value| format!("{}…", &d.as_str().unwrap()[..15]);
    let mut want = format!(
        "{{\n  \"schemaVersion\": 1,\n  \"manifest\": \"{}\",\n  \"config\": \"{}\",\n  \"totalSize\": {},\n  \"components\": {},\n  \"layers\": [\n",
        short(&r["manifest"]),
        short(&r["config"]),
        r["totalSize"],
        r["components"]
    );
    let layers = r["layers"].as_array().unwrap();
    for (i, l) in layers.iter().enumerate() {
        want.push_str(&format!(
            "    {{ \"digest\": \"{}\", \"size\": {}, \"tarSize\": {}, \"entries\": {}, \"components\": {} }}{}\n",
            short(&l["digest"]),
            l["size"],
            l["tarSize"],
            l["entries"],
            l["components"].to_string().replace(',', ", "),
            if i + 1 < layers.len() { "," } else { "" }
        ));
    }
    want.push_str(
        "  ],\n  \"warnings\": [],\n  \"reference\": \"oci:target/sample-image:latest\"\n}",
    );
    let mut readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    // The README shows what x86_64 prints: elsewhere the config names
    // another architecture, so its digest and the manifest's differ; the
    // layers are the same everywhere.
    if std::env::consts::ARCH != "x86_64" {
        let drop_digests = |text: &str| -> String {
            text.lines()
                .filter(|l| !l.starts_with("  \"manifest\": ") && !l.starts_with("  \"config\": "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        readme = drop_digests(&readme);
        want = drop_digests(&want);
    }
    assert!(
        readme.contains(&want),
        "README.md's sample output is stale; it should read:\n{want}"
    );
}

#[test]
fn unavailable_backend_from_the_environment_is_an_error() {
    let (_dir, path, _) = sample();
    #[cfg(target_arch = "x86_64")]
    let foreign = "neon";
    #[cfg(not(target_arch = "x86_64"))]
    let foreign = "avx2";
    let out = common::chunkah()
        .args(["chunk", path.to_str().unwrap()])
        .env("CHUNKAH_BACKEND", foreign)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("backend {foreign} is not available")));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let (_dir, path, _) = sample();
    let mut child = common::chunkah()
        .args([
            "chunk",
            "--min",
            "1K",
            "--avg",
            "4K",
            "--max",
            "16K",
            path.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
