//! Hostile OCI archives through `ImageReader::open`, `image` and `flatten`:
//! any error is fine, a panic, hang or huge allocation is a bug.
//!
//! The first byte picks the mode. With its low two bits zero the rest is the
//! archive file itself (seeds in `corpus/image_reader` are real archives).
//! Otherwise the rest is an [`ImageSpec`]: layer tarballs written entry by
//! entry (names from a small alphabet with whiteouts, `..`, `/`, long names,
//! hard and symbolic links, devices, xattrs), plain, gzip or zstd, assembled
//! into an archive whose digests, sizes and diff_ids are right, so that the
//! layer merging is reached; optional damage then breaks one thing at a
//! chosen stage (a tar byte before compression, a blob byte before or after
//! its digest is taken, a JSON field, an archive member, the archive's bytes).
//!
//! The archive is written to one file per process, and layers are
//! decompressed in a directory beside it (in `/dev/shm` where there is one).
//!
//! When `flatten` succeeds, the tree is checked: paths unique and in walk
//! order, nothing below a non-directory, hard links naming an earlier
//! non-directory, and every regular file's content readable where
//! `TarContent` says it is (and, when no tar byte was damaged, equal to the
//! content of some file of some layer).
#![no_main]

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use chunkah::oci::flatten::flatten;
use chunkah::store::{ImageReader, ImageRef};
use chunkah::walk::{EntryKind, TarContent, Tree};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use sha2::Digest as _;

const MAX_LAYERS: usize = 4;
const MAX_ENTRIES: usize = 10;
const MAX_PARTS: usize = 4;
const MAX_DAMAGE: usize = 3;
const MAX_FILE_BYTES: usize = 96;

/// Where this process writes its archive and decompresses layers.
struct Scratch {
    archive: PathBuf,
    dir: PathBuf,
}

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

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let base = scratch_base();
        let pid = std::process::id();
        let dir = base.join(format!("chunkah-fuzz-image-{pid}.d"));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch {
            archive: base.join(format!("chunkah-fuzz-image-{pid}.tar")),
            dir,
        }
    })
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
    let (archive, tag, contents) = if mode & 3 == 0 {
        (rest.to_vec(), None, None)
    } else {
        let Ok(spec) = ImageSpec::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        let built = spec.build();
        let tag = spec.ref_tag.then(|| "v1".to_string());
        (built.archive, tag, built.contents)
    };
    let s = scratch();
    std::fs::write(&s.archive, &archive).unwrap();
    let reference = ImageRef::Archive {
        file: s.archive.clone(),
        tag,
    };
    let result = ImageReader::open(&reference).and_then(|reader| {
        let image = reader.image("amd64")?;
        flatten(
            &reference.to_string(),
            &image,
            |d| reader.blob(&d.digest, d.size),
            &s.dir,
            &AtomicBool::new(false),
        )
    });
    match result {
        Ok((tree, content)) => {
            if verbose() {
                eprintln!("ok: {} entries", tree.entries.len());
            }
            check(&tree, &content, contents.as_ref())
        }
        Err(e) => {
            let message = e.to_string();
            if verbose() {
                eprintln!("error: {message}");
            }
        }
    }
});

