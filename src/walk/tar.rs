//! Reading a root file system from tar streams: one tarball (as `podman
//! export` writes), or the layers of an image applied in order.
//!
//! Entries come back in the same canonical order as a directory walk (depth
//! first, children sorted by name bytes), whatever the tarball's order; a
//! later entry for the same path replaces an earlier one. Paths are relative
//! and may not leave the root: `..` components are an error, leading `/` and
//! `./` are dropped, and no entry may sit below a non-directory. Regular-file
//! content stays where it is: the returned [`TarContent`] says in which file
//! and at which offset each file's bytes are.
//!
//! Image layers ([`TarMerger::add_layer`] with `whiteouts`) follow the OCI
//! layer rules: `.wh.NAME` deletes `NAME` (and what is below it) from the
//! layers underneath, `.wh..wh..opq` in a directory hides everything the
//! layers underneath put in it, and a non-directory replacing a directory
//! replaces its whole subtree. A hard link keeps the content its target had
//! when the link was made, even if a later layer replaces or deletes the
//! target.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Entry, EntryKind, Tree};
use crate::error::{Error, Result};
use crate::io::{anonymous_file, Decoder, StreamCompression, Tee};

/// A file that holds regular-file content: a tarball, a layer blob, or a
/// scratch copy of a decompressed layer.
#[derive(Debug)]
pub struct ContentFile {
    /// The open file.
    pub file: File,
    /// Where it is (for I/O errors): the tarball, a layer's blob file, the
    /// archive holding it, or the directory of a nameless scratch file.
    pub path: PathBuf,
    /// What it holds, as named in messages (the tarball, `oci:DIR layer 2 (…)`).
    pub name: String,
}

/// Where the content of each regular file is.
#[derive(Debug, Default)]
pub struct TarContent {
    /// The files content is read from.
    pub files: Vec<ContentFile>,
    /// Path of a regular entry -> (index into `files`, offset of its content).
    pub offsets: HashMap<PathBuf, (usize, u64)>,
}

impl TarContent {
    /// The file holding the content of `path` and the offset it starts at.
    pub fn locate(&self, path: &Path) -> Result<(&ContentFile, u64)> {
        match self.offsets.get(path) {
            Some(&(i, off)) => Ok((&self.files[i], off)),
            None => Err(Error::malformed(
                self.files.first().map_or("", |f| f.name.as_str()),
                format!("no content recorded for {}", path.display()),
            )),
        }
    }
}

fn invalid(path: &Path, why: String) -> Error {
    Error::malformed(path.display(), why)
}

fn lossy(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(raw)
}

/// A tar path made relative and checked: empty for the root itself.
fn normalise(tarball: &Path, raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut parts = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(invalid(
                    tarball,
                    format!("entry {:?} leaves the root (..)", lossy(raw)),
                ))
            }
            c => parts.push(c.to_vec()),
        }
    }
    Ok(parts)
}

fn join(parts: &[Vec<u8>]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&parts.join(&b'/')))
}

/// Where a regular file's content is: (index into the files, offset).
type Location = (usize, u64);

/// What a hard link's target was when the link was read.
#[derive(Clone, Debug)]
struct Snapshot {
    kind: EntryKind,
    content: Option<Location>,
    layer: u32,
}

#[derive(Debug)]
struct Item {
    entry: Entry,
    content: Option<Location>,
    layer: u32,
    /// For hard links: the target as it was.
    link: Option<Snapshot>,
}

/// Builds one tree out of tar streams applied in order.
#[derive(Debug, Default)]
pub struct TarMerger {
    items: BTreeMap<Vec<Vec<u8>>, Item>,
    root: Option<Entry>,
    files: Vec<ContentFile>,
    layers: u32,
}

/// How many bytes of tar headers, long names and PAX records may come
/// between two entries (1 MiB; GNU tar and the OCI tools write a few KiB).
const METADATA_BUDGET: u64 = 1 << 20;

