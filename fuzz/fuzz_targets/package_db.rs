//! Hostile package databases through `read_package_databases`: any error is
//! fine, a panic, hang or huge allocation is a bug.
//!
//! Each run lays out a small root file system in a directory of its own
//! (one per process, emptied each run; in `/dev/shm` where there is one)
//! and reads it. The first byte picks the mode. With its low two bits zero
//! the rest is the file
//! `usr/lib/sysimage/rpm/rpmdb.sqlite` as it is: seeds in
//! `corpus/package_db` are databases written by `sqlite3` (page size 512,
//! rpm header blobs, overflow chains, interior pages). Otherwise the rest is
//! a [`RootSpec`]: dpkg (`status`, `info/*.list`, `diversions`), apk
//! (`installed`), pacman (`local/*/{desc,files}`) and rpm files written line
//! by line from small vocabularies with raw bytes as an escape, an
//! `rpmdb.sqlite` built page by page (valid unless damaged at chosen bytes)
//! whose rows hold rpm headers built entry by entry, and symbolic links
//! among the directories (`bin -> usr/bin`, absolute, `..`, loops) created
//! after the files, never through another link.
//!
//! When reading succeeds, the [`Ownership`] is checked against its
//! documented shape: relative non-empty paths, each found by `owner`,
//! component names sorted, distinct, each owning a path.
#![no_main]

mod sqlite_file;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chunkah::component::{read_package_databases, Ownership};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sqlite_file::{database, record, Table, Val};

const MAX_LINES: usize = 24;
const MAX_ITEMS: usize = 4;
const MAX_PARTS: usize = 5;
const MAX_ROWS: usize = 8;

const SYSIMAGE_DB: &str = "usr/lib/sysimage/rpm/rpmdb.sqlite";

/// A directory for this process's files: in memory (`/dev/shm`) where there
/// is one, since creating and deleting files is most of the work of a run;
/// the system's temporary directory otherwise.
fn scratch_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    match std::fs::metadata(shm) {
        Ok(m) if m.is_dir() && !m.permissions().readonly() => shm.to_path_buf(),
        _ => std::env::temp_dir(),
    }
}

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| scratch_base().join(format!("chunkah-fuzz-pkgdb-{}", std::process::id())))
}

/// `CHUNKAH_FUZZ_VERBOSE=1`: print each outcome (to see what a corpus reaches).
fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("CHUNKAH_FUZZ_VERBOSE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let root = root();
    match std::fs::remove_dir_all(root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty {}: {e}", root.display()),
    }
    std::fs::create_dir_all(root).unwrap();
    if mode & 3 == 0 {
        put(root, SYSIMAGE_DB.as_bytes(), rest);
    } else {
        let Ok(spec) = RootSpec::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        spec.lay_out(root);
    }
    match read_package_databases(root) {
        Ok(ownership) => {
            if verbose() {
                eprintln!(
                    "ok: {} paths, {:?}",
                    ownership.len(),
                    ownership.components().collect::<Vec<_>>()
                );
            }
            check(&ownership)
        }
        Err(e) => {
            let message = e.to_string();
            if verbose() {
                eprintln!("error: {message}");
            }
        }
    }
});

fn check(o: &Ownership) {
    let names: Vec<&str> = o.components().collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "components not sorted: {names:?}"
    );
    let mut used = vec![false; names.len()];
    let mut count = 0;
    for (path, owner) in o.iter() {
        count += 1;
        let bytes = path.as_os_str().as_bytes();
        assert!(!bytes.is_empty() && bytes[0] != b'/', "owned path {path:?}");
        assert_eq!(o.owner(path), Some(owner), "owner({path:?})");
        let i = names
            .binary_search(&owner)
            .expect("an owner among the components");
        used[i] = true;
    }
    assert_eq!(count, o.len());
    assert_eq!(o.is_empty(), count == 0);
    assert!(
        used.iter().all(|&u| u),
        "a component owns nothing: {names:?}"
    );
}