/// What must hold of any tree `flatten` returns. `contents`: the content of
/// every file of every layer, when no tar byte was damaged.
fn check(tree: &Tree, content: &TarContent, contents: Option<&HashSet<Vec<u8>>>) {
    let components = |p: &Path| -> Vec<Vec<u8>> {
        p.as_os_str()
            .as_bytes()
            .split(|&b| b == b'/')
            .map(<[u8]>::to_vec)
            .collect()
    };
    let keys: Vec<Vec<Vec<u8>>> = tree.entries.iter().map(|e| components(&e.path)).collect();
    let mut non_dirs: Vec<&[Vec<u8>]> = Vec::new();
    for (i, e) in tree.entries.iter().enumerate() {
        let key = &keys[i];
        assert!(
            key.iter()
                .all(|c| !c.is_empty() && c.as_slice() != b"." && c.as_slice() != b".."),
            "{:?} is not a normal relative path",
            e.path
        );
        if i > 0 {
            assert!(
                keys[i - 1] < *key,
                "{:?} and {:?} out of walk order",
                tree.entries[i - 1].path,
                e.path
            );
        }
        while non_dirs.last().is_some_and(|d| !key.starts_with(d)) {
            non_dirs.pop();
        }
        assert!(
            non_dirs.is_empty(),
            "{:?} lies below a non-directory",
            e.path
        );
        if !e.is_dir() {
            non_dirs.push(key);
        }
        match &e.kind {
            EntryKind::HardLink { target } => {
                let t = tree.entries[..i]
                    .iter()
                    .find(|t| t.path == *target)
                    .unwrap_or_else(|| {
                        panic!("{:?} links to {target:?}, not an earlier entry", e.path)
                    });
                assert!(
                    !matches!(t.kind, EntryKind::HardLink { .. } | EntryKind::Directory),
                    "{:?} links to {target:?}, a {:?}",
                    e.path,
                    t.kind
                );
            }
            EntryKind::Regular { size } => {
                let (file, offset) = content
                    .locate(&e.path)
                    .unwrap_or_else(|err| panic!("{:?}: {err}", e.path));
                let mut buf = vec![0; *size as usize];
                file.file
                    .read_exact_at(&mut buf, offset)
                    .unwrap_or_else(|err| panic!("{:?} at {offset}: {err}", e.path));
                if let Some(contents) = contents {
                    assert!(
                        contents.contains(&buf),
                        "{:?}: content {buf:?} is no layer's file",
                        e.path
                    );
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// The input.

/// An image: layers, how it is named, and what is damaged.
#[derive(Arbitrary, Debug)]
struct ImageSpec {
    layers: Vec<LayerSpec>,
    shape: Shape,
    /// The tag of the image in index.json.
    tag: TagChoice,
    /// Other images in index.json (0..=2), tagged `other` and untagged.
    others: u8,
    /// Open the archive with tag `v1` rather than none.
    ref_tag: bool,
    /// Docker media types for the manifest and index.
    docker: bool,
    /// How member names start.
    prefix: Prefix,
    damage: Vec<Damage>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Shape {
    /// index.json names the manifest.
    Direct,
    /// index.json names an image index that names the manifest.
    Nested {
        arch: Arch,
        linux: bool,
        /// Another platform's manifest listed first.
        sibling: bool,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Arch {
    Amd64,
    Arm64,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum TagChoice {
    None,
    Latest,
    V1,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Prefix {
    None,
    DotSlash,
    Slash,
}

#[derive(Arbitrary, Debug)]
struct LayerSpec {
    compression: Compression,
    /// The media type: up to 191 the OCI type for the compression used,
    /// then others (see [`LayerSpec::media_type`]).
    media: u8,
    /// GNU headers (long names as `L`/`K` entries) or ustar (long names in PAX).
    gnu: bool,
    /// End with the two zero blocks.
    end_blocks: bool,
    /// Compress as two members/frames, split at this byte (modulo the length).
    split: Option<u16>,
    entries: Vec<EntrySpec>,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl LayerSpec {
    fn media_type(&self) -> &'static str {
        match (self.media, self.compression) {
            (0..192, Compression::None) | (192..208, _) => "application/vnd.oci.image.layer.v1.tar",
            (0..192, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (0..192, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (208..224, _) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (224..240, _) => "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            _ => "application/vnd.oci.image.config.v1+json",
        }
    }
}

#[derive(Arbitrary, Debug)]
struct EntrySpec {
    path: PathSpec,
    kind: KindSpec,
    mode: u16,
    owner: u8,
    mtime: u32,
    xattr: Option<(XattrName, Vec<u8>)>,
}

#[derive(Arbitrary, Debug)]
enum KindSpec {
    File(Vec<u8>),
    Continuous(Vec<u8>),
    Dir,
    Symlink(PathSpec),
    HardLink(PathSpec),
    Fifo,
    Char(u16, u16),
    Block(u16, u16),
    /// A hard link entry with no link name.
    HardLinkNoTarget,
    /// Another type flag (sockets do not exist in tar; `g`, `S`, `V`, ...).
    Other(u8),
}

#[derive(Arbitrary, Debug)]
enum XattrName {
    Selinux,
    Capability,
    User,
    Empty,
}

#[derive(Arbitrary, Debug)]
struct PathSpec {
    lead: Prefix,
    parts: Vec<Part>,
    trailing_slash: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Part {
    A,
    B,
    C,
    Dir,
    Sub,
    WhA,
    WhB,
    WhDir,
    WhSub,
    Opaque,
    AufsLink,
    WhEmpty,
    WhWhA,
    Dot,
    DotDot,
    Empty,
    Long,
    NotUtf8,
}

impl Part {
    fn bytes(self) -> &'static [u8] {
        const LONG: &[u8] = b"a-component-long-enough-that-three-of-them-need-a-gnu-long-name-or-a-pax-path-record-xxxxxxxxxxx";
        match self {
            Part::A => b"a",
            Part::B => b"b",
            Part::C => b"c",
            Part::Dir => b"dir",
            Part::Sub => b"sub",
            Part::WhA => b".wh.a",
            Part::WhB => b".wh.b",
            Part::WhDir => b".wh.dir",
            Part::WhSub => b".wh.sub",
            Part::Opaque => b".wh..wh..opq",
            Part::AufsLink => b".wh..wh.plnk",
            Part::WhEmpty => b".wh.",
            Part::WhWhA => b".wh..wh.a",
            Part::Dot => b".",
            Part::DotDot => b"..",
            Part::Empty => b"",
            Part::Long => LONG,
            Part::NotUtf8 => b"\xff\xfe",
        }
    }
}

impl PathSpec {
    fn render(&self) -> Vec<u8> {
        let mut out: Vec<u8> = match self.lead {
            Prefix::None => Vec::new(),
            Prefix::DotSlash => b"./".to_vec(),
            Prefix::Slash => b"/".to_vec(),
        };
        for (i, part) in self.parts.iter().take(MAX_PARTS).enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(part.bytes());
        }
        if self.trailing_slash {
            out.push(b'/');
        }
        out
    }
}

#[derive(Arbitrary, Debug)]
enum Damage {
    /// A byte of a layer's tar, before it is compressed and hashed.
    TarByte {
        layer: u8,
        at: u16,
        xor: u8,
    },
    /// A layer's tar cut short, before it is compressed and hashed.
    TarTruncate {
        layer: u8,
        at: u16,
    },
    /// A byte of a layer blob; with `rehash` its digest and size follow.
    BlobByte {
        layer: u8,
        at: u16,
        xor: u8,
        rehash: bool,
    },
    BlobTruncate {
        layer: u8,
        at: u16,
        rehash: bool,
    },
    /// Bytes after the compressed stream, digest updated.
    BlobTrailing {
        layer: u8,
        bytes: Vec<u8>,
    },
    /// A wrong diff_id in the config.
    DiffId {
        layer: u8,
    },
    /// A field of a JSON document set or removed; with `rehash` the digests
    /// of what names the document follow.
    Json {
        doc: Doc,
        path: Vec<Key>,
        value: JsonValue,
        rehash: bool,
    },
    /// A byte of a JSON document's text.
    JsonByte {
        doc: Doc,
        at: u16,
        xor: u8,
        rehash: bool,
    },
    /// A member left out of the archive.
    DropMember {
        which: u8,
    },
    /// A member written twice, the second time with other bytes.
    DuplicateMember {
        which: u8,
        bytes: Vec<u8>,
    },
    /// A byte of the archive file.
    ArchiveByte {
        at: u16,
        xor: u8,
    },
    ArchiveTruncate {
        at: u16,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Doc {
    Index,
    NestedIndex,
    Manifest,
    Config,
    OciLayout,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Key {
    SchemaVersion,
    MediaType,
    Config,
    Layers,
    Manifests,
    Digest,
    Size,
    Annotations,
    RefName,
    Platform,
    Architecture,
    Os,
    Rootfs,
    DiffIds,
    Type,
    ImageLayoutVersion,
    First,
    Second,
    Other,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::SchemaVersion => "schemaVersion",
            Key::MediaType => "mediaType",
            Key::Config => "config",
            Key::Layers => "layers",
            Key::Manifests => "manifests",
            Key::Digest => "digest",
            Key::Size => "size",
            Key::Annotations => "annotations",
            Key::RefName => "org.opencontainers.image.ref.name",
            Key::Platform => "platform",
            Key::Architecture => "architecture",
            Key::Os => "os",
            Key::Rootfs => "rootfs",
            Key::DiffIds => "diff_ids",
            Key::Type => "type",
            Key::ImageLayoutVersion => "imageLayoutVersion",
            Key::First => "0",
            Key::Second => "1",
            Key::Other => "other",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum JsonValue {
    Remove,
    Null,
    Zero,
    Negative,
    Huge,
    Float,
    True,
    EmptyString,
    EmptyArray,
    EmptyObject,
    Latest,
    Amd64,
    Linux,
    IndexType,
    ManifestType,
    LayerType,
    ZeroDigest,
    BadDigest,
}

impl JsonValue {
    fn value(self) -> Option<Value> {
        Some(match self {
            JsonValue::Remove => return None,
            JsonValue::Null => Value::Null,
            JsonValue::Zero => json!(0),
            JsonValue::Negative => json!(-1),
            JsonValue::Huge => json!(u64::MAX),
            JsonValue::Float => json!(1.5e300),
            JsonValue::True => json!(true),
            JsonValue::EmptyString => json!(""),
            JsonValue::EmptyArray => json!([]),
            JsonValue::EmptyObject => json!({}),
            JsonValue::Latest => json!("latest"),
            JsonValue::Amd64 => json!("amd64"),
            JsonValue::Linux => json!("linux"),
            JsonValue::IndexType => json!("application/vnd.oci.image.index.v1+json"),
            JsonValue::ManifestType => json!("application/vnd.oci.image.manifest.v1+json"),
            JsonValue::LayerType => json!("application/vnd.oci.image.layer.v1.tar"),
            JsonValue::ZeroDigest => json!(format!("sha256:{}", "0".repeat(64))),
            JsonValue::BadDigest => json!("sha256:ABC"),
        })
    }
}

/// Sets (or with [`JsonValue::Remove`] removes) the value at `path` in `doc`,
/// if the path leads somewhere.
fn edit(doc: &mut Value, path: &[Key], value: JsonValue) {
    let Some((last, parents)) = path.split_last() else {
        if let Some(v) = value.value() {
            *doc = v;
        }
        return;
    };
    let mut at = doc;
    for key in parents {
        let next = match at {
            Value::Object(map) => map.get_mut(key.name()),
            Value::Array(items) => key
                .name()
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return,
        }
    }
    match (at, value.value()) {
        (Value::Object(map), None) => drop(map.remove(last.name())),
        (Value::Object(map), Some(v)) => drop(map.insert(last.name().to_string(), v)),
        (Value::Array(items), v) => {
            let i = last.name().parse::<usize>().unwrap_or(items.len());
            match v {
                None if i < items.len() => drop(items.remove(i)),
                Some(v) if i < items.len() => items[i] = v,
                Some(v) => items.push(v),
                None => {}
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Writing tarballs, byte by byte: names are written as given, `..` and all.

struct TarOut {
    buf: Vec<u8>,
    gnu: bool,
}

/// One entry's header fields.
struct Meta {
    kind: u8,
    mode: u32,
    uid: u64,
    mtime: u64,
    device: Option<(u32, u32)>,
}

impl TarOut {
    fn new(gnu: bool) -> Self {
        TarOut {
            buf: Vec::new(),
            gnu,
        }
    }

    fn header(&self, name: &[u8], link: &[u8], meta: &Meta, size: u64) -> tar::Header {
        let mut h = if self.gnu {
            tar::Header::new_gnu()
        } else {
            tar::Header::new_ustar()
        };
        h.set_size(size);
        h.set_mode(meta.mode);
        h.set_uid(meta.uid);
        h.set_gid(meta.uid);
        h.set_mtime(meta.mtime);
        h.set_entry_type(tar::EntryType::new(meta.kind));
        if let Some((major, minor)) = meta.device {
            let _ = h.set_device_major(major);
            let _ = h.set_device_minor(minor);
        }
        let old = h.as_old_mut();
        let n = name.len().min(old.name.len());
        old.name[..n].copy_from_slice(&name[..n]);
        let n = link.len().min(old.linkname.len());
        old.linkname[..n].copy_from_slice(&link[..n]);
        h.set_cksum();
        h
    }

    fn block(&mut self, header: &tar::Header, data: &[u8]) {
        self.buf.extend_from_slice(header.as_bytes());
        self.buf.extend_from_slice(data);
        let pad = data.len().next_multiple_of(512) - data.len();
        self.buf.resize(self.buf.len() + pad, 0);
    }

    fn entry(
        &mut self,
        name: &[u8],
        link: &[u8],
        meta: &Meta,
        data: &[u8],
        xattrs: &[(&[u8], &[u8])],
    ) {
        let plain = Meta {
            kind: 0,
            mode: 0o644,
            uid: 0,
            mtime: 0,
            device: None,
        };
        let mut pax: Vec<u8> = Vec::new();
        let mut record = |key: &[u8], value: &[u8]| {
            // "LEN KEY=VALUE\n", LEN counting itself.
            let body = key.len() + value.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            pax.extend_from_slice(len.to_string().as_bytes());
            pax.push(b' ');
            pax.extend_from_slice(key);
            pax.push(b'=');
            pax.extend_from_slice(value);
            pax.push(b'\n');
        };
        for (name, value) in xattrs {
            record(&[b"SCHILY.xattr.", *name].concat(), value);
        }
        if !self.gnu {
            if name.len() > 100 {
                record(b"path", name);
            }
            if link.len() > 100 {
                record(b"linkpath", link);
            }
        }
        if !pax.is_empty() {
            let h = self.header(
                b"PaxHeaders/x",
                b"",
                &Meta {
                    kind: b'x',
                    ..plain
                },
                pax.len() as u64,
            );
            self.block(&h, &pax);
        }
        if self.gnu {
            for (long, kind) in [(link, b'K'), (name, b'L')] {
                if long.len() > 100 {
                    let data = [long, b"\0"].concat();
                    let h = self.header(
                        b"././@LongLink",
                        b"",
                        &Meta { kind, ..plain },
                        data.len() as u64,
                    );
                    self.block(&h, &data);
                }
            }
        }
        let h = self.header(name, link, meta, data.len() as u64);
        self.block(&h, data);
    }

    fn finish(mut self, end_blocks: bool) -> Vec<u8> {
        if end_blocks {
            self.buf.resize(self.buf.len() + 1024, 0);
        }
        self.buf
    }
}

// ---------------------------------------------------------------------------
// Building the archive.

fn sha256(data: &[u8]) -> String {
    let d = sha2::Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn pick<T>(items: &mut [T], i: u8) -> Option<&mut T> {
    let n = items.len();
    (n > 0).then(|| &mut items[usize::from(i) % n])
}

fn flip(bytes: &mut [u8], at: u16, xor: u8) {
    if !bytes.is_empty() {
        let n = bytes.len();
        bytes[usize::from(at) % n] ^= xor.max(1);
    }
}

fn truncate(bytes: &mut Vec<u8>, at: u16) {
    let n = bytes.len();
    bytes.truncate(usize::from(at) % (n + 1));
}

fn compress(compression: Compression, data: &[u8]) -> Vec<u8> {
    match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
    }
}

struct Built {
    archive: Vec<u8>,
    /// Every layer file's content, if no tar byte was damaged.
    contents: Option<HashSet<Vec<u8>>>,
}

/// A JSON document as it will be written and named.
struct Json {
    text: Vec<u8>,
    digest: String,
    size: usize,
}

impl ImageSpec {
    fn damage(&self) -> impl Iterator<Item = &Damage> {
        self.damage.iter().take(MAX_DAMAGE)
    }

    /// `value` serialised with the damage meant for `doc`: edits and byte
    /// flips with `rehash` before the digest is taken, the others after.
    fn document(&self, doc: Doc, mut value: Value) -> Json {
        for d in self.damage() {
            if let Damage::Json {
                doc: which,
                path,
                value: v,
                rehash: true,
            } = d
            {
                if *which == doc {
                    edit(&mut value, &path[..path.len().min(4)], *v);
                }
            }
        }
        let mut text = serde_json::to_vec(&value).unwrap();
        let flips = |text: &mut Vec<u8>, rehash: bool| {
            for d in self.damage() {
                if let Damage::JsonByte {
                    doc: which,
                    at,
                    xor,
                    rehash: r,
                } = d
                {
                    if *which == doc && *r == rehash {
                        flip(text, *at, *xor);
                    }
                }
            }
        };
        flips(&mut text, true);
        let digest = sha256(&text);
        let size = text.len();
        let late =
            |d: &Damage| matches!(d, Damage::Json { doc: w, rehash: false, .. } if *w == doc);
        if self.damage().any(late) {
            for d in self.damage() {
                if let Damage::Json {
                    doc: which,
                    path,
                    value: v,
                    rehash: false,
                } = d
                {
                    if *which == doc {
                        edit(&mut value, &path[..path.len().min(4)], *v);
                    }
                }
            }
            text = serde_json::to_vec(&value).unwrap();
        }
        flips(&mut text, false);
        Json { text, digest, size }
    }

    fn build(&self) -> Built {
        let docker = self.docker;
        let manifest_type = if docker {
            "application/vnd.docker.distribution.manifest.v2+json"
        } else {
            "application/vnd.oci.image.manifest.v1+json"
        };
        let index_type = if docker {
            "application/vnd.docker.distribution.manifest.list.v2+json"
        } else {
            "application/vnd.oci.image.index.v1+json"
        };
        let tar_damaged = self
            .damage()
            .any(|d| matches!(d, Damage::TarByte { .. } | Damage::TarTruncate { .. }));
        let mut contents = HashSet::new();

        // Layers: tar, damage, compress, hash.
        let mut tars: Vec<Vec<u8>> = Vec::new();
        for layer in self.layers.iter().take(MAX_LAYERS) {
            let mut out = TarOut::new(layer.gnu);
            for e in layer.entries.iter().take(MAX_ENTRIES) {
                let name = e.path.render();
                let mut meta = Meta {
                    kind: b'0',
                    mode: u32::from(e.mode),
                    uid: u64::from(e.owner % 4) * 1000,
                    mtime: u64::from(e.mtime),
                    device: None,
                };
                let (link, data): (Vec<u8>, &[u8]) = match &e.kind {
                    KindSpec::File(d) => (Vec::new(), &d[..d.len().min(MAX_FILE_BYTES)]),
                    KindSpec::Continuous(d) => {
                        meta.kind = b'7';
                        (Vec::new(), &d[..d.len().min(MAX_FILE_BYTES)])
                    }
                    KindSpec::Dir => {
                        meta.kind = b'5';
                        (Vec::new(), &[])
                    }
                    KindSpec::Symlink(t) => {
                        meta.kind = b'2';
                        (t.render(), &[])
                    }
                    KindSpec::HardLink(t) => {
                        meta.kind = b'1';
                        (t.render(), &[])
                    }
                    KindSpec::HardLinkNoTarget => {
                        meta.kind = b'1';
                        (Vec::new(), &[])
                    }
                    KindSpec::Fifo => {
                        meta.kind = b'6';
                        (Vec::new(), &[])
                    }
                    KindSpec::Char(a, b) | KindSpec::Block(a, b) => {
                        meta.kind = if matches!(e.kind, KindSpec::Char(..)) {
                            b'3'
                        } else {
                            b'4'
                        };
                        meta.device = Some((u32::from(*a), u32::from(*b)));
                        (Vec::new(), &[])
                    }
                    KindSpec::Other(k) => {
                        meta.kind = *k;
                        (Vec::new(), &[])
                    }
                };
                if matches!(meta.kind, b'0' | b'7' | 0) {
                    contents.insert(data.to_vec());
                }
                let xattr = e.xattr.as_ref().map(|(n, v)| {
                    let n: &[u8] = match n {
                        XattrName::Selinux => b"security.selinux",
                        XattrName::Capability => b"security.capability",
                        XattrName::User => b"user.x",
                        XattrName::Empty => b"",
                    };
                    (n, &v[..v.len().min(32)])
                });
                out.entry(&name, &link, &meta, data, xattr.as_slice());
            }
            tars.push(out.finish(layer.end_blocks));
        }
        for d in self.damage() {
            match *d {
                Damage::TarByte { layer, at, xor } => {
                    if let Some(t) = pick(&mut tars, layer) {
                        flip(t, at, xor);
                    }
                }
                Damage::TarTruncate { layer, at } => {
                    if let Some(t) = pick(&mut tars, layer) {
                        truncate(t, at);
                    }
                }
                _ => {}
            }
        }
        let mut blobs: Vec<Vec<u8>> = self
            .layers
            .iter()
            .zip(&tars)
            .map(|(layer, tar)| match layer.split {
                Some(at) if layer.compression != Compression::None => {
                    let at = usize::from(at) % (tar.len() + 1);
                    let mut b = compress(layer.compression, &tar[..at]);
                    b.extend(compress(layer.compression, &tar[at..]));
                    b
                }
                _ => compress(layer.compression, tar),
            })
            .collect();
        let blob_damage = |blobs: &mut Vec<Vec<u8>>, rehash: bool| {
            for d in self.damage() {
                match d {
                    Damage::BlobByte {
                        layer,
                        at,
                        xor,
                        rehash: r,
                    } if *r == rehash => {
                        if let Some(b) = pick(blobs, *layer) {
                            flip(b, *at, *xor);
                        }
                    }
                    Damage::BlobTruncate {
                        layer,
                        at,
                        rehash: r,
                    } if *r == rehash => {
                        if let Some(b) = pick(blobs, *layer) {
                            truncate(b, *at);
                        }
                    }
                    Damage::BlobTrailing { layer, bytes } if rehash => {
                        if let Some(b) = pick(blobs, *layer) {
                            b.extend_from_slice(&bytes[..bytes.len().min(16)]);
                        }
                    }
                    _ => {}
                }
            }
        };
        blob_damage(&mut blobs, true);
        let named: Vec<(String, usize)> = blobs.iter().map(|b| (sha256(b), b.len())).collect();
        blob_damage(&mut blobs, false);
        let mut diff_ids: Vec<String> = tars
            .iter()
            .map(|t| format!("sha256:{}", sha256(t)))
            .collect();
        for d in self.damage() {
            if let Damage::DiffId { layer } = d {
                if let Some(id) = pick(&mut diff_ids, *layer) {
                    *id = format!("sha256:{}", "1".repeat(64));
                }
            }
        }

        // Config, manifest, indexes.
        let config = self.document(
            Doc::Config,
            json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": ["PATH=/usr/bin"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": [{"created_by": "fuzz"}],
            }),
        );
        let layers: Vec<Value> = self
            .layers
            .iter()
            .zip(&named)
            .map(|(layer, (digest, size))| {
                let media = layer.media_type();
                json!({"mediaType": media, "digest": format!("sha256:{digest}"), "size": size})
            })
            .collect();
        let manifest = self.document(
            Doc::Manifest,
            json!({
                "schemaVersion": 2,
                "mediaType": manifest_type,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": format!("sha256:{}", config.digest),
                    "size": config.size,
                },
                "layers": layers,
            }),
        );
        let manifest_desc = |platform: Option<(&str, &str)>| {
            let mut d = json!({
                "mediaType": manifest_type,
                "digest": format!("sha256:{}", manifest.digest),
                "size": manifest.size,
            });
            if let Some((arch, os)) = platform {
                d["platform"] = json!({"architecture": arch, "os": os});
            }
            d
        };
        let mut docs: Vec<(String, Vec<u8>)> = Vec::new();
        let top = match self.shape {
            Shape::Direct => manifest_desc(None),
            Shape::Nested {
                arch,
                linux,
                sibling,
            } => {
                let arch = match arch {
                    Arch::Amd64 => "amd64",
                    Arch::Arm64 => "arm64",
                };
                let os = if linux { "linux" } else { "windows" };
                let mut list = Vec::new();
                if sibling {
                    list.push(manifest_desc(Some(("s390x", "linux"))));
                }
                list.push(manifest_desc(Some((arch, os))));
                let nested = self.document(
                    Doc::NestedIndex,
                    json!({"schemaVersion": 2, "mediaType": index_type, "manifests": list}),
                );
                let d = json!({
                    "mediaType": index_type,
                    "digest": format!("sha256:{}", nested.digest),
                    "size": nested.size,
                });
                docs.push((nested.digest, nested.text));
                d
            }
        };
        let mut top = top;
        let tag = match self.tag {
            TagChoice::None => None,
            TagChoice::Latest => Some("latest"),
            TagChoice::V1 => Some("v1"),
        };
        if let Some(tag) = tag {
            top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        }
        let mut manifests = vec![top.clone()];
        for i in 0..self.others % 3 {
            let mut other = top.clone();
            match i {
                0 => other["annotations"] = json!({"org.opencontainers.image.ref.name": "other"}),
                _ => drop(other.as_object_mut().map(|o| o.remove("annotations"))),
            }
            manifests.push(other);
        }
        let index = self.document(
            Doc::Index,
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}),
        );
        let layout = self.document(Doc::OciLayout, json!({"imageLayoutVersion": "1.0.0"}));

        // The archive's members, in the order skopeo writes them.
        let mut members: Vec<(String, Vec<u8>)> = vec![
            ("oci-layout".into(), layout.text),
            ("index.json".into(), index.text),
        ];
        let blob_name = |digest: &str| format!("blobs/sha256/{digest}");
        members.push((blob_name(&manifest.digest), manifest.text));
        members.push((blob_name(&config.digest), config.text));
        for (digest, text) in docs {
            members.push((blob_name(&digest), text));
        }
        for ((digest, _), blob) in named.iter().zip(blobs) {
            members.push((blob_name(digest), blob));
        }
        for d in self.damage() {
            match d {
                Damage::DropMember { which } => {
                    let n = members.len();
                    members.remove(usize::from(*which) % n);
                }
                Damage::DuplicateMember { which, bytes } => {
                    let n = members.len();
                    let name = members[usize::from(*which) % n].0.clone();
                    members.push((name, bytes[..bytes.len().min(64)].to_vec()));
                }
                _ => {}
            }
        }
        let prefix = match self.prefix {
            Prefix::None => "",
            Prefix::DotSlash => "./",
            Prefix::Slash => "/",
        };
        let mut out = TarOut::new(false);
        let meta = |kind| Meta {
            kind,
            mode: 0o644,
            uid: 0,
            mtime: 0,
            device: None,
        };
        out.entry(
            format!("{prefix}blobs/").as_bytes(),
            b"",
            &meta(b'5'),
            &[],
            &[],
        );
        out.entry(
            format!("{prefix}blobs/sha256/").as_bytes(),
            b"",
            &meta(b'5'),
            &[],
            &[],
        );
        for (name, data) in &members {
            out.entry(
                format!("{prefix}{name}").as_bytes(),
                b"",
                &meta(b'0'),
                data,
                &[],
            );
        }
        let mut archive = out.finish(true);
        for d in self.damage() {
            match *d {
                Damage::ArchiveByte { at, xor } => flip(&mut archive, at, xor),
                Damage::ArchiveTruncate { at } => truncate(&mut archive, at),
                _ => {}
            }
        }
        Built {
            archive,
            contents: (!tar_damaged).then_some(contents),
        }
    }
}
