//! `chunkah build` as coreos/chunkah's users call it: the command lines of
//! its README and Containerfiles run unchanged through a shell (the
//! container's `/chunkah` and `/run/src` mounts become scratch folders),
//! the flags each reach the image, bad values are usage errors, and two
//! builds of one tree are identical to the byte.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_chunkah"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A shell running `line` with the built `chunkah` first on PATH, in `cwd`,
/// with `env` set and the build variables of the caller's environment
/// cleared.
fn shell(cwd: &Path, env: &[(&str, &str)], line: &str) -> Output {
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(line).current_dir(cwd).env("PATH", path);
    for v in [
        "CHUNKAH_ROOTFS",
        "CHUNKAH_CONFIG_STR",
        "CHUNKAH_THREADS",
        "SOURCE_DATE_EPOCH",
        "RUST_LOG",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small root file system: a tool, a config file, devices and a pipe,
/// an OSTree store under /sysroot, and directories to prune.
fn rootfs(root: &Path) {
    let p = |s: &str| root.join(s);
    for d in [
        "usr/bin",
        "etc",
        "dev",
        "sysroot/ostree/repo",
        "prune-me/sub",
        "prune-children/sub",
    ] {
        fs::create_dir_all(p(d)).unwrap();
    }
    fs::write(p("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    fs::write(p("etc/os-release"), b"ID=test\n").unwrap();
    symlink("../usr/bin/tool", p("etc/tool-link")).unwrap();
    fs::write(p("sysroot/ostree/repo/object"), vec![7u8; 4096]).unwrap();
    fs::write(p("prune-me/sub/file"), b"pruned").unwrap();
    fs::write(p("prune-children/sub/file"), b"pruned").unwrap();
    set_xattr(&p("prune-children"), "user.kept", b"yes");
    mknod(&p("dev/null"), libc::S_IFCHR | 0o666, 1, 3);
    mknod(&p("etc/fifo"), libc::S_IFIFO | 0o644, 0, 0);
    set_xattr(&p("usr/bin/tool"), "user.component", b"custom-apps");
    set_xattr(&p("usr/bin/tool"), "user.update-interval", b"monthly");
}

/// `podman inspect` output for an image with labels, annotations, an
/// architecture and a creation time.
const INSPECT: &str = r#"[{"Id":"0123","Created":"2024-05-01T12:34:56.789Z","Architecture":"amd64","Os":"linux",
  "Annotations":{"org.example.note":"kept"},
  "Config":{"Env":["PATH=/usr/bin"],"Entrypoint":["/usr/bin/tool"],"WorkingDir":"/srv",
    "Labels":{"containers.bootc":"1","ostree.commit":"abc","ostree.final-diffid":"sha256:1","vendor":"test"}}}]"#;

/// 2024-05-01T12:34:56Z.
const INSPECT_CREATED: i64 = 1_714_566_896;

/// The files of an OCI archive unpacked into `dir`.
fn untar(archive: &Path, dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir));
}

/// The only image of the layout at `dir`: its index entry, manifest and
/// config.
fn image(dir: &Path) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let index = read_json(&dir.join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    let blob = |d: &serde_json::Value| dir.join("blobs/sha256").join(&d.as_str().unwrap()[7..]);
    let manifest = read_json(&blob(&entries[0]["digest"]));
    let config = read_json(&blob(&manifest["config"]["digest"]));
    (entries[0].clone(), manifest, config)
}

/// Every path in every layer of the layout at `dir`.
fn layer_paths(dir: &Path) -> Vec<String> {
    let (_, manifest, _) = image(dir);
    let mut out = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        let blob = dir
            .join("blobs/sha256")
            .join(&l["digest"].as_str().unwrap()[7..]);
        let list = run(Command::new("tar").arg("-tf").arg(&blob));
        out.extend(
            String::from_utf8(list.stdout)
                .unwrap()
                .lines()
                .map(|s| s.trim_start_matches("./").trim_end_matches('/').to_string()),
        );
    }
    out
}

