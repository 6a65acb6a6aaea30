//! podman as the client: `chunkah build … | podman load`, `podman pull`
//! from an `oci:` layout and from a real registry, then `podman image
//! mount` compared entry by entry with the source tree (owners, modes,
//! xattrs, POSIX ACLs, devices, hard links, content), for seekable zstd,
//! gzip and uncompressed layers. podman gets its own `--root` and
//! `--runroot` in the test's scratch folder, so the machine's storage is
//! never touched; the overlay driver is used (podman's vfs driver copies
//! lower layers without their ACLs: a lower layer's ACLs were lost, the same
//! layer imported alone kept them).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::registry::Registry;
use common::*;

/// A podman with storage of its own; unmounts its images when dropped.
struct Podman {
    bin: PathBuf,
    root: PathBuf,
    runroot: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Self {
        let dir = fs::canonicalize(dir).unwrap();
        Podman {
            bin: require_tool("podman", "podman"),
            root: dir.join("podman-root"),
            runroot: dir.join("podman-run"),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args([
                "--storage-driver",
                "overlay",
                "--cgroup-manager",
                "cgroupfs",
            ]);
        c
    }

    /// The image's root file system, mounted.
    fn mount(&self, image: &str) -> PathBuf {
        let out = run(self.cmd().args(["image", "mount", image]));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    }

    /// `chunkah build ARGS | podman load`, the image named `name`.
    fn build_and_load(&self, args: &[&str], name: &str) {
        let mut build = chunkah()
            .arg("build")
            .args(args)
            .args(["-t", name, "--source-date-epoch", EPOCH])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let load = self
            .cmd()
            .arg("load")
            .stdin(build.stdout.take().unwrap())
            .output()
            .unwrap();
        let built = build.wait_with_output().unwrap();
        assert!(
            built.status.success(),
            "chunkah build: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        assert!(
            load.status.success(),
            "podman load: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        let said = String::from_utf8_lossy(&load.stdout);
        assert!(said.contains(name), "podman load named it: {said}");
    }
}

impl Podman {
    /// `src` packed (seekable zstd) and pushed to a registry started for
    /// it as `repo_tag`, pulled by podman and compared with `src`.
    fn pull_from_registry(&self, src: &Path, name: &str, repo_tag: &str) {
        let registry = Registry::start(name);
        let remote = format!("{}/{repo_tag}", registry.host());
        run(chunkah().arg("pack").arg(src).args([
            "-o",
            &format!("docker://{remote}"),
            "--source-date-epoch",
            EPOCH,
            "--quiet",
            "--tls-verify=false",
        ]));
        run(self
            .cmd()
            .args(["pull", "-q", "--tls-verify=false"])
            .arg(format!("docker://{remote}")));
        assert_same(src, &self.mount(&remote), "pulled from the registry");
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .args(["image", "umount", "--all", "--force"])
            .output();
    }
}

/// A POSIX ACL in its xattr form: `(tag, permissions, id)` entries.
fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut x = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        x.extend_from_slice(&tag.to_le_bytes());
        x.extend_from_slice(&perm.to_le_bytes());
        x.extend_from_slice(&id.to_le_bytes());
    }
    x
}

/// The edge-case tree, and a directory with access and default ACLs.
fn edge_tree(root: &Path) {
    fs::create_dir(root).unwrap();
    synthetic_tree(root);
    let dir = root.join("srv/shared");
    fs::create_dir_all(&dir).unwrap();
    let none = u32::MAX;
    // user::rwx user:1234:rwx group::r-x mask::rwx other::r-x
    set_xattr(
        &dir,
        "system.posix_acl_access",
        &acl(&[
            (1, 7, none),
            (2, 7, 1234),
            (4, 5, none),
            (0x10, 7, none),
            (0x20, 5, none),
        ]),
    );
    // default: user::rwx group::r-x group:55:r-x mask::r-x other::---
    set_xattr(
        &dir,
        "system.posix_acl_default",
        &acl(&[
            (1, 7, none),
            (4, 5, none),
            (8, 5, 55),
            (0x10, 5, none),
            (0x20, 0, none),
        ]),
    );
}

