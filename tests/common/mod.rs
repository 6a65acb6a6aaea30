//! Helpers shared by integration tests: the binary, scratch directories,
//! external tools, tree comparison.
#![allow(dead_code)]

pub mod registry;
pub mod sbom;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use chunkah::walk::{walk_dir, Entry, EntryKind};

/// What changed from `old` to `new` (`name -> version` each): `name ->
/// (added|changed|removed, old version, new version)`, a missing version
/// empty.
pub fn version_changes(
    old: &std::collections::BTreeMap<String, String>,
    new: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, (String, String, String)> {
    let mut changes = std::collections::BTreeMap::new();
    for (name, v) in new {
        match old.get(name) {
            None => changes.insert(name.clone(), ("added".into(), String::new(), v.clone())),
            Some(ov) if ov != v => {
                changes.insert(name.clone(), ("changed".into(), ov.clone(), v.clone()))
            }
            Some(_) => None,
        };
    }
    for (name, v) in old {
        if !new.contains_key(name) {
            changes.insert(name.clone(), ("removed".into(), v.clone(), String::new()));
        }
    }
    changes
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "chunkah-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The names in `dir` that start with a dot: what runs leave behind
/// (temporary files, scratch layouts, lock files).
pub fn dot_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// The path of an external tool, or a panic saying how to install it.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(tool))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("this test needs {tool}: apt-get install {package} (or run scripts/setup.sh)")
    })
}

/// The built `chunkah` binary, run through `CHUNKAH_TEST_RUNNER` when that is
/// set (the aarch64 build under qemu: scripts/test-aarch64.sh sets it).
pub fn chunkah() -> Command {
    match std::env::var("CHUNKAH_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(env!("CARGO_BIN_EXE_chunkah"));
            cmd
        }
        _ => Command::new(env!("CARGO_BIN_EXE_chunkah")),
    }
}

/// The `--source-date-epoch` the integration tests pack with.
pub const EPOCH: &str = "1700000000";

/// The JSON a run printed on stdout.
pub fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// A JSON file, or a panic naming it.
pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

/// `chunkah pack SRC -o DEST --json --source-date-epoch EPOCH EXTRA…`: its
/// JSON report, or a panic with its output if it fails.
pub fn pack_json(src: &Path, dest: &str, extra: &[&str]) -> serde_json::Value {
    stdout_json(&run(chunkah()
        .arg("pack")
        .arg(src)
        .args(["-o", dest, "--json", "--source-date-epoch", EPOCH])
        .args(extra)))
}

/// The descriptor tagged `tag` in an OCI `index` (index.json).
pub fn tagged<'a>(index: &'a serde_json::Value, tag: &str) -> Option<&'a serde_json::Value> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
}

/// Runs a command and panics with its output if it fails.
pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test creates devices and owners: run it as root (CI does)"
    );
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

