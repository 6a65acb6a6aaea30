//! `chunkah pack` end to end: a synthetic tree holding every kind of entry and
//! real Debian trees go through the real binary, come back out with umoci, and
//! must match entry by entry; skopeo must accept every image.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

fn umoci_unpack(layout: &Path, tag: &str, dest: &Path) {
    let umoci = require_tool("umoci", "umoci");
    run(Command::new(umoci)
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(dest));
}

#[test]
fn synthetic_tree_survives_pack_and_umoci_unpack() {
    require_root();
    let tmp = TempDir::new("pack-synth");
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    synthetic_tree(&src);
    let layout = tmp.path().join("layout");
    let dest = format!("oci:{}:synthetic", layout.display());
    // umoci 0.4 reads gzip layers, not zstd.
    let report = pack_json(&src, &dest, &["--compression", "gzip", "--max-layers", "8"]);
    let layers = report["layers"].as_array().unwrap();
    assert!(
        layers.len() > 1 && layers.len() <= 8,
        "{} layers",
        layers.len()
    );
    assert!(layers.iter().any(|l| l["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "custom-component")));
    let unpacked = tmp.path().join("bundle");
    umoci_unpack(&layout, "synthetic", &unpacked);
    let diffs = diff_trees(&src, &unpacked.join("rootfs"), Some(EPOCH.parse().unwrap()));
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    let skopeo = require_tool("skopeo", "skopeo");
    run(Command::new(&skopeo)
        .arg("inspect")
        .arg(format!("oci:{}:synthetic", layout.display())));
}

#[test]
fn packing_is_reproducible_whatever_the_threads() {
    let tmp = TempDir::new("pack-repro");
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    for i in 0..200 {
        fs::write(src.join(format!("a/b/f{i}")), vec![i as u8; i * 1000]).unwrap();
    }
    let mut digests = Vec::new();
    for (i, threads) in ["1", "2", "2"].iter().enumerate() {
        let layout = tmp.path().join(format!("layout{i}"));
        let r = pack_json(
            &src,
            &format!("oci:{}", layout.display()),
            &["--threads", threads],
        );
        digests.push(r["manifest"].as_str().unwrap().to_string());
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[1], digests[2]);
}

#[test]
fn a_layout_keeps_its_other_tags_and_bad_input_fails_cleanly() {
    let tmp = TempDir::new("pack-tags");
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("x"), b"1").unwrap();
    let layout = tmp.path().join("layout");
    let one = pack_json(&src, &format!("oci:{}:one", layout.display()), &[]);
    fs::write(src.join("x"), b"2").unwrap();
    let two = pack_json(&src, &format!("oci:{}:two", layout.display()), &[]);
    assert_ne!(one["manifest"], two["manifest"]);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(tags, ["one", "two"]);
    let before = fs::read(layout.join("index.json")).unwrap();
    // Exit 1 for a source that is not there, 2 for usage mistakes.
    for (args, needle, code) in [
        (
            vec!["pack", "/nonexistent/rootfs", "-o"],
            "/nonexistent/rootfs",
            1,
        ),
        (
            vec!["pack", src.to_str().unwrap(), "--max-layers", "0", "-o"],
            "--max-layers",
            2,
        ),
        (
            vec![
                "pack",
                src.to_str().unwrap(),
                "--compression",
                "zstd",
                "--compression-level",
                "40",
                "-o",
            ],
            "level 40",
            2,
        ),
        (
            vec!["pack", src.to_str().unwrap(), "--label", "novalue", "-o"],
            "KEY=VALUE",
            2,
        ),
    ] {
        let out = chunkah()
            .args(&args)
            .arg(format!("oci:{}:three", layout.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(
        fs::read(layout.join("index.json")).unwrap(),
        before,
        "a failed run changed the index"
    );
    // A destination that is not a layout is refused.
    let out = chunkah()
        .args(["pack", src.to_str().unwrap(), "-o"])
        .arg(format!("oci:{}", src.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an OCI image layout"));
}

/// Real Debian trees from ../shared/data/make-rootfs-series.sh. The directory
/// comes from CHUNKAH_SERIES_DIR (scripts/test.sh builds it).
#[test]
fn debian_series_trees_survive_pack_and_umoci_unpack() {
    require_root();
    let Some(series) = std::env::var_os("CHUNKAH_SERIES_DIR") else {
        panic!("set CHUNKAH_SERIES_DIR to the output of ../shared/data/make-rootfs-series.sh (scripts/test.sh does)");
    };
    let series = Path::new(&series);
    let tmp = TempDir::new("pack-series");
    let layout = tmp.path().join("layout");
    for v in ["v1", "v3"] {
        let src = series.join(v);
        assert!(
            src.join("etc/debian_version").is_file(),
            "{} is not a Debian tree",
            src.display()
        );
        // Seekable zstd (a frame per chunk, the index in a skippable frame):
        // skopeo's zstd decoder must read it, as umoci 0.4 reads gzip only.
        let zstd_layout = tmp.path().join(format!("zstd-{v}"));
        let report = pack_json(&src, &format!("oci:{}:{v}", zstd_layout.display()), &[]);
        assert!(report["layers"].as_array().unwrap().len() <= 64);
        assert!(report["components"].as_u64().unwrap() > 50);
        let skopeo = require_tool("skopeo", "skopeo");
        run(Command::new(&skopeo)
            .arg("inspect")
            .arg(format!("oci:{}:{v}", zstd_layout.display())));
        run(Command::new(&skopeo)
            .args(["copy", "--dest-compress", "--dest-compress-format", "gzip"])
            .arg(format!("oci:{}:{v}", zstd_layout.display()))
            .arg(format!("oci:{}:{v}", layout.display())));
        let bundle = tmp.path().join(format!("bundle-{v}"));
        umoci_unpack(&layout, v, &bundle);
        let diffs = diff_trees(&src, &bundle.join("rootfs"), Some(EPOCH.parse().unwrap()));
        assert!(
            diffs.is_empty(),
            "{v}: {} differences:\n{}",
            diffs.len(),
            diffs
                .iter()
                .take(40)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn prior_keeps_unchanged_components_in_identical_layers() {
    let tmp = TempDir::new("pack-prior");
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for c in 0..6 {
        for f in 0..5 {
            let p = src.join(format!("c{c}-f{f}"));
            fs::write(
                &p,
                format!("component {c} file {f}\n").repeat(100 * (c + 1)),
            )
            .unwrap();
            set_xattr(&p, "user.component", format!("comp{c}").as_bytes());
        }
    }
    let layout = tmp.path().join("layout");
    let digests = |r: &serde_json::Value| -> Vec<String> {
        r["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    // Three layers for six components: they share.
    let v1 = pack_json(
        &src,
        &format!("oci:{}:v1", layout.display()),
        &["--max-layers", "3"],
    );
    // comp0 changes, comp6 is new.
    fs::write(src.join("c0-f0"), b"changed").unwrap();
    let new = src.join("c6-f0");
    fs::write(&new, b"new component").unwrap();
    set_xattr(&new, "user.component", b"comp6");
    let prior = format!("oci:{}:v1", layout.display());
    let v2 = pack_json(
        &src,
        &format!("oci:{}:v2", layout.display()),
        &["--max-layers", "3", "--prior", &prior],
    );
    let (d1, d2) = (digests(&v1), digests(&v2));
    assert_eq!(d2.len(), 3);
    let reused = d2.iter().filter(|d| d1.contains(d)).count();
    // Only the layer of comp0 and the one comp6 joins may change.
    assert!(reused >= 1, "no layer reused: {d1:?} {d2:?}");
    for (l1, l2) in v1["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v2["layers"].as_array().unwrap())
    {
        let comps = |l: &serde_json::Value| l["components"].as_array().unwrap().clone();
        let unchanged =
            !comps(l1).iter().any(|c| c == "comp0") && !comps(l2).iter().any(|c| c == "comp6");
        if unchanged {
            assert_eq!(
                l1["digest"], l2["digest"],
                "a layer of unchanged components changed"
            );
        }
    }
    // A prior image that chunkah did not make is refused with a clear error.
    let out = chunkah()
        .args(["pack", src.to_str().unwrap(), "-o"])
        .arg(format!("oci:{}:v3", layout.display()))
        .args(["--prior", &format!("oci:{}:missing", layout.display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image tagged \"missing\""));
}

fn random_file(path: &Path, len: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let data = chunkah::chunker::golden_input(0x9e37_79b9_7f4a_7c15 ^ len as u64, len);
    fs::write(path, data).unwrap();
}

fn leftovers(layout: &Path) -> Vec<String> {
    let blobs = layout.join("blobs/sha256");
    fs::read_dir(&blobs)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ctrl_c_stops_cleanly_and_publishes_nothing() {
    let tmp = TempDir::new("pack-sigint");
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    // Random data at gzip level 9 takes seconds: time to interrupt.
    for i in 0..4 {
        random_file(&src.join(format!("big{i}")), 50 << 20);
    }
    let layout = tmp.path().join("layout");
    let child = chunkah()
        .args([
            "pack",
            src.to_str().unwrap(),
            "--compression",
            "gzip",
            "--compression-level",
            "9",
            "-o",
        ])
        .arg(format!("oci:{}:t", layout.display()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        !layout.join("index.json").exists(),
        "an interrupted run published an image"
    );
    assert_eq!(leftovers(&layout), Vec::<String>::new());
}

#[test]
fn a_full_disk_is_a_clear_error_and_leaves_nothing_behind() {
    require_root();
    let tmp = TempDir::new("pack-full");
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("big"), 8 << 20);
    let small = tmp.path().join("small");
    fs::create_dir_all(&small).unwrap();
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&small));
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&small);
    let layout = small.join("layout");
    let out = chunkah()
        .args(["pack", src.to_str().unwrap(), "--compression", "none", "-o"])
        .arg(format!("oci:{}", layout.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(layout.to_str().unwrap()),
        "the error does not name the destination: {err}"
    );
    assert!(!layout.join("index.json").exists());
    assert_eq!(leftovers(&layout), Vec::<String>::new());
}

#[test]
fn a_tarball_gives_the_same_image_as_the_directory() {
    require_root();
    let tmp = TempDir::new("pack-tar");
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    synthetic_tree(&src);
    let tarball = tmp.path().join("rootfs.tar");
    let gnu_tar = require_tool("tar", "tar");
    run(Command::new(gnu_tar)
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-cpf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("."));
    let layout = tmp.path().join("layout");
    let from_dir = pack_json(
        &src,
        &format!("oci:{}:dir", layout.display()),
        &["--compression", "gzip"],
    );
    let out = run(chunkah()
        .args([
            "pack",
            &format!("tar:{}", tarball.display()),
            "--json",
            "--compression",
            "gzip",
        ])
        .args(["--source-date-epoch", EPOCH, "-o"])
        .arg(format!("oci:{}:tar", layout.display())));
    let from_tar: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bundle = tmp.path().join("bundle");
    umoci_unpack(&layout, "tar", &bundle);
    let diffs = diff_trees(&src, &bundle.join("rootfs"), Some(EPOCH.parse().unwrap()));
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    assert_eq!(
        from_dir["manifest"], from_tar["manifest"],
        "tar: and dir: sources differ"
    );
    // Compressed tarballs give the same image.
    for (tool, ext) in [("gzip", "gz"), ("zstd", "zst")] {
        let compressed = tmp.path().join(format!("rootfs.tar.{ext}"));
        run(Command::new(require_tool(tool, tool))
            .args(["-c", "-k"])
            .arg(&tarball)
            .stdout(fs::File::create(&compressed).unwrap()));
        let out = run(chunkah()
            .args([
                "pack",
                &format!("tar:{}", compressed.display()),
                "--json",
                "--compression",
                "gzip",
            ])
            .args(["--source-date-epoch", EPOCH, "-o"])
            .arg(format!("oci:{}:{ext}", layout.display())));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            report["manifest"], from_tar["manifest"],
            "tar.{ext} differs"
        );
    }
}

#[test]
fn hostile_or_broken_tarballs_are_refused() {
    let tmp = TempDir::new("pack-badtar");
    let layout = tmp.path().join("layout");
    // An entry that climbs out of the root.
    let mut evil = Vec::new();
    {
        let mut b = tar::Builder::new(&mut evil);
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.as_gnu_mut().unwrap().name[..10].copy_from_slice(b"../escaped");
        h.set_cksum();
        b.append(&h, &b"evil"[..]).unwrap();
        b.finish().unwrap();
    }
    let evil_path = tmp.path().join("evil.tar");
    fs::write(&evil_path, &evil).unwrap();
    let gz_path = tmp.path().join("rootfs.tar.gz");
    fs::write(&gz_path, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
    let truncated = tmp.path().join("truncated.tar");
    fs::write(&truncated, &evil[..700]).unwrap();
    for (file, needle) in [
        (&evil_path, "leaves the root"),
        (&gz_path, "rootfs.tar.gz"),
        (&truncated, "truncated.tar"),
    ] {
        let out = chunkah()
            .args(["pack", &format!("tar:{}", file.display()), "-o"])
            .arg(format!("oci:{}", layout.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(needle), "{file:?}: {err}");
    }
    assert!(!tmp.path().join("escaped").exists());
    assert!(!layout.join("index.json").exists());
}

#[test]
fn the_readme_sample_packs_into_its_packages() {
    let tmp = TempDir::new("pack-sample");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-rootfs.tar");
    let out = run(chunkah()
        .args(["pack", &format!("tar:{sample}"), "--json", "-o"])
        .arg(format!("oci:{}", tmp.path().join("image").display())));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let comps: Vec<&str> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            l["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
        })
        .collect();
    assert!(
        comps.contains(&"deb:hello") && comps.contains(&"deb:greetings"),
        "{comps:?}"
    );
    assert_eq!(report["components"], 4);
    let again = run(chunkah()
        .args(["pack", &format!("tar:{sample}"), "--json", "-o"])
        .arg(format!("oci:{}", tmp.path().join("again").display())));
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["manifest"], again["manifest"]);
}

#[test]
fn a_tarball_cannot_write_through_its_symlinks() {
    let tmp = TempDir::new("pack-tarlink");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let mut bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut bytes);
        // var -> an absolute directory outside any root, then a database file below it.
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        b.append_link(&mut h, "var", &outside).unwrap();
        for dir in ["var/lib", "var/lib/dpkg"] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1);
            b.append_data(&mut h, dir, &[][..]).unwrap();
        }
        let status = b"Package: x\nStatus: install ok installed\n";
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(status.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        b.append_data(&mut h, "var/lib/dpkg/status", &status[..])
            .unwrap();
        b.finish().unwrap();
    }
    let tarball = tmp.path().join("links.tar");
    fs::write(&tarball, bytes).unwrap();
    let out = chunkah()
        .args(["pack", &format!("tar:{}", tarball.display()), "-o"])
        .arg(format!("oci:{}", tmp.path().join("layout").display()))
        .output()
        .unwrap();
    // Entries below a symbolic link are refused outright.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("var/lib lies below var, which is not a directory"),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "pack wrote through a symlink of the tarball"
    );
}

#[test]
fn config_file_and_labels_reach_the_image_config() {
    let tmp = TempDir::new("pack-config");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample-rootfs.tar");
    let config = tmp.path().join("config.json");
    fs::write(
        &config,
        r#"{"config":{"Env":["PATH=/usr/bin"],"Entrypoint":["/usr/bin/hello"],"User":"1000:1000",
            "WorkingDir":"/home/user","ExposedPorts":{"8080/tcp":{}},"Volumes":{"/data":{}},
            "StopSignal":"SIGTERM","Labels":{"a":"file","b":"file"}}}"#,
    )
    .unwrap();
    let layout = tmp.path().join("layout");
    run(chunkah()
        .args([
            "pack",
            &format!("tar:{sample}"),
            "--config",
            config.to_str().unwrap(),
        ])
        .args([
            "--label",
            "b=flag",
            "--annotation",
            "org.example=yes",
            "-q",
            "-o",
        ])
        .arg(format!("oci:{}", layout.display())));
    let skopeo = require_tool("skopeo", "skopeo");
    let out = run(Command::new(&skopeo)
        .args(["inspect", "--config"])
        .arg(format!("oci:{}", layout.display())));
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &cfg["config"];
    assert_eq!(c["Env"], serde_json::json!(["PATH=/usr/bin"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/bin/hello"]));
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["WorkingDir"], "/home/user");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert!(c["Volumes"]["/data"].is_object());
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["Labels"], serde_json::json!({"a": "file", "b": "flag"}));
    let out = run(Command::new(&skopeo)
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}", layout.display())));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["annotations"]["org.example"], "yes");
    // Every layer says its packages as rpm-ostree's chunked images do (what
    // Universal Blue's "is it chunked" check and rechunk's plan reader read;
    // bookworm's skopeo 1.9 has no LayersData, so from the raw manifest).
    let packages: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["ostree.components"]
                .as_str()
                .expect("on every layer")
        })
        .flat_map(|c| c.split(','))
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(packages, ["greetings", "hello"], "{manifest}");
    // A config file that is not JSON is an error naming it.
    fs::write(&config, b"not json").unwrap();
    let out = chunkah()
        .args([
            "pack",
            &format!("tar:{sample}"),
            "--config",
            config.to_str().unwrap(),
            "-o",
        ])
        .arg(format!("oci:{}", layout.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json is not JSON"));
}

/// An image of more layers than Docker's overlay2 takes is packed with a
/// warning saying so (stderr and `--json`); one of 128 is not.
#[test]
fn more_layers_than_docker_takes_is_a_warning() {
    let dir = TempDir::new("docker-layers");
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    for i in 0..140 {
        let file = root.join(format!("f{i:03}"));
        fs::write(&file, format!("file {i}\n").repeat(100)).unwrap();
        set_xattr(&file, "user.component", format!("c{i:03}").as_bytes());
    }
    for (max, warns) in [(200, true), (128, false)] {
        let out = run(chunkah()
            .arg("pack")
            .arg(&root)
            .args(["--json", "--max-layers", &max.to_string(), "-o"])
            .arg(format!("oci:{}:m{max}", dir.path().join("out").display())));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let layers = report["layers"].as_array().unwrap().len();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warned = report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("Docker's overlay2"));
        assert_eq!(warned, warns, "{max}: {layers} layers: {report}");
        assert_eq!(stderr.contains("Docker's overlay2"), warns, "{stderr}");
        assert_eq!(layers > 128, warns, "{layers} layers");
    }
}

#[test]
fn components_files_name_unowned_files_and_isolated_components_get_their_own_layer() {
    let tmp = TempDir::new("pack-assign");
    let src = tmp.path().join("src");
    for i in 0..40 {
        random_file(&src.join(format!("opt/app/lib/f{i:02}.so")), 1000 + i * 10);
        random_file(&src.join(format!("srv/data/d{i:02}")), 2000 + i * 10);
    }
    random_file(&src.join("usr/local/bin/tool1"), 500);
    let rules = tmp.path().join("components.txt");
    fs::write(
        &rules,
        "# our application\n/opt/app/**/*.so app-libs\nusr/local/bin/tool? tools\n",
    )
    .unwrap();
    let layout = tmp.path().join("layout");
    let dest = |tag: &str| format!("oci:{}:{tag}", layout.display());
    let components = |report: &serde_json::Value| -> Vec<Vec<String>> {
        report["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l["components"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    };
    let rules_arg = rules.to_str().unwrap();
    let plain = components(&pack_json(
        &src,
        &dest("a"),
        &["--components", rules_arg, "--max-layers", "3"],
    ));
    let all: Vec<&String> = plain.iter().flatten().collect();
    assert!(
        all.iter().any(|c| *c == "app-libs") && all.iter().any(|c| *c == "tools"),
        "{plain:?}"
    );
    assert!(
        !plain.contains(&vec!["tools".to_string()]),
        "tools shares a layer: {plain:?}"
    );
    let isolated = components(&pack_json(
        &src,
        &dest("b"),
        &[
            "--components",
            rules_arg,
            "--max-layers",
            "3",
            "--isolate",
            "tools",
        ],
    ));
    assert!(isolated.len() <= 3);
    assert!(
        isolated.contains(&vec!["tools".to_string()]),
        "{isolated:?}"
    );
    // A bad rule and too many isolated components are errors that say so.
    fs::write(&rules, "lonely-pattern\n").unwrap();
    let out = chunkah()
        .arg("pack")
        .arg(&src)
        .args(["-o", &dest("c"), "--components", rules_arg])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("components.txt:1: a rule is PATTERN COMPONENT"),
        "{err}"
    );
    let out = chunkah()
        .arg("pack")
        .arg(&src)
        .args([
            "-o",
            &dest("d"),
            "--max-layers",
            "2",
            "--isolate",
            "a",
            "--isolate",
            "b",
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("isolate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