#[test]
fn coreos_readme_invocations_run_unchanged() {
    require_root();
    let tmp = TempDir::new("build-readme");
    let root = tmp.path().join("chunkah");
    rootfs(&root);
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("inspect.json"), INSPECT).unwrap();
    // The README's config.json, `WorkDir` and all.
    fs::write(
        src.join("config.json"),
        "{\n    \"Entrypoint\": [\"/bin/bash\"],\n    \"Cmd\": [\"-c\", \"echo hi\"],\n    \"WorkDir\": \"/root\"\n}\n",
    )
    .unwrap();
    let rootfs_env = ("CHUNKAH_ROOTFS", root.to_str().unwrap());
    let inspect = fs::read_to_string(src.join("inspect.json")).unwrap();

    // README: `podman run … -e CHUNKAH_CONFIG_STR quay.io/coreos/chunkah build -t NAME | podman load`.
    ok(
        shell(
            &src,
            &[rootfs_env, ("CHUNKAH_CONFIG_STR", &inspect)],
            "chunkah build -t localhost/fedora-minimal-chunked:latest > out.ociarchive",
        ),
        "build -t",
    );
    untar(&src.join("out.ociarchive"), &src.join("a"));
    let (entry, manifest, config) = image(&src.join("a"));
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "localhost/fedora-minimal-chunked:latest"
    );
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/tool");
    assert_eq!(config["config"]["WorkingDir"], "/srv");
    assert_eq!(config["config"]["Labels"]["vendor"], "test");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["created"], "2024-05-01T12:34:56Z");
    assert_eq!(manifest["annotations"]["org.example.note"], "kept");
    // Without SOURCE_DATE_EPOCH the inspect's creation time clamps mtimes.
    run(Command::new(require_tool("skopeo", "skopeo"))
        .arg("inspect")
        .arg(format!(
            "oci-archive:{}",
            src.join("out.ociarchive").display()
        )));

    // README: `podman run -v /path/to/rootfs:/chunkah … -e CHUNKAH_CONFIG_STR="$(cat config.json)" … build > out.ociarchive`.
    ok(
        shell(
            &src,
            &[rootfs_env],
            r#"CHUNKAH_CONFIG_STR="$(cat config.json)" chunkah build > out.ociarchive"#,
        ),
        "build with config.json",
    );
    untar(&src.join("out.ociarchive"), &src.join("b"));
    let (entry, _, config) = image(&src.join("b"));
    assert!(
        entry.get("annotations").is_none(),
        "unnamed without -t: {entry}"
    );
    assert_eq!(config["config"]["Entrypoint"][0], "/bin/bash");
    assert_eq!(config["config"]["Cmd"][1], "echo hi");

    // The splitter Containerfile: `chunkah build ${CHUNKAH_ARGS} --output oci:/run/src/out`.
    let out = src.join("out");
    ok(
        shell(
            &src,
            &[
                rootfs_env,
                ("CHUNKAH_CONFIG_STR", &inspect),
                ("CHUNKAH_ARGS", "-v --max-layers 96"),
            ],
            &format!(
                "chunkah build ${{CHUNKAH_ARGS}} --output oci:{}",
                out.display()
            ),
        ),
        "splitter",
    );
    run(Command::new(require_tool("skopeo", "skopeo"))
        .arg("inspect")
        .arg(format!("oci:{}", out.display())));
    fs::remove_dir_all(&out).unwrap();

    // README, bootc: --prune /sysroot/ --max-layers 128 and the ostree labels removed.
    let line = format!(
        "chunkah build --prune /sysroot/ --max-layers 128 \\\n  --label ostree.commit- --label ostree.final-diffid- \\\n  --output oci:{}",
        out.display()
    );
    let bootc = ok(
        shell(&src, &[rootfs_env, ("CHUNKAH_CONFIG_STR", &inspect)], &line),
        "bootc",
    );
    assert!(
        !String::from_utf8_lossy(&bootc.stderr).contains("ostree"),
        "no OSTree warning once /sysroot/ is pruned"
    );
    let (_, _, config) = image(&out);
    let labels = config["config"]["Labels"].as_object().unwrap();
    let mut keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["containers.bootc", "vendor"]);
    let paths = layer_paths(&out);
    assert!(paths.iter().any(|p| p == "sysroot"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with("sysroot/")),
        "{paths:?}"
    );
    fs::remove_dir_all(&out).unwrap();

    // coreos/chunkah's Containerfile rechunking itself.
    let line = format!(
        r#"chunkah build --rootfs {} \
        --config-str '{{"Config": {{"Entrypoint": ["/usr/bin/chunkah"], "Env": ["CHUNKAH_ROOTFS=/chunkah"], "WorkingDir": "/srv"}}}}' \
        --output oci:{}"#,
        root.display(),
        out.display()
    );
    ok(shell(&src, &[], &line), "self-rechunk");
    let (_, _, config) = image(&out);
    assert_eq!(config["config"]["Env"][0], "CHUNKAH_ROOTFS=/chunkah");
    fs::remove_dir_all(&out).unwrap();

    // Its end-to-end tests: SOURCE_DATE_EPOCH, -v, special files and prunes.
    let verbose = ok(
        shell(
            &src,
            &[rootfs_env],
            "SOURCE_DATE_EPOCH=1700000000 chunkah build -v > out.ociarchive",
        ),
        "SOURCE_DATE_EPOCH",
    );
    let said = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        said.contains("build complete") && said.contains("sysroot/ostree"),
        "{said}"
    );
    untar(&src.join("out.ociarchive"), &src.join("c"));
    let (_, _, config) = image(&src.join("c"));
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let paths = layer_paths(&src.join("c"));
    for kept in ["dev/null", "etc/fifo", "sysroot/ostree/repo/object"] {
        assert!(paths.iter().any(|p| p == kept), "{kept} kept: {paths:?}");
    }
    ok(
        shell(
            &src,
            &[rootfs_env],
            "chunkah build -v --skip-special-files --prune /prune-me --prune /prune-children/ > out.ociarchive",
        ),
        "prunes",
    );
    untar(&src.join("out.ociarchive"), &src.join("d"));
    let paths = layer_paths(&src.join("d"));
    for gone in ["dev/null", "etc/fifo", "prune-me", "prune-children/sub"] {
        assert!(
            !paths.iter().any(|p| p == gone),
            "{gone} left out: {paths:?}"
        );
    }
    assert!(paths.iter().any(|p| p == "prune-children"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "usr/bin/tool"), "{paths:?}");

    // Its README's verbosity: -vv and RUST_LOG.
    let vv = ok(
        shell(&src, &[rootfs_env], "chunkah build -vv > out.ociarchive"),
        "-vv",
    );
    assert!(String::from_utf8_lossy(&vv.stderr).contains("layer sha256:"));
    let quiet = ok(
        shell(
            &src,
            &[rootfs_env, ("RUST_LOG", "warn")],
            "chunkah build > out.ociarchive",
        ),
        "RUST_LOG=warn",
    );
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("build complete"));
    let debug = ok(
        shell(
            &src,
            &[rootfs_env, ("RUST_LOG", "chunkah=debug")],
            "chunkah build > out.ociarchive",
        ),
        "RUST_LOG=chunkah=debug",
    );
    assert!(String::from_utf8_lossy(&debug.stderr).contains("layer written"));
    ok(
        shell(&src, &[], "chunkah --help && chunkah build --help"),
        "--help",
    );
}