pub fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let n = CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a value slice of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            cstr(p).as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr {name} on {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

pub fn mknod(p: &Path, mode: u32, major: u32, minor: u32) {
    // SAFETY: a NUL-terminated path; makedev and mknod have no other preconditions.
    let rc = unsafe { libc::mknod(cstr(p).as_ptr(), mode, libc::makedev(major, minor)) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

pub fn lchown(p: &Path, uid: u32, gid: u32) {
    // SAFETY: a NUL-terminated path.
    let rc = unsafe { libc::lchown(cstr(p).as_ptr(), uid, gid) };
    assert_eq!(
        rc,
        0,
        "lchown {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Differences between two trees, entry by entry and byte by byte, with
/// mtimes of `a` clamped to `clamp`. Empty when they are the same.
pub fn diff_trees(a: &Path, b: &Path, clamp: Option<i64>) -> Vec<String> {
    let ta = walk_dir(a).unwrap();
    let tb = walk_dir(b).unwrap();
    let mut out = Vec::new();
    let norm = |e: &Entry| {
        let mut e = e.clone();
        if let Some(c) = clamp {
            e.mtime = e.mtime.min(c);
        }
        e
    };
    let map = |t: &chunkah::walk::Tree| -> std::collections::BTreeMap<Vec<u8>, Entry> {
        t.entries
            .iter()
            .map(|e| (e.path.as_os_str().as_bytes().to_vec(), e.clone()))
            .collect()
    };
    let (ma, mb) = (map(&ta), map(&tb));
    match (&ta.root, &tb.root) {
        (Some(x), Some(y)) if &norm(x) != y => {
            out.push(format!("the root: {:?} != {y:?}", norm(x)))
        }
        _ => {}
    }
    for (k, x) in &ma {
        let Some(y) = mb.get(k) else {
            out.push(format!("only in {}: {}", a.display(), x.path.display()));
            continue;
        };
        let x = norm(x);
        if &x != y {
            out.push(format!("{}: {x:?} != {y:?}", x.path.display()));
        } else if let EntryKind::Regular { .. } = x.kind {
            let (ca, cb) = (
                std::fs::read(a.join(&x.path)).unwrap(),
                std::fs::read(b.join(&y.path)).unwrap(),
            );
            if ca != cb {
                out.push(format!("{}: contents differ", x.path.display()));
            }
        }
    }
    for (k, y) in &mb {
        if !ma.contains_key(k) {
            out.push(format!("only in {}: {}", b.display(), y.path.display()));
        }
    }
    out
}

/// Version `v` of a small tree: a 2 MiB binary with small edits spread
/// over it (every chunk changes), a versioned library renamed from one
/// version to the next, and a text file.
pub fn delta_tree(dir: &Path, v: u8) {
    std::fs::create_dir_all(dir.join("usr/lib")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    let edit = |seed: u64, len: usize| {
        let mut bytes = chunkah::chunker::golden_input(seed, len);
        for at in (1000..len).step_by(40_000) {
            bytes[at] = bytes[at].wrapping_add(v);
            bytes[at + 7] ^= v;
        }
        bytes
    };
    std::fs::write(dir.join("usr/lib/big"), edit(7, 2 << 20)).unwrap();
    std::fs::write(
        dir.join(format!("usr/lib/libfoo.so.1.{v}")),
        edit(8, 1 << 20),
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/config"),
        format!("setting = {v}\n").repeat(100),
    )
    .unwrap();
}

/// A tree with every case `pack` must keep.
pub fn synthetic_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let p = |s: &str| root.join(s);
    std::fs::create_dir_all(p("usr/bin")).unwrap();
    std::fs::create_dir_all(p("etc/empty.d")).unwrap();
    std::fs::create_dir_all(p("dev")).unwrap();
    std::fs::create_dir_all(p("tmp")).unwrap();
    std::fs::write(p("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(p("usr/bin/tool"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::write(p("usr/bin/group-tool"), b"x").unwrap();
    std::fs::set_permissions(
        p("usr/bin/group-tool"),
        std::fs::Permissions::from_mode(0o2711),
    )
    .unwrap();
    std::fs::set_permissions(p("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::hard_link(p("usr/bin/tool"), p("usr/bin/tool-link")).unwrap();
    std::os::unix::fs::symlink("tool", p("usr/bin/relative-link")).unwrap();
    std::os::unix::fs::symlink("/etc/nonexistent/target", p("usr/bin/dangling")).unwrap();
    mknod(&p("dev/null"), libc::S_IFCHR | 0o666, 1, 3);
    mknod(&p("dev/sda1"), libc::S_IFBLK | 0o660, 8, 1);
    mknod(&p("dev/fifo"), libc::S_IFIFO | 0o644, 0, 0);
    std::fs::write(p("etc/owned"), b"owned by 1234:5678").unwrap();
    lchown(&p("etc/owned"), 1234, 5678);
    lchown(&p("usr/bin/dangling"), 42, 43);
    lchown(&p("etc/empty.d"), 3_000_000, 3_000_001);
    set_xattr(
        &p("usr/bin/tool"),
        "security.capability",
        &[
            1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    set_xattr(&p("etc/owned"), "user.note", b"binary \x00\xff value");
    set_xattr(&p("etc/owned"), "user.component", b"custom-component");
    let long_dir = "d".repeat(120);
    std::fs::create_dir_all(p(&format!("opt/{long_dir}"))).unwrap();
    std::fs::write(
        p(&format!("opt/{long_dir}/{}", "f".repeat(200))),
        b"long name",
    )
    .unwrap();
    std::os::unix::fs::symlink("t".repeat(150), p("opt/long-target")).unwrap();
    let odd = std::ffi::OsStr::from_bytes_compat(b"opt/\xff\xfe-not-utf8 \t name");
    std::fs::write(root.join(odd), b"odd").unwrap();
    // A sparse file: a hole, then data.
    let sparse = std::fs::File::create(p("opt/sparse")).unwrap();
    sparse.set_len(5 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    sparse.write_at(b"end", (5 << 20) - 3).unwrap();
    // Enough unowned files to make several groups.
    std::fs::create_dir_all(p("srv/data")).unwrap();
    for i in 0..300 {
        std::fs::write(
            p(&format!("srv/data/file{i:04}")),
            format!("content {i}\n").repeat(i % 7 + 1),
        )
        .unwrap();
    }
    // The root directory's own metadata.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o751)).unwrap();
    lchown(root, 123, 456);
    set_xattr(root, "user.root", b"kept");
    // A socket is skipped with a warning.
    let _listener = std::os::unix::net::UnixListener::bind(p("tmp/socket")).unwrap();
}

trait FromBytesCompat {
    fn from_bytes_compat(b: &[u8]) -> &Self;
}
impl FromBytesCompat for std::ffi::OsStr {
    fn from_bytes_compat(b: &[u8]) -> &Self {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b)
    }
}