/// Writes `data` at `rel` under `root`, creating directories; does nothing
/// where a file is in the way. Only called before any link exists.
fn put(root: &Path, rel: &[u8], data: &[u8]) {
    let path = root.join(std::ffi::OsStr::from_bytes(rel));
    if let Some(parent) = path.parent() {
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
    }
    let _ = std::fs::write(path, data);
}

/// Creates the symbolic link `rel -> target` unless a link or a file is on
/// the way: nothing is ever created through a link (it could lead out of
/// the root).
fn link(root: &Path, rel: &str, target: &[u8]) {
    let mut at = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    let (last, parents) = parts.split_last().unwrap();
    for p in parents {
        at.push(p);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return,
            Err(_) => {
                if std::fs::create_dir(&at).is_err() {
                    return;
                }
            }
        }
    }
    at.push(last);
    let _ = std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), at);
}

// ---------------------------------------------------------------------------
// The input.

#[derive(Arbitrary, Debug)]
struct RootSpec {
    dpkg: Option<Dpkg>,
    apk: Option<Apk>,
    pacman: Vec<Pacman>,
    rpm: Option<Rpm>,
    /// Other directories and files of the tree.
    dirs: Vec<Place>,
    files: Vec<Place>,
    links: Vec<Link>,
}

/// Directories and files that matter to the readers.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Place {
    Usr,
    UsrBin,
    UsrLib,
    UsrShareDoc,
    Bin,
    Lib,
    Etc,
    A,
    B,
    ABin,
    Var,
    VarLib,
    VarLibDpkg,
    DpkgInfo,
    DpkgStatus,
    DpkgBashList,
    LibApk,
    LibApkDb,
    ApkInstalled,
    UsrLibApk,
    PacmanLocal,
    PacmanBash,
    PacmanBashDesc,
    VarLibRpm,
    Sysimage,
    SysimageRpm,
    RpmdbSqlite,
    UsrBinSh,
}