#[test]
fn two_builds_without_source_date_epoch_are_identical() {
    require_root();
    let tmp = TempDir::new("build-repro");
    let root = tmp.path().join("rootfs");
    rootfs(&root);
    let r = root.to_str().unwrap();
    let t = tmp.path();
    for (name, threads) in [("one", "1"), ("two", "2")] {
        ok(
            shell(
                t,
                &[("CHUNKAH_THREADS", threads)],
                &format!("chunkah build --rootfs {r} > {name}.tar"),
            ),
            name,
        );
    }
    let (a, b) = (
        fs::read(t.join("one.tar")).unwrap(),
        fs::read(t.join("two.tar")).unwrap(),
    );
    assert!(a.len() > 4096);
    assert!(a == b, "two builds of one tree differ");
    // With a config's creation time: identical too, and it is the image's.
    for name in ["three", "four"] {
        ok(
            shell(
                t,
                &[("CHUNKAH_CONFIG_STR", INSPECT)],
                &format!("chunkah build --rootfs {r} --compressed -o oci-archive:{name}.tar.gz"),
            ),
            name,
        );
    }
    let (c, d) = (
        fs::read(t.join("three.tar.gz")).unwrap(),
        fs::read(t.join("four.tar.gz")).unwrap(),
    );
    assert!(c == d, "two gzip builds of one tree differ");
    assert_eq!(
        &c[..2],
        &[0x1f, 0x8b],
        "--compressed wraps the archive in gzip"
    );
    run(Command::new("sh")
        .arg("-c")
        .arg("mkdir g && tar -xzf three.tar.gz -C g")
        .current_dir(t));
    let (_, manifest, config) = image(&t.join("g"));
    assert_eq!(
        config["created"],
        chunkah::oci::types::rfc3339(INSPECT_CREATED)
    );
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
}