/// A reader that fails once more bytes are asked for than `left` allows.
struct Budgeted<R> {
    inner: R,
    left: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left.get();
        if left == 0 && !buf.is_empty() {
            return Err(std::io::Error::other(
                "more than 1 MiB of tar headers, long names or PAX records before an entry",
            ));
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// The OCI whiteout prefix.
const WHITEOUT: &[u8] = b".wh.";
/// The OCI opaque-directory marker.
const OPAQUE: &[u8] = b".wh..wh..opq";

impl TarMerger {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one tar stream on top of what was added before. The content
    /// of its regular files must be at `base` plus their position in the
    /// stream in `content` (the stream is `content` itself, or a copy of it
    /// being written there). With `whiteouts`, `.wh.` entries delete from the
    /// earlier layers instead of being files. Errors name `content`.
    pub fn add_layer(
        &mut self,
        stream: impl Read,
        content: ContentFile,
        base: u64,
        whiteouts: bool,
    ) -> Result<()> {
        let file_index = self.files.len();
        let name = PathBuf::from(&content.name);
        self.files.push(content);
        let layer = self.layers;
        self.layers += 1;
        let path = name.as_path();
        // The tar crate reads long names and PAX headers whole into memory:
        // between two entries it may read the rest of the previous entry's
        // content and at most METADATA_BUDGET bytes more.
        let budget = std::rc::Rc::new(std::cell::Cell::new(METADATA_BUDGET));
        let mut archive = tar::Archive::new(Budgeted {
            inner: stream,
            left: budget.clone(),
        });
        let bad = |e: std::io::Error| invalid(path, format!("malformed tarball: {e}"));
        let entries = archive.entries().map_err(bad)?;
        for entry in entries {
            let mut entry = entry.map_err(bad)?;
            budget.set(
                entry
                    .size()
                    .div_ceil(512)
                    .saturating_mul(512)
                    .saturating_add(METADATA_BUDGET),
            );
            let raw_path = entry.path_bytes().into_owned();
            let parts = normalise(path, &raw_path)?;
            if whiteouts && self.whiteout(&parts, layer) {
                continue;
            }
            let (e, link) = read_entry(path, &mut entry, &raw_path, &parts)?;
            let item = Item {
                content: matches!(e.kind, EntryKind::Regular { .. })
                    .then(|| (file_index, base + entry.raw_file_position())),
                entry: e,
                layer,
                link: None,
            };
            self.put(path, &raw_path, parts, item, link)?;
        }
        Ok(())
    }

    /// If the entry at `parts` of `layer` is a whiteout, applies it and
    /// says so: `.wh.NAME` deletes `NAME` from the layers below, an opaque
    /// marker what they put in its directory; other `.wh..wh.` names are
    /// aufs bookkeeping, dropped.
    fn whiteout(&mut self, parts: &[Vec<u8>], layer: u32) -> bool {
        let Some(last) = parts.last() else {
            return false;
        };
        let Some(hidden) = last.strip_prefix(WHITEOUT) else {
            return false;
        };
        let dir = &parts[..parts.len() - 1];
        if last.as_slice() == OPAQUE {
            self.remove_below(dir, false, layer);
        } else if !hidden.starts_with(WHITEOUT) && !hidden.is_empty() {
            let mut gone = dir.to_vec();
            gone.push(hidden.to_vec());
            self.remove_below(&gone, true, layer);
        }
        true
    }

    /// Puts `item` (read as `raw_path` from `path`) at `parts`: the root
    /// itself, or an entry over what lower layers had there. A hard link
    /// (to `link`) keeps what its target is now.
    fn put(
        &mut self,
        path: &Path,
        raw_path: &[u8],
        parts: Vec<Vec<u8>>,
        mut item: Item,
        link: Option<Vec<Vec<u8>>>,
    ) -> Result<()> {
        if parts.is_empty() {
            if !item.entry.is_dir() {
                return Err(invalid(
                    path,
                    format!("the root entry {:?} is not a directory", lossy(raw_path)),
                ));
            }
            self.root = Some(item.entry);
            return Ok(());
        }
        item.link = match &link {
            Some(target) => self.snapshot(target),
            None => None,
        };
        // A non-directory over a directory of a lower layer replaces its subtree.
        let lower_dir = self
            .items
            .get(&parts)
            .is_some_and(|old| old.entry.is_dir() && old.layer < item.layer);
        if lower_dir && !item.entry.is_dir() {
            self.remove_below(&parts, false, item.layer);
        }
        self.items.insert(parts, item);
        Ok(())
    }

    /// What the entry at `target` is now, following a hard link to its content.
    fn snapshot(&self, target: &[Vec<u8>]) -> Option<Snapshot> {
        let item = self.items.get(target)?;
        match &item.entry.kind {
            EntryKind::HardLink { .. } => item.link.clone(),
            kind => Some(Snapshot {
                kind: kind.clone(),
                content: item.content,
                layer: item.layer,
            }),
        }
    }

    /// Removes, among the entries of layers below `layer`, those strictly
    /// below `dir` (and `dir` itself with `inclusive`).
    fn remove_below(&mut self, dir: &[Vec<u8>], inclusive: bool, layer: u32) {
        let doomed: Vec<Vec<Vec<u8>>> = self
            .items
            .range(dir.to_vec()..)
            .take_while(|(k, _)| k.starts_with(dir))
            .filter(|(k, item)| (inclusive || k.len() > dir.len()) && item.layer < layer)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.items.remove(&k);
        }
    }

    /// The merged tree, in canonical order, and where its content is.
    /// `name` is used in errors about the whole (a link to a missing file).
    pub fn finish(self, name: &Path) -> Result<(Tree, TarContent)> {
        let path = name;
        let mut non_dirs: Vec<&[Vec<u8>]> = Vec::new();
        for (parts, item) in &self.items {
            // Keys are sorted: a non-directory's descendants follow it directly.
            while non_dirs.last().is_some_and(|d| !parts.starts_with(d)) {
                non_dirs.pop();
            }
            if let Some(d) = non_dirs.last() {
                return Err(invalid(
                    path,
                    format!(
                        "{} lies below {}, which is not a directory",
                        item.entry.path.display(),
                        join(d).display()
                    ),
                ));
            }
            if !item.entry.is_dir() {
                non_dirs.push(parts);
            }
        }
        let mut entries: Vec<(Entry, Option<Location>)> = Vec::with_capacity(self.items.len());
        let lookup: HashMap<Box<Path>, (EntryKind, u32)> = self
            .items
            .values()
            .map(|i| (i.entry.path.clone(), (i.entry.kind.clone(), i.layer)))
            .collect();
        for item in self.items.into_values() {
            let mut e = item.entry;
            let mut content = item.content;
            if let (EntryKind::HardLink { target }, Some(snap)) = (&e.kind, &item.link) {
                // The target was replaced or deleted since: the link keeps the
                // content it had, as a file of its own.
                let same = lookup
                    .get(&**target)
                    .is_some_and(|(kind, layer)| *kind == snap.kind && *layer == snap.layer);
                if !same {
                    e.kind = snap.kind.clone();
                    content = snap.content;
                }
            }
            entries.push((e, content));
        }
        link_groups(path, &mut entries)?;
        let mut offsets = HashMap::new();
        let mut tree = Tree {
            root: self.root,
            ..Tree::default()
        };
        for (e, off) in entries {
            if let Some(off) = off {
                offsets.insert(e.path.to_path_buf(), off);
            }
            tree.entries.push(e);
        }
        Ok((
            tree,
            TarContent {
                files: self.files,
                offsets,
            },
        ))
    }
}

/// One tar entry as an [`Entry`], and the target of a hard link.
fn read_entry<R: Read>(
    path: &Path,
    entry: &mut tar::Entry<'_, R>,
    raw_path: &[u8],
    parts: &[Vec<u8>],
) -> Result<(Entry, Option<Vec<Vec<u8>>>)> {
    let header = entry.header().clone();
    let link = entry.link_name_bytes().map(|l| l.into_owned());
    let xattrs = read_xattrs(path, entry)?;
    let (kind, hard_target) = read_kind(path, raw_path, &header, link, entry.size())?;
    let num = |v: std::io::Result<u64>, what: &str| {
        v.map_err(|e| {
            invalid(
                path,
                format!("entry {:?}: bad {what}: {e}", lossy(raw_path)),
            )
        })
    };
    let e = Entry {
        path: join(parts).into_boxed_path(),
        kind,
        mode: num(header.mode().map(u64::from), "mode")? as u32 & 0o7777,
        uid: num(header.uid(), "uid")? as u32,
        gid: num(header.gid(), "gid")? as u32,
        mtime: num(header.mtime(), "mtime")? as i64,
        xattrs: xattrs.into(),
    };
    Ok((e, hard_target))
}

/// The extended attributes of a tar entry, sorted: its `SCHILY.xattr.`
/// PAX records, and POSIX ACLs written as text (GNU tar, star) for those
/// without the xattr form.
fn read_xattrs<R: Read>(
    path: &Path,
    entry: &mut tar::Entry<'_, R>,
) -> Result<Vec<(OsString, Vec<u8>)>> {
    let bad = |e: std::io::Error| invalid(path, format!("malformed tarball: {e}"));
    let mut xattrs: Vec<(OsString, Vec<u8>)> = Vec::new();
    let mut acls: Vec<(&str, Vec<u8>)> = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(bad)? {
        for ext in exts {
            let ext = ext.map_err(bad)?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((
                    OsStr::from_bytes(name).to_owned(),
                    ext.value_bytes().to_vec(),
                ));
            }
            let which = match ext.key_bytes() {
                b"SCHILY.acl.access" => "system.posix_acl_access",
                b"SCHILY.acl.default" => "system.posix_acl_default",
                _ => continue,
            };
            if let Some(x) = crate::walk::acl::from_text(ext.value_bytes()) {
                acls.push((which, x));
            }
        }
    }
    for (name, x) in acls {
        if !xattrs.iter().any(|(k, _)| k == name) {
            xattrs.push((name.into(), x));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// The kind of the entry `raw_path` of `path` (with `header`, link name
/// `link` and content `size`), and the target of a hard link.
fn read_kind(
    path: &Path,
    raw_path: &[u8],
    header: &tar::Header,
    link: Option<Vec<u8>>,
    size: u64,
) -> Result<(EntryKind, Option<Vec<Vec<u8>>>)> {
    let bad = |e: std::io::Error| invalid(path, format!("malformed tarball: {e}"));
    let device = || -> Result<(u32, u32)> {
        let major = header.device_major().map_err(bad)?.unwrap_or(0);
        let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
        Ok((major, minor))
    };
    let link_target = || -> Result<Vec<u8>> {
        link.clone()
            .ok_or_else(|| invalid(path, format!("link {:?} has no target", lossy(raw_path))))
    };
    use tar::EntryType as T;
    let kind = match header.entry_type() {
        T::Regular | T::Continuous => EntryKind::Regular { size },
        T::Directory => EntryKind::Directory,
        T::Symlink => EntryKind::Symlink {
            target: Path::new(OsStr::from_bytes(&link_target()?)).into(),
        },
        T::Link => {
            let target = normalise(path, &link_target()?)?;
            if target.is_empty() {
                return Err(invalid(path, "a hard link to the root".into()));
            }
            let kind = EntryKind::HardLink {
                target: join(&target).into_boxed_path(),
            };
            return Ok((kind, Some(target)));
        }
        T::Char => {
            let (major, minor) = device()?;
            EntryKind::CharDevice { major, minor }
        }
        T::Block => {
            let (major, minor) = device()?;
            EntryKind::BlockDevice { major, minor }
        }
        T::Fifo => EntryKind::Fifo,
        other => {
            return Err(invalid(
                path,
                format!(
                    "entry {:?} has an unsupported type {:?}",
                    lossy(raw_path),
                    char::from(other.as_byte())
                ),
            ))
        }
    };
    Ok((kind, None))
}

/// Hard links: the first path of each inode in walk order holds the
/// content, the others name it, and all share its metadata.
fn link_groups(path: &Path, entries: &mut [(Entry, Option<Location>)]) -> Result<()> {
    let index: HashMap<Box<Path>, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (e, _))| (e.path.clone(), i))
        .collect();
    let mut group_first: HashMap<usize, usize> = HashMap::new();
    for i in 0..entries.len() {
        let EntryKind::HardLink { target } = &entries[i].0.kind else {
            continue;
        };
        let t = *index.get(&**target).ok_or_else(|| {
            invalid(
                path,
                format!(
                    "hard link {} points to {}, which the tarball does not hold",
                    entries[i].0.path.display(),
                    target.display()
                ),
            )
        })?;
        if matches!(
            entries[t].0.kind,
            EntryKind::HardLink { .. } | EntryKind::Directory
        ) {
            return Err(invalid(
                path,
                format!(
                    "hard link {} points to {}, which is not a file",
                    entries[i].0.path.display(),
                    target.display()
                ),
            ));
        }
        let first = *group_first.entry(t).or_insert(t);
        if i < first {
            // This link comes first in walk order: it takes the content.
            let (content_kind, content_offset) = (entries[first].0.kind.clone(), entries[first].1);
            entries[i].0.kind = content_kind;
            entries[i].1 = content_offset;
            group_first.insert(t, i);
        }
    }
    for i in 0..entries.len() {
        let holder = match &entries[i].0.kind {
            EntryKind::HardLink { target } => group_first.get(&index[&**target]).copied(),
            _ => group_first.get(&i).copied().filter(|&f| f != i),
        };
        if let Some(f) = holder {
            if f != i {
                entries[i].0.kind = EntryKind::HardLink {
                    target: entries[f].0.path.clone(),
                };
                entries[i].1 = None;
            }
        }
    }
    // All names of an inode share its metadata: the tarball's content entry
    // has it (a hard link entry may carry none, such as xattrs).
    for (&t, &f) in &group_first {
        let holder = entries[t].0.clone();
        let first_path = entries[f].0.path.clone();
        for (e, _) in entries.iter_mut() {
            let member = e.path == first_path
                || matches!(&e.kind, EntryKind::HardLink { target } if *target == first_path);
            if member {
                e.mode = holder.mode;
                e.uid = holder.uid;
                e.gid = holder.gid;
                e.mtime = holder.mtime;
                e.xattrs = holder.xattrs.clone();
            }
        }
    }
    Ok(())
}

/// Reads the tarball at `path`: plain, or compressed with gzip or zstd (then
/// decompressed into an anonymous scratch file in `scratch_dir`, which
/// disappears with the returned [`TarContent`]).
pub fn walk_tar(path: &Path, scratch_dir: &Path) -> Result<(Tree, TarContent)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 4];
    let n = read_head(&mut file, &mut head).map_err(|e| Error::io(path, e))?;
    let mut merger = TarMerger::new();
    let compression = StreamCompression::sniff(&head[..n]);
    let reopen = || File::open(path).map_err(|e| Error::io(path, e));
    if compression == StreamCompression::None {
        let content = ContentFile {
            file: reopen()?,
            path: path.to_path_buf(),
            name: path.display().to_string(),
        };
        merger.add_layer(std::io::BufReader::new(reopen()?), content, 0, false)?;
    } else {
        let scratch = anonymous_file(scratch_dir)?;
        let mut copy = scratch.try_clone().map_err(|e| Error::io(scratch_dir, e))?;
        let decoded = Decoder::new(compression, std::io::BufReader::new(reopen()?))
            .map_err(|e| Error::io(path, e))?;
        let content = ContentFile {
            file: scratch,
            path: scratch_dir.to_path_buf(),
            name: path.display().to_string(),
        };
        let mut stream = std::io::BufReader::with_capacity(
            1 << 18,
            Tee {
                inner: decoded,
                copy: &mut copy,
            },
        );
        merger.add_layer(&mut stream, content, 0, false)?;
        // The rest of the stream (past the end-of-archive blocks) is read too,
        // so a corrupt compressed stream is noticed.
        std::io::copy(&mut stream, &mut std::io::sink()).map_err(|e| Error::io(path, e))?;
    }
    merger.finish(path)
}