impl Place {
    fn path(self) -> &'static str {
        match self {
            Place::Usr => "usr",
            Place::UsrBin => "usr/bin",
            Place::UsrLib => "usr/lib",
            Place::UsrShareDoc => "usr/share/doc",
            Place::Bin => "bin",
            Place::Lib => "lib",
            Place::Etc => "etc",
            Place::A => "a",
            Place::B => "b",
            Place::ABin => "a/bin",
            Place::Var => "var",
            Place::VarLib => "var/lib",
            Place::VarLibDpkg => "var/lib/dpkg",
            Place::DpkgInfo => "var/lib/dpkg/info",
            Place::DpkgStatus => "var/lib/dpkg/status",
            Place::DpkgBashList => "var/lib/dpkg/info/bash.list",
            Place::LibApk => "lib/apk",
            Place::LibApkDb => "lib/apk/db",
            Place::ApkInstalled => "lib/apk/db/installed",
            Place::UsrLibApk => "usr/lib/apk",
            Place::PacmanLocal => "var/lib/pacman/local",
            Place::PacmanBash => "var/lib/pacman/local/bash-5.2-1",
            Place::PacmanBashDesc => "var/lib/pacman/local/bash-5.2-1/desc",
            Place::VarLibRpm => "var/lib/rpm",
            Place::Sysimage => "usr/lib/sysimage",
            Place::SysimageRpm => "usr/lib/sysimage/rpm",
            Place::RpmdbSqlite => SYSIMAGE_DB,
            Place::UsrBinSh => "usr/bin/sh",
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Link {
    at: Place,
    target: Target,
}

#[derive(Arbitrary, Debug)]
enum Target {
    /// `[/][../]*PLACE`
    Place {
        absolute: bool,
        ups: u8,
        place: Place,
    },
    /// To itself or its parent: a loop.
    Itself,
    Parent,
    Path(DbPath),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Name {
    Bash,
    Libc6,
    Coreutils,
    Python3,
    Python311,
    Dotted,
    Empty,
    Colon,
    Slash,
    Space,
    NotUtf8,
}

impl Name {
    fn bytes(self) -> &'static [u8] {
        match self {
            Name::Bash => b"bash",
            Name::Libc6 => b"libc6",
            Name::Coreutils => b"coreutils",
            Name::Python3 => b"python3",
            Name::Python311 => b"python3.11",
            Name::Dotted => b".hidden",
            Name::Empty => b"",
            Name::Colon => b"libc6:amd64",
            Name::Slash => b"a/b",
            Name::Space => b"two words",
            Name::NotUtf8 => b"caf\xe9",
        }
    }
}

/// A path as a database writes it.
#[derive(Arbitrary, Debug)]
struct DbPath {
    absolute: bool,
    parts: Vec<PathPart>,
    trailing_slash: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PathPart {
    Usr,
    Bin,
    Lib,
    Etc,
    Var,
    Share,
    Doc,
    A,
    B,
    Sh,
    Ls,
    Dot,
    DotDot,
    Empty,
    Percent,
    NotUtf8,
    Nul,
    Long,
    TooLong,
}

impl DbPath {
    fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.absolute {
            out.push(b'/');
        }
        for (i, p) in self.parts.iter().take(MAX_PARTS).enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            match p {
                PathPart::Long => out.extend(std::iter::repeat_n(b'l', 255)),
                PathPart::TooLong => out.extend(std::iter::repeat_n(b'x', 4097)),
                p => out.extend_from_slice(match p {
                    PathPart::Usr => b"usr",
                    PathPart::Bin => b"bin",
                    PathPart::Lib => b"lib",
                    PathPart::Etc => b"etc",
                    PathPart::Var => b"var",
                    PathPart::Share => b"share",
                    PathPart::Doc => b"doc",
                    PathPart::A => b"a",
                    PathPart::B => b"b",
                    PathPart::Sh => b"sh",
                    PathPart::Ls => b"ls",
                    PathPart::Dot => b".",
                    PathPart::DotDot => b"..",
                    PathPart::Empty => b"",
                    PathPart::Percent => b"%FILES%",
                    PathPart::NotUtf8 => b"\xff",
                    _ => b"a\0b",
                }),
            }
        }
        if self.trailing_slash {
            out.push(b'/');
        }
        out
    }
}

/// A line of a path list: a path or raw bytes.
#[derive(Arbitrary, Debug)]
enum PathLine {
    Path(DbPath),
    Raw(Vec<u8>),
}

impl PathLine {
    fn render(&self) -> Vec<u8> {
        match self {
            PathLine::Path(p) => p.render(),
            PathLine::Raw(r) => r.clone(),
        }
    }
}

/// Lines joined with `\n`, with or without a final one.
fn join_lines(lines: impl Iterator<Item = Vec<u8>>, final_newline: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in lines.take(MAX_LINES).enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(&l);
    }
    if final_newline {
        out.push(b'\n');
    }
    out
}

// dpkg -----------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
struct Dpkg {
    status: Vec<StatusLine>,
    status_newline: bool,
    lists: Vec<List>,
    diversions: Option<Vec<DiversionLine>>,
    /// Other files of `info/`: NAME.EXT.
    info: Vec<(Name, InfoExt)>,
}