/// Every entry below the root the same; the root's own metadata is not
/// compared, as podman makes an image's root directory itself (0555,
/// root-owned) whatever the layers' `./` entry says.
fn assert_same(src: &Path, mounted: &Path, what: &str) {
    let mut diffs = diff_trees(src, mounted, Some(EPOCH.parse().unwrap()));
    diffs.retain(|d| !d.starts_with("the root: "));
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs[..diffs.len().min(40)].join("\n")
    );
}

#[test]
fn the_edge_case_tree_round_trips_through_podman() {
    require_root();
    let tmp = TempDir::new("podman-edge");
    let src = tmp.path().join("src");
    edge_tree(&src);
    // The ACLs really are on the source (the file system keeps them).
    let got = xattr_of(&src.join("srv/shared"), "system.posix_acl_default");
    assert!(got.is_some(), "the scratch file system keeps ACLs");
    let podman = Podman::new(tmp.path());
    let s = src.to_str().unwrap();
    for (kind, name) in [
        (None, "localhost/edge:plain"),
        (Some("gzip"), "localhost/edge:gzip"),
        (Some("zstd"), "localhost/edge:zstd"),
    ] {
        let mut args = vec!["--rootfs", s, "--max-layers", "8"];
        if let Some(k) = kind {
            args.extend(["--compression", k]);
        }
        podman.build_and_load(&args, name);
        assert_same(&src, &podman.mount(name), name);
    }
    // podman pull from a layout and from a registry, seekable zstd.
    let layout = tmp.path().join("layout");
    run(chunkah().arg("pack").arg(&src).args([
        "-o",
        &format!("oci:{}:edge", layout.display()),
        "--source-date-epoch",
        EPOCH,
        "--quiet",
    ]));
    run(podman
        .cmd()
        .args(["pull", "-q"])
        .arg(format!("oci:{}:edge", layout.display())));
    let images = run(podman
        .cmd()
        .args(["images", "--format", "{{.ID}} {{.Repository}}"]));
    let listed = String::from_utf8(images.stdout).unwrap();
    let pulled = listed
        .lines()
        .find(|l| !l.contains("localhost/edge"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("the pulled image: {listed}"))
        .to_string();
    assert_same(&src, &podman.mount(&pulled), "pulled from oci:");
    podman.pull_from_registry(&src, "podman-registry", "edge:zstd");
}

#[test]
fn a_debian_tree_round_trips_through_podman() {
    require_root();
    let Some(series) = std::env::var_os("CHUNKAH_SERIES_DIR") else {
        panic!("set CHUNKAH_SERIES_DIR to the output of ../shared/data/make-rootfs-series.sh (scripts/test.sh does)");
    };
    let src = Path::new(&series).join("v1");
    assert!(
        src.join("etc/debian_version").is_file(),
        "{} is not a Debian tree",
        src.display()
    );
    let tmp = TempDir::new("podman-debian");
    let podman = Podman::new(tmp.path());
    let s = src.to_str().unwrap();
    for (kind, name) in [
        (None, "localhost/debian:plain"),
        (Some("gzip"), "localhost/debian:gzip"),
    ] {
        let mut args = vec!["--rootfs", s];
        if let Some(k) = kind {
            args.extend(["--compression", k]);
        }
        podman.build_and_load(&args, name);
        assert_same(&src, &podman.mount(name), name);
    }
    podman.pull_from_registry(&src, "podman-debian-registry", "debian:zstd");
}

/// The value of the extended attribute `name` of `path`, if it has one.
fn xattr_of(path: &Path, name: &str) -> Option<Vec<u8>> {
    let tree = chunkah::walk::walk_dir(path.parent().unwrap()).unwrap();
    let file = path.file_name().unwrap();
    tree.entries
        .iter()
        .find(|e| e.path.as_os_str() == file)
        .and_then(|e| {
            e.xattrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
}