#[test]
fn labels_architecture_and_special_files_reach_the_image() {
    require_root();
    let tmp = TempDir::new("build-flags");
    let root = tmp.path().join("rootfs");
    rootfs(&root);
    let t = tmp.path();
    let r = root.to_str().unwrap();
    let line = format!(
        "chunkah build --rootfs {r} --prune /sysroot --label base- --label - --label a=1 \
         --label b=x=y --label a- --label c= --annotation org.example.k=v --arch aarch64 \
         -t built -o oci:{}/layout",
        t.display()
    );
    ok(
        shell(
            t,
            &[(
                "CHUNKAH_CONFIG_STR",
                r#"{"Labels":{"base":"1","other":"2"}}"#,
            )],
            &line,
        ),
        "flags",
    );
    let (entry, manifest, config) = image(&t.join("layout"));
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "built"
    );
    assert_eq!(
        config["config"]["Labels"],
        serde_json::json!({"b": "x=y", "c": ""})
    );
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(manifest["annotations"]["org.example.k"], "v");
    let paths = layer_paths(&t.join("layout"));
    assert!(!paths.iter().any(|p| p.starts_with("sysroot")), "{paths:?}");
    assert!(paths.iter().any(|p| p == "dev/null"), "{paths:?}");
    ok(
        shell(
            t,
            &[],
            &format!(
                "chunkah build --rootfs {r} --arch x86_64 -o oci:{}/x86",
                t.display()
            ),
        ),
        "x86_64",
    );
    assert_eq!(image(&t.join("x86")).2["architecture"], "amd64");
}

#[test]
fn bad_values_are_usage_errors_naming_the_flag() {
    let tmp = TempDir::new("build-bad");
    let root = tmp.path().join("rootfs");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/f"), b"x").unwrap();
    let r = root.to_str().unwrap();
    let t = tmp.path();
    for (args, flag) in [
        ("--label foo", "--label"),
        ("--label =v", "--label"),
        ("--annotation foo", "--annotation"),
        ("--prune relative/path", "--prune"),
        ("--prune /", "--prune"),
        ("--prune /a/../b", "--prune"),
        ("--arch ''", "--arch"),
        ("--arch 'x y'", "--arch"),
        ("--skip-special-files=yes", "--skip-special-files"),
        ("--max-layers 0", "--max-layers"),
        ("--max-layers 501", "--max-layers"),
        ("--compressed --compression-level 10", "gzip level 10"),
        ("-o foo:bar", "--output"),
        ("-o oci:", "--output"),
        ("--source-date-epoch=-1", "--source-date-epoch"),
        ("--source-date-epoch soon", "--source-date-epoch"),
        ("--config c.json --config-str '{}'", "--config"),
        ("-T x", "--threads"),
    ] {
        let out = shell(
            t,
            &[],
            &format!("chunkah build --rootfs {r} {args} > out.tar"),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args}: {err}");
        assert!(err.contains(flag), "{args}: {err}");
    }
    // Mistakes found once running: exit 1, the path named, nothing written.
    let _ = fs::remove_file(t.join("out.tar"));
    for (args, said) in [
        ("--config missing.json", "missing.json"),
        ("--config-str '[]'", "empty inspect array"),
        (
            "--config-str '{\"Config\":{},\"Created\":\"noon\"}'",
            "RFC 3339",
        ),
    ] {
        let out = shell(
            t,
            &[],
            &format!("chunkah build --rootfs {r} {args} -o out.tar"),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args}: {err}");
        assert!(err.contains(said), "{args}: {err}");
        assert!(!t.join("out.tar").exists());
    }
    let out = shell(t, &[], "chunkah build --rootfs /does/not/exist -o out.tar");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/does/not/exist"));
    assert!(!t.join("out.tar").exists());
    let out = shell(t, &[], "chunkah build -o out.tar");
    assert_eq!(out.status.code(), Some(2), "--rootfs is required");
}