#[derive(Arbitrary, Debug)]
enum StatusLine {
    Package(Name),
    LowerCasePackage(Name),
    Source(SourceValue),
    Architecture(Arch),
    Status(StatusValue),
    Description,
    Continuation,
    ContinuationDot,
    Blank,
    Spaces,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum SourceValue {
    Name(Name),
    Versioned(Name),
    Empty,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Arch {
    Amd64,
    All,
    Bad,
    Empty,
}

impl Arch {
    fn bytes(self) -> &'static [u8] {
        match self {
            Arch::Amd64 => b"amd64",
            Arch::All => b"all",
            Arch::Bad => b"a/b",
            Arch::Empty => b"",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum StatusValue {
    Installed,
    Hold,
    ConfigFiles,
    Unpacked,
    TwoWords,
    Tabs,
}

impl StatusLine {
    fn render(&self) -> Vec<u8> {
        let field = |name: &[u8], value: &[u8]| [name, b": ", value].concat();
        match self {
            StatusLine::Package(n) => field(b"Package", n.bytes()),
            StatusLine::LowerCasePackage(n) => field(b"package", n.bytes()),
            StatusLine::Source(SourceValue::Name(n)) => field(b"Source", n.bytes()),
            StatusLine::Source(SourceValue::Versioned(n)) => {
                field(b"Source", &[n.bytes(), b" (1.2-3)"].concat())
            }
            StatusLine::Source(SourceValue::Empty) => b"Source:".to_vec(),
            StatusLine::Architecture(a) => field(b"Architecture", a.bytes()),
            StatusLine::Status(s) => field(
                b"Status",
                match s {
                    StatusValue::Installed => b"install ok installed",
                    StatusValue::Hold => b"hold ok installed",
                    StatusValue::ConfigFiles => b"deinstall ok config-files",
                    StatusValue::Unpacked => b"install ok unpacked",
                    StatusValue::TwoWords => b"ok installed",
                    StatusValue::Tabs => b"install\tok \t installed ",
                },
            ),
            StatusLine::Description => b"Description: a: b".to_vec(),
            StatusLine::Continuation => b" continued: line".to_vec(),
            StatusLine::ContinuationDot => b"\t.".to_vec(),
            StatusLine::Blank => Vec::new(),
            StatusLine::Spaces => b" \t ".to_vec(),
            StatusLine::Raw(r) => r.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct List {
    package: Name,
    arch: Option<Arch>,
    lines: Vec<PathLine>,
    final_newline: bool,
}

#[derive(Arbitrary, Debug)]
enum DiversionLine {
    Path(PathLine),
    By(Name),
    Local,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum InfoExt {
    Md5sums,
    Postinst,
    Dotted,
    Empty,
}

impl Dpkg {
    fn lay_out(&self, root: &Path) {
        let status = join_lines(
            self.status.iter().map(StatusLine::render),
            self.status_newline,
        );
        put(root, b"var/lib/dpkg/status", &status);
        for list in self.lists.iter().take(MAX_ITEMS) {
            let mut name = list.package.bytes().to_vec();
            if let Some(arch) = list.arch {
                name.push(b':');
                name.extend_from_slice(arch.bytes());
            }
            name.extend_from_slice(b".list");
            let body = join_lines(list.lines.iter().map(PathLine::render), list.final_newline);
            put(root, &[&b"var/lib/dpkg/info/"[..], &name].concat(), &body);
        }
        for (name, ext) in self.info.iter().take(MAX_ITEMS) {
            let ext: &[u8] = match ext {
                InfoExt::Md5sums => b".md5sums",
                InfoExt::Postinst => b".postinst",
                InfoExt::Dotted => b".extra.list",
                InfoExt::Empty => b".",
            };
            put(
                root,
                &[&b"var/lib/dpkg/info/"[..], name.bytes(), ext].concat(),
                b"x",
            );
        }
        if let Some(lines) = &self.diversions {
            let body = join_lines(
                lines.iter().map(|l| match l {
                    DiversionLine::Path(p) => p.render(),
                    DiversionLine::By(n) => n.bytes().to_vec(),
                    DiversionLine::Local => b":".to_vec(),
                }),
                true,
            );
            put(root, b"var/lib/dpkg/diversions", &body);
        }
    }
}

// apk ------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
struct Apk {
    /// `usr/lib/apk/db/installed` rather than `lib/...`.
    usr: bool,
    lines: Vec<ApkLine>,
    final_newline: bool,
}

#[derive(Arbitrary, Debug)]
enum ApkLine {
    P(Name),
    O(Name),
    F(DbPath),
    R(DbPath),
    Other(u8, Name),
    Blank,
    NoColon,
    Raw(Vec<u8>),
}

impl Apk {
    fn lay_out(&self, root: &Path) {
        let body = join_lines(
            self.lines.iter().map(|l| match l {
                ApkLine::P(n) => [b"P:", n.bytes()].concat(),
                ApkLine::O(n) => [b"o:", n.bytes()].concat(),
                ApkLine::F(p) => [&b"F:"[..], &p.render()].concat(),
                ApkLine::R(p) => [&b"R:"[..], &p.render()].concat(),
                ApkLine::Other(k, n) => [&[*k, b':'][..], n.bytes()].concat(),
                ApkLine::Blank => Vec::new(),
                ApkLine::NoColon => b"Pbash".to_vec(),
                ApkLine::Raw(r) => r.clone(),
            }),
            self.final_newline,
        );
        let at: &[u8] = if self.usr {
            b"usr/lib/apk/db/installed"
        } else {
            b"lib/apk/db/installed"
        };
        put(root, at, &body);
    }
}

// pacman ---------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
struct Pacman {
    dir: PacmanDir,
    desc: Vec<PacmanLine>,
    files: Vec<PacmanLine>,
    /// Up to 223 both files are there; then `desc` or `files` is missing.
    missing: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PacmanDir {
    Bash,
    Glibc,
    /// A file, not a package directory.
    DbVersion,
    Dotted,
}

#[derive(Arbitrary, Debug)]
enum PacmanLine {
    Header(PacmanHeader),
    Value(Name),
    Path(DbPath),
    Blank,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PacmanHeader {
    Name,
    Base,
    Version,
    Files,
    Backup,
    Percent,
    Percents,
}

impl Pacman {
    fn lay_out(&self, root: &Path) {
        let dir: &[u8] = match self.dir {
            PacmanDir::Bash => b"var/lib/pacman/local/bash-5.2-1",
            PacmanDir::Glibc => b"var/lib/pacman/local/glibc-2.39-1",
            PacmanDir::DbVersion => {
                put(root, b"var/lib/pacman/local/ALPM_DB_VERSION", b"9\n");
                return;
            }
            PacmanDir::Dotted => b"var/lib/pacman/local/.x",
        };
        let _ = std::fs::create_dir_all(root.join(std::ffi::OsStr::from_bytes(dir)));
        let render = |lines: &Vec<PacmanLine>| {
            join_lines(
                lines.iter().map(|l| match l {
                    PacmanLine::Header(h) => match h {
                        PacmanHeader::Name => b"%NAME%".to_vec(),
                        PacmanHeader::Base => b"%BASE%".to_vec(),
                        PacmanHeader::Version => b"%VERSION%".to_vec(),
                        PacmanHeader::Files => b"%FILES%".to_vec(),
                        PacmanHeader::Backup => b"%BACKUP%".to_vec(),
                        PacmanHeader::Percent => b"%".to_vec(),
                        PacmanHeader::Percents => b"%%".to_vec(),
                    },
                    PacmanLine::Value(n) => n.bytes().to_vec(),
                    PacmanLine::Path(p) => p.render(),
                    PacmanLine::Blank => Vec::new(),
                    PacmanLine::Raw(r) => r.clone(),
                }),
                true,
            )
        };
        if !(224..240).contains(&self.missing) {
            put(root, &[dir, b"/desc"].concat(), &render(&self.desc));
        }
        if self.missing < 240 {
            put(root, &[dir, b"/files"].concat(), &render(&self.files));
        }
    }
}

// rpm ------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
struct Rpm {
    /// Where the database is: usr/lib/sysimage/rpm, var/lib/rpm, or both.
    place: RpmPlace,
    /// A Berkeley DB (`Packages`) or ndb (`Packages.db`) file beside it.
    legacy: Option<bool>,
    /// No sqlite file at all.
    missing: bool,
    db: BuiltDb,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum RpmPlace {
    Sysimage,
    VarLib,
    Both,
}

#[derive(Arbitrary, Debug)]
struct BuiltDb {
    page_size: PageSize,
    /// 32 bytes reserved at the end of each page.
    reserved: bool,
    /// Other tables in the schema before `Packages`.
    others: u8,
    /// Up to 199 the table is `Packages`; then `packages`, then another name.
    name: u8,
    rows: Vec<Row>,
    /// Damage to one header blob, before the file is written.
    header_damage: Option<HeaderDamage>,
    /// Damage to the file once written.
    file_damage: Option<FileDamage>,
}

#[derive(Arbitrary, Debug)]
struct HeaderDamage {
    row: u8,
    kind: HeaderDamageKind,
}

#[derive(Arbitrary, Debug)]
enum HeaderDamageKind {
    /// Added to the index length written.
    IndexLength(i8),
    /// Added to the data length written.
    DataLength(i8),
    Byte(u16, u8),
    Truncate(u16),
}

#[derive(Arbitrary, Debug)]
enum FileDamage {
    Bytes(Vec<(u16, u8)>),
    Truncate(u16),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PageSize {
    P512,
    P1024,
    P4096,
    P65536,
}

#[derive(Arbitrary, Debug)]
struct Row {
    /// Added to the previous rowid (plus one).
    gap: u8,
    /// The rowid is negative (a huge hnum).
    negative: bool,
    column: Column,
    header: RpmHeader,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Column {
    Blob,
    Text,
    Integer,
    Missing,
    Extra,
}

#[derive(Arbitrary, Debug)]
struct RpmHeader {
    /// A region entry (tag 63) first, as rpm writes.
    region: bool,
    entries: Vec<RpmEntry>,
    /// Data bytes in an entry not read (a long SUMMARY): large rows
    /// spill into overflow pages.
    padding: u16,
}

#[derive(Arbitrary, Debug)]
enum RpmEntry {
    Name(Name),
    SourceRpm(SourceRpm),
    Basenames(Vec<Name>),
    Dirnames(Vec<DbPath>),
    DirIndexes(Vec<u8>),
    OldFilenames(Vec<DbPath>),
    /// Any tag, type, offset and count.
    Raw {
        tag: Tag,
        kind: u8,
        offset: u16,
        count: u16,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum SourceRpm {
    Good(Name),
    NoSource,
    NoDashes,
    EmptyName,
    NotRpm,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Tag {
    Name,
    OldFilenames,
    SourceRpm,
    DirIndexes,
    Basenames,
    Dirnames,
    Other,
}

impl Tag {
    fn number(self) -> u32 {
        match self {
            Tag::Name => 1000,
            Tag::OldFilenames => 1027,
            Tag::SourceRpm => 1044,
            Tag::DirIndexes => 1116,
            Tag::Basenames => 1117,
            Tag::Dirnames => 1118,
            Tag::Other => 1004,
        }
    }
}

const INT32: u32 = 4;
const STRING: u32 = 6;
const STRING_ARRAY: u32 = 8;

impl RpmHeader {
    /// The header blob: `il`, `dl`, the index, the data.
    fn blob(&self, damage: Option<&HeaderDamageKind>) -> Vec<u8> {
        let mut index: Vec<[u32; 4]> = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        if self.region {
            index.push([63, 7, 0, 16]);
        }
        let strings = |data: &mut Vec<u8>, list: &mut dyn Iterator<Item = Vec<u8>>| -> u32 {
            let mut n = 0;
            for s in list.take(MAX_LINES) {
                data.extend_from_slice(&s);
                data.push(0);
                n += 1;
            }
            n
        };
        for e in self.entries.iter().take(2 * MAX_ITEMS) {
            let offset = data.len() as u32;
            match e {
                RpmEntry::Name(n) => {
                    let n = strings(&mut data, &mut std::iter::once(n.bytes().to_vec()));
                    index.push([1000, STRING, offset, n]);
                }
                RpmEntry::SourceRpm(s) => {
                    let value = match s {
                        SourceRpm::Good(n) => [n.bytes(), b"-5.2.15-3.fc39.src.rpm"].concat(),
                        SourceRpm::NoSource => b"gpg-pubkey-1-2.nosrc.rpm".to_vec(),
                        SourceRpm::NoDashes => b"bash.src.rpm".to_vec(),
                        SourceRpm::EmptyName => b"-1-2.src.rpm".to_vec(),
                        SourceRpm::NotRpm => b"bash-1-2.tar".to_vec(),
                    };
                    let n = strings(&mut data, &mut std::iter::once(value));
                    index.push([1044, STRING, offset, n]);
                }
                RpmEntry::Basenames(names) => {
                    let n = strings(&mut data, &mut names.iter().map(|n| n.bytes().to_vec()));
                    index.push([1117, STRING_ARRAY, offset, n]);
                }
                RpmEntry::Dirnames(dirs) => {
                    let n = strings(&mut data, &mut dirs.iter().map(DbPath::render));
                    index.push([1118, STRING_ARRAY, offset, n]);
                }
                RpmEntry::OldFilenames(paths) => {
                    let n = strings(&mut data, &mut paths.iter().map(DbPath::render));
                    index.push([1027, STRING_ARRAY, offset, n]);
                }
                RpmEntry::DirIndexes(values) => {
                    data.resize(data.len().next_multiple_of(4), 0);
                    let offset = data.len() as u32;
                    let values = &values[..values.len().min(MAX_LINES)];
                    for &v in values {
                        // Mostly small indexes, sometimes huge ones.
                        let v = if v >= 0xf0 {
                            u32::MAX - u32::from(v & 0xf)
                        } else {
                            u32::from(v % 8)
                        };
                        data.extend_from_slice(&v.to_be_bytes());
                    }
                    index.push([1116, INT32, offset, values.len() as u32]);
                }
                RpmEntry::Raw {
                    tag,
                    kind,
                    offset,
                    count,
                } => {
                    let count = match count {
                        0xff00.. => u32::MAX - u32::from(count & 0xff),
                        c => u32::from(*c),
                    };
                    index.push([tag.number(), u32::from(*kind), u32::from(*offset), count]);
                }
            }
        }
        let padding = usize::from(self.padding % 3000);
        if padding > 0 {
            let offset = data.len() as u32;
            data.extend(std::iter::repeat_n(b's', padding));
            data.push(0);
            index.push([1004, STRING, offset, 1]);
        }
        if self.region {
            index[0][2] = data.len() as u32;
            let trailer = [63u32, 7, (-16 * index.len() as i32) as u32, 16];
            data.extend(trailer.iter().flat_map(|v| v.to_be_bytes()));
        }
        let (mut il, mut dl) = (index.len() as u32, data.len() as u32);
        match damage {
            Some(HeaderDamageKind::IndexLength(d)) => il = il.wrapping_add_signed(i32::from(*d)),
            Some(HeaderDamageKind::DataLength(d)) => dl = dl.wrapping_add_signed(i32::from(*d)),
            _ => {}
        }
        let mut blob = Vec::new();
        blob.extend(il.to_be_bytes());
        blob.extend(dl.to_be_bytes());
        blob.extend(index.iter().flatten().flat_map(|v| v.to_be_bytes()));
        blob.extend_from_slice(&data);
        match damage {
            Some(HeaderDamageKind::Byte(at, xor)) => {
                let n = blob.len();
                blob[usize::from(*at) % n] ^= xor;
            }
            Some(HeaderDamageKind::Truncate(at)) => {
                let n = blob.len();
                blob.truncate(usize::from(*at) % n);
            }
            _ => {}
        }
        blob
    }
}

impl BuiltDb {
    fn file(&self) -> Vec<u8> {
        let mut rows = Vec::new();
        let mut rowid: i64 = 0;
        let rows_taken = self.rows.len().min(MAX_ROWS);
        let damaged = self
            .header_damage
            .as_ref()
            .filter(|_| rows_taken > 0)
            .map(|d| (usize::from(d.row) % rows_taken, &d.kind));
        for (i, row) in self.rows.iter().take(MAX_ROWS).enumerate() {
            rowid += 1 + i64::from(row.gap);
            let damage = damaged.and_then(|(r, kind)| (r == i).then_some(kind));
            let blob = row.header.blob(damage);
            let values = match row.column {
                Column::Blob => vec![Val::Null, Val::Blob(blob)],
                Column::Text => vec![Val::Null, Val::Text(blob)],
                Column::Integer => vec![Val::Null, Val::Int(blob.len() as i64)],
                Column::Missing => vec![Val::Null],
                Column::Extra => vec![Val::Null, Val::Blob(blob), Val::Int(-7)],
            };
            let id = if row.negative {
                i64::MIN + rowid
            } else {
                rowid
            };
            rows.push((id, record(&values)));
        }
        // Rowids increase along the b-tree: negative ones first.
        rows.sort_by_key(|(id, _)| *id);
        let name = match self.name {
            0..200 => "Packages",
            200..228 => "packages",
            _ => "Packagez",
        };
        let mut tables: Vec<Table> = (0..self.others % 3)
            .map(|i| Table {
                name: format!("t{i}"),
                sql: format!("CREATE TABLE t{i}(a)"),
                rows: vec![(1, record(&[Val::Text(b"x".to_vec())]))],
            })
            .collect();
        tables.push(Table {
            name: name.into(),
            sql: format!(
                "CREATE TABLE {name}(hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
            ),
            rows,
        });
        let page_size = match self.page_size {
            PageSize::P512 => 512,
            PageSize::P1024 => 1024,
            PageSize::P4096 => 4096,
            PageSize::P65536 => 65536,
        };
        let mut file = database(page_size, if self.reserved { 32 } else { 0 }, &tables);
        match &self.file_damage {
            Some(FileDamage::Bytes(bytes)) => {
                for &(at, xor) in bytes.iter().take(MAX_ITEMS) {
                    let n = file.len();
                    file[usize::from(at) % n] ^= xor;
                }
            }
            Some(FileDamage::Truncate(at)) => {
                let n = file.len();
                file.truncate(usize::from(*at) % (n + 1));
            }
            None => {}
        }
        file
    }
}

impl Rpm {
    fn lay_out(&self, root: &Path) {
        let dirs: &[&str] = match self.place {
            RpmPlace::Sysimage => &["usr/lib/sysimage/rpm"],
            RpmPlace::VarLib => &["var/lib/rpm"],
            RpmPlace::Both => &["usr/lib/sysimage/rpm", "var/lib/rpm"],
        };
        let file = (!self.missing).then(|| self.db.file());
        for dir in dirs {
            if let Some(file) = &file {
                put(root, format!("{dir}/rpmdb.sqlite").as_bytes(), file);
            }
            if let Some(ndb) = self.legacy {
                let name = if ndb { "Packages.db" } else { "Packages" };
                put(root, format!("{dir}/{name}").as_bytes(), b"\0\0\0\0");
            }
        }
    }
}

impl RootSpec {
    fn lay_out(&self, root: &Path) {
        if let Some(d) = &self.dpkg {
            d.lay_out(root);
        }
        if let Some(a) = &self.apk {
            a.lay_out(root);
        }
        for p in self.pacman.iter().take(MAX_ITEMS) {
            p.lay_out(root);
        }
        if let Some(r) = &self.rpm {
            r.lay_out(root);
        }
        for d in self.dirs.iter().take(MAX_ITEMS) {
            let _ = std::fs::create_dir_all(root.join(d.path()));
        }
        for f in self.files.iter().take(MAX_ITEMS) {
            put(root, f.path().as_bytes(), b"file");
        }
        for l in self.links.iter().take(2 * MAX_ITEMS) {
            let target: Vec<u8> = match &l.target {
                Target::Place {
                    absolute,
                    ups,
                    place,
                } => {
                    let mut t = Vec::new();
                    if *absolute {
                        t.push(b'/');
                    }
                    for _ in 0..ups % 4 {
                        t.extend_from_slice(b"../");
                    }
                    t.extend_from_slice(place.path().as_bytes());
                    t
                }
                Target::Itself => l.at.path().rsplit('/').next().unwrap().as_bytes().to_vec(),
                Target::Parent => b"..".to_vec(),
                Target::Path(p) => {
                    let t = p.render();
                    // symlink(2) refuses an empty target or one with a NUL.
                    if t.is_empty() || t.contains(&0) {
                        continue;
                    }
                    t
                }
            };
            link(root, l.at.path(), &target);
        }
    }
}