fn read_head(file: &mut File, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// (path, type, content or link target)
    type Spec<'a> = &'a [(&'a str, char, &'a str)];

    fn layer(entries: Spec<'_>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for &(path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(1);
            h.set_uid(0);
            h.set_gid(0);
            match kind {
                'f' => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data.as_bytes()).unwrap();
                }
                'd' => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, path, std::io::empty()).unwrap();
                }
                'h' | 'l' => {
                    h.set_entry_type(if kind == 'h' {
                        tar::EntryType::Link
                    } else {
                        tar::EntryType::Symlink
                    });
                    h.set_size(0);
                    b.append_link(&mut h, path, data).unwrap();
                }
                _ => unreachable!(),
            }
        }
        b.into_inner().unwrap()
    }

    fn merge(layers: &[Spec<'_>]) -> Result<Vec<(String, String)>> {
        let mut m = TarMerger::new();
        for (i, spec) in layers.iter().enumerate() {
            let bytes = layer(spec);
            let mut f = anonymous_file(&std::env::temp_dir()).unwrap();
            f.write_all(&bytes).unwrap();
            let content = ContentFile {
                file: f,
                path: format!("layer{i}").into(),
                name: format!("layer{i}"),
            };
            m.add_layer(&bytes[..], content, 0, true)?;
        }
        let (tree, content) = m.finish(Path::new("image"))?;
        Ok(tree
            .entries
            .iter()
            .map(|e| {
                let what = match &e.kind {
                    EntryKind::Regular { size } => {
                        use std::os::unix::fs::FileExt;
                        let (f, off) = content.locate(&e.path).unwrap();
                        let mut buf = vec![0; *size as usize];
                        f.file.read_exact_at(&mut buf, off).unwrap();
                        format!("f:{}", String::from_utf8(buf).unwrap())
                    }
                    EntryKind::Directory => "d".into(),
                    EntryKind::HardLink { target } => format!("h:{}", target.display()),
                    EntryKind::Symlink { target } => format!("l:{}", target.display()),
                    other => format!("{other:?}"),
                };
                (e.path.display().to_string(), what)
            })
            .collect())
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn whiteouts_delete_from_lower_layers_only() {
        let got = merge(&[
            &[
                ("a", 'd', ""),
                ("a/keep", 'f', "1"),
                ("a/gone", 'f', "2"),
                ("b", 'd', ""),
                ("b/x", 'f', "3"),
                ("b/sub", 'd', ""),
                ("b/sub/y", 'f', "4"),
                ("c", 'd', ""),
                ("c/z", 'f', "5"),
            ],
            &[
                ("a/.wh.gone", 'f', ""),
                // Opaque: b's lower content goes, what this layer adds stays,
                // whatever the order of the marker.
                ("b/new", 'f', "6"),
                ("b/.wh..wh..opq", 'f', ""),
                // A file replacing a directory replaces its subtree.
                ("c", 'f', "7"),
                ("a/.wh..wh.plnk", 'f', ""),
            ],
        ])
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("a", "d"),
                ("a/keep", "f:1"),
                ("b", "d"),
                ("b/new", "f:6"),
                ("c", "f:7"),
            ])
        );
    }

    #[test]
    fn a_whited_out_directory_goes_with_its_subtree_and_can_come_back() {
        let got = merge(&[
            &[("d", 'd', ""), ("d/e", 'd', ""), ("d/e/f", 'f', "old")],
            &[(".wh.d", 'f', "")],
            &[("d", 'd', ""), ("d/g", 'f', "new")],
        ])
        .unwrap();
        assert_eq!(got, pairs(&[("d", "d"), ("d/g", "f:new")]));
    }

    #[test]
    fn a_hard_link_keeps_its_content_when_the_target_is_replaced_or_deleted() {
        let got = merge(&[
            &[
                ("t", 'f', "first"),
                ("link", 'h', "t"),
                ("u", 'f', "second"),
                ("link2", 'h', "u"),
            ],
            &[("t", 'f', "replaced"), (".wh.u", 'f', "")],
        ])
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("link", "f:first"),
                ("link2", "f:second"),
                ("t", "f:replaced")
            ])
        );
        // An untouched pair stays linked, the first path in walk order
        // holding the content.
        let got = merge(&[
            &[("z", 'f', "data"), ("a", 'h', "z")],
            &[("other", 'f', "")],
        ])
        .unwrap();
        assert_eq!(
            got,
            pairs(&[("a", "f:data"), ("other", "f:"), ("z", "h:a")])
        );
    }

    #[test]
    fn entries_below_a_non_directory_or_outside_the_root_are_errors() {
        let err = merge(&[&[("lib", 'l', "/etc")], &[("lib/passwd", 'f', "x")]]).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        let err = merge(&[&[("a", 'f', "x"), ("a/b", 'f', "y")]]).unwrap_err();
        assert!(err.to_string().contains("lies below a"), "{err}");
        let err = merge(&[&[("x", 'h', "missing")]]).unwrap_err();
        assert!(err.to_string().contains("does not hold"), "{err}");
    }

    #[test]
    fn huge_long_names_and_non_directory_roots_are_refused() {
        // A GNU long name claiming 5 GiB, followed by endless zeros: refused
        // after 1 MiB, not read into memory.
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_path("././@LongLink").unwrap();
        h.set_size(5 << 30);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        let stream = std::io::Read::chain(h.as_bytes().as_slice(), std::io::repeat(0));
        let content = ContentFile {
            file: anonymous_file(&std::env::temp_dir()).unwrap(),
            path: "bomb".into(),
            name: "bomb".into(),
        };
        let err = TarMerger::new()
            .add_layer(stream, content, 0, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 MiB"), "{err}");
        // A root that is a file or a symbolic link.
        let err = merge(&[&[(".", 'f', "x")]]).unwrap_err().to_string();
        assert!(err.contains("root entry"), "{err}");
        let err = merge(&[&[("./", 'l', "/etc")]]).unwrap_err().to_string();
        assert!(err.contains("root entry"), "{err}");
    }

    #[test]
    fn whiteouts_are_plain_files_in_a_tarball() {
        let bytes = layer(&[("a", 'f', "1"), (".wh.a", 'f', "")]);
        let mut m = TarMerger::new();
        let mut f = anonymous_file(&std::env::temp_dir()).unwrap();
        f.write_all(&bytes).unwrap();
        let content = ContentFile {
            file: f,
            path: "t".into(),
            name: "t".into(),
        };
        m.add_layer(&bytes[..], content, 0, false).unwrap();
        let (tree, _) = m.finish(Path::new("t")).unwrap();
        assert_eq!(tree.entries.len(), 2);
    }
}
