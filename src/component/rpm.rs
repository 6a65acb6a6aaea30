//! rpm (Fedora, RHEL, CentOS, openSUSE): the sqlite database `rpmdb.sqlite`.
//!
//! rpm keeps its database in `%_dbpath`: `usr/lib/sysimage/rpm` since
//! Fedora 36 and RHEL 10, `var/lib/rpm` before (RHEL 9), where it is often a
//! symbolic link to the former. Both are looked at, through the tree's own
//! links; a file both names reach is read once.
//!
//! The table `Packages(hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB)`
//! holds one header per installed package ([`super::sqlite`] reads it). A
//! header blob is the on-disk header without its 8-byte magic:
//!
//! - `il` and `dl` (big-endian `u32`): the number of index entries and the
//!   size of the data store; the blob is `8 + 16 * il + dl` bytes;
//! - `il` entries of four big-endian `u32`: tag, type, offset into the data
//!   store, count;
//! - the data store. Types read here: STRING (6) is one NUL-terminated
//!   string, STRING_ARRAY (8) `count` of them one after the other, INT32 (4)
//!   `count` big-endian `u32`s. Other entries (such as the region tags 61..63
//!   that come first) are not looked at.
//!
//! Tags read: NAME (1000), SOURCERPM (1044, `<name>-<version>-<release>.src.rpm`
//! or `.nosrc.rpm`: the component is `rpm:<name>`, or `rpm:<NAME>` for a
//! package without one, such as `gpg-pubkey`), and the files: BASENAMES
//! (1117), DIRNAMES (1118) and DIRINDEXES (1116), file `i` being
//! `DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]`, or OLDFILENAMES (1027), whole
//! paths, in headers older than compressed file lists.
//!
//! Errors about a header are [`crate::Error::PackageDb`] with the package's
//! `hnum` as the line. The Berkeley DB (`Packages`, rpm before 4.16) and ndb
//! (`Packages.db`, openSUSE) formats are not read: a root that has one of
//! them and no sqlite database is an error, not a tree without packages.

use std::io;
use std::path::{Path, PathBuf};

use super::sqlite::{Database, Value, MAX_FILE_BYTES};
use super::{
    database_path, malformed, push_component, too_many_links, Database as Db, InstalledPackage,
    OwnershipBuilder, RootFs,
};
use crate::{Error, Result};

/// Where rpm keeps its database, newest layout first.
const DB_DIRS: [&[u8]; 2] = [b"usr/lib/sysimage/rpm", b"var/lib/rpm"];
const SQLITE: &[u8] = b"rpmdb.sqlite";
/// Database files of the backends that are not read, and their names.
const UNSUPPORTED: [(&[u8], &str); 2] = [(b"Packages", "Berkeley DB"), (b"Packages.db", "ndb")];

pub(super) fn read(tree: &mut RootFs, out: &mut OwnershipBuilder) -> Result<()> {
    let mut read: Vec<Vec<u8>> = Vec::new();
    for dir in DB_DIRS {
        let Some((resolved, host)) = locate(tree, dir, SQLITE)? else {
            continue;
        };
        if !read.contains(&resolved) {
            read_sqlite(tree, out, &resolved, &host)?;
            read.push(resolved);
        }
    }
    if !read.is_empty() {
        return Ok(());
    }
    for dir in DB_DIRS {
        for (name, format) in UNSUPPORTED {
            if let Some((_, host)) = locate(tree, dir, name)? {
                return Err(Error::io(
                    host,
                    io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!(
                            "rpm database in {format} format: only the sqlite backend \
                             (rpmdb.sqlite) is read; convert it with \
                             `rpmdb --rebuilddb --define '_db_backend sqlite'`"
                        ),
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `dir/name`, symbolic links resolved inside the root: the resolved path
/// and where it is on the host. `None` if there is nothing there.
fn locate(tree: &mut RootFs, dir: &[u8], name: &[u8]) -> Result<Option<(Vec<u8>, PathBuf)>> {
    let mut rel = dir.to_vec();
    push_component(&mut rel, name);
    let (resolved, complete) = tree.resolve(&rel, true)?;
    let host = tree.host_path(&resolved);
    if !complete {
        return Err(Error::io(host, too_many_links()));
    }
    Ok(tree.node(&resolved)?.map(|_| (resolved, host)))
}

/// Reads the sqlite database at `rel` (resolved), called `file` in messages.
fn read_sqlite(
    tree: &mut RootFs,
    out: &mut OwnershipBuilder,
    rel: &[u8],
    file: &Path,
) -> Result<()> {
    let Some(data) = tree.view.read(rel, MAX_FILE_BYTES)? else {
        return Err(Error::io(
            file,
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    };
    let db = Database::new(file, &data)?;
    let Some(root) = db.table_root("Packages")? else {
        return Err(Error::io(
            file,
            io::Error::new(io::ErrorKind::InvalidData, "no Packages table"),
        ));
    };
    db.for_each_row(root, &mut |hnum, values| {
        let line = usize::try_from(hnum).unwrap_or(0);
        let bad = |message: String| malformed(file, line, format!("package {hnum}: {message}"));
        let Some(Value::Blob(blob)) = values.get(1) else {
            return Err(bad("the blob column is not a blob".into()));
        };
        let header = Header::parse(blob).map_err(bad)?;
        let by = out.package(header.package().map_err(bad)?, file);
        for raw in header.paths().map_err(bad)? {
            let path = database_path(&raw, file, line)?;
            let resolved = tree.resolve_parent(&path)?;
            out.claim_listed(resolved, by);
        }
        Ok(())
    })
}

/// A header tag: its number and its name for messages.
#[derive(Clone, Copy)]
struct Tag(u32, &'static str);

const NAME: Tag = Tag(1000, "NAME");
const VERSION: Tag = Tag(1001, "VERSION");
const RELEASE: Tag = Tag(1002, "RELEASE");
const EPOCH: Tag = Tag(1003, "EPOCH");
const LICENSE: Tag = Tag(1014, "LICENSE");
const ARCH: Tag = Tag(1022, "ARCH");
const OLDFILENAMES: Tag = Tag(1027, "OLDFILENAMES");
const SOURCERPM: Tag = Tag(1044, "SOURCERPM");
const BUILDTIME: Tag = Tag(1006, "BUILDTIME");
const CHANGELOGTIME: Tag = Tag(1080, "CHANGELOGTIME");
const DIRINDEXES: Tag = Tag(1116, "DIRINDEXES");
const BASENAMES: Tag = Tag(1117, "BASENAMES");
const DIRNAMES: Tag = Tag(1118, "DIRNAMES");

const INT32: u32 = 4;
const STRING: u32 = 6;
const STRING_ARRAY: u32 = 8;

type Parsed<T> = std::result::Result<T, String>;

/// A header blob, its lengths checked.
struct Header<'a> {
    /// The index: 16 bytes per entry.
    index: &'a [u8],
    /// The data store.
    data: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Parsed<Self> {
        let (Some(il), Some(dl)) = (blob.get(..4).map(be32), blob.get(4..8).map(be32)) else {
            return Err(format!("header blob of {} bytes is truncated", blob.len()));
        };
        let index_len = 16 * u64::from(il);
        if 8 + index_len + u64::from(dl) != blob.len() as u64 {
            return Err(format!(
                "header of {il} entries and {dl} data bytes is not {} bytes long",
                blob.len()
            ));
        }
        let (index, data) = blob[8..].split_at(index_len as usize);
        Ok(Header { index, data })
    }

    /// Type, offset and count of the first entry for `tag`.
    fn entry(&self, tag: Tag) -> Option<(u32, usize, usize)> {
        self.index
            .chunks_exact(16)
            .find(|e| be32(e) == tag.0)
            .map(|e| {
                (
                    be32(&e[4..]),
                    be32(&e[8..]) as usize,
                    be32(&e[12..]) as usize,
                )
            })
    }

    /// The entry for `tag`, of type `kind`, as offset and count.
    fn typed(&self, tag: Tag, kind: u32) -> Parsed<Option<(usize, usize)>> {
        match self.entry(tag) {
            None => Ok(None),
            Some((k, offset, count)) if k == kind => {
                if offset >= self.data.len() {
                    return Err(format!("{} at offset {offset}, past the data", tag.1));
                }
                Ok(Some((offset, count)))
            }
            Some((k, ..)) => Err(format!("{} has type {k}, expected {kind}", tag.1)),
        }
    }

    fn string(&self, tag: Tag) -> Parsed<Option<&'a [u8]>> {
        let Some((offset, count)) = self.typed(tag, STRING)? else {
            return Ok(None);
        };
        if count != 1 {
            return Err(format!("{} is a string with count {count}", tag.1));
        }
        Ok(strings(self.data, offset, 1, tag)?.pop())
    }

    fn string_array(&self, tag: Tag) -> Parsed<Option<Vec<&'a [u8]>>> {
        match self.typed(tag, STRING_ARRAY)? {
            Some((offset, count)) => strings(self.data, offset, count, tag).map(Some),
            None => Ok(None),
        }
    }

    fn int32_array(&self, tag: Tag) -> Parsed<Option<Vec<u32>>> {
        let Some((offset, count)) = self.typed(tag, INT32)? else {
            return Ok(None);
        };
        let values = self.data[offset..]
            .get(..count.saturating_mul(4))
            .ok_or_else(|| format!("{} has {count} values, past the data", tag.1))?;
        Ok(Some(values.chunks_exact(4).map(be32).collect()))
    }

    /// The component: `rpm:` and the source package's name.
    #[cfg(test)]
    fn component(&self) -> Parsed<String> {
        Ok(self.package()?.component)
    }

    /// The package the header describes; its component is `rpm:` and the
    /// source package's name.
    fn package(&self) -> Parsed<InstalledPackage> {
        let name = self.string(NAME)?.ok_or("no NAME")?;
        let source = match self.string(SOURCERPM)? {
            // A source name not of the usual form: the package name will do.
            Some(rpm) => source_name(rpm).unwrap_or(name),
            None => name,
        };
        let text = |b: &[u8], what: &str| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| format!("{what} is not UTF-8"))
        };
        let optional = |tag: Tag| -> Parsed<Option<String>> {
            self.string(tag)?.map(|b| text(b, tag.1)).transpose()
        };
        let source = text(source, "name")?;
        Ok(InstalledPackage {
            database: Db::Rpm,
            name: text(name, "name")?,
            version: self.version()?,
            architecture: optional(ARCH)?,
            source: Some(source.clone()),
            license: optional(LICENSE)?,
            component: format!("rpm:{source}"),
            paths: Vec::new(),
            build_time: match self.int32_array(BUILDTIME)?.as_deref() {
                Some(&[t, ..]) => Some(i64::from(t)),
                _ => None,
            },
            changelog_times: self
                .int32_array(CHANGELOGTIME)?
                .unwrap_or_default()
                .into_iter()
                .map(i64::from)
                .collect(),
        })
    }

    /// `[EPOCH:]VERSION-RELEASE`, as `rpm -q` prints it; `None` without a
    /// VERSION (`gpg-pubkey` has one, some synthetic headers do not).
    fn version(&self) -> Parsed<Option<String>> {
        fn utf8(b: &[u8], tag: Tag) -> Parsed<&str> {
            std::str::from_utf8(b).map_err(|_| format!("{} is not UTF-8", tag.1))
        }
        let Some(version) = self.string(VERSION)? else {
            return Ok(None);
        };
        let mut out = String::new();
        if let Some(&[epoch]) = self.int32_array(EPOCH)?.as_deref() {
            out.push_str(&format!("{epoch}:"));
        }
        out.push_str(utf8(version, VERSION)?);
        if let Some(release) = self.string(RELEASE)? {
            out.push('-');
            out.push_str(utf8(release, RELEASE)?);
        }
        Ok(Some(out))
    }

    /// The paths the package lists, as written (absolute).
    fn paths(&self) -> Parsed<Vec<Vec<u8>>> {
        let Some(basenames) = self.string_array(BASENAMES)? else {
            let old = self.string_array(OLDFILENAMES)?.unwrap_or_default();
            return Ok(old.into_iter().map(<[u8]>::to_vec).collect());
        };
        let dirnames = self
            .string_array(DIRNAMES)?
            .ok_or("BASENAMES without DIRNAMES")?;
        let indexes = self
            .int32_array(DIRINDEXES)?
            .ok_or("BASENAMES without DIRINDEXES")?;
        if indexes.len() != basenames.len() {
            return Err(format!(
                "{} BASENAMES but {} DIRINDEXES",
                basenames.len(),
                indexes.len()
            ));
        }
        basenames
            .iter()
            .zip(indexes)
            .map(|(base, i)| {
                let dir = dirnames.get(i as usize).ok_or_else(|| {
                    format!("DIRINDEXES names directory {i} of {}", dirnames.len())
                })?;
                Ok([*dir, *base].concat())
            })
            .collect()
    }
}

/// `count` NUL-terminated strings from `offset` in `data`.
fn strings(data: &[u8], offset: usize, count: usize, tag: Tag) -> Parsed<Vec<&[u8]>> {
    let mut rest = &data[offset..];
    // Each string takes at least its NUL: a larger count cannot be right.
    if count > rest.len() {
        return Err(format!("{} has {count} strings, past the data", tag.1));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("{} has an unterminated string", tag.1))?;
        out.push(&rest[..end]);
        rest = &rest[end + 1..];
    }
    Ok(out)
}

/// The name in a source rpm's file name, `<name>-<version>-<release>.src.rpm`.
fn source_name(rpm: &[u8]) -> Parsed<&[u8]> {
    let bad = || {
        format!(
            "SOURCERPM {:?} is not <name>-<version>-<release>.src.rpm",
            String::from_utf8_lossy(rpm)
        )
    };
    let stem = rpm
        .strip_suffix(b".src.rpm")
        .or_else(|| rpm.strip_suffix(b".nosrc.rpm"))
        .ok_or_else(bad)?;
    let mut fields = stem.rsplitn(3, |&b| b == b'-');
    match (fields.next(), fields.next(), fields.next()) {
        (Some(_release), Some(_version), Some(name)) if !name.is_empty() => Ok(name),
        _ => Err(bad()),
    }
}

/// A big-endian `u32` at the start of `b` (at least 4 bytes).
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::super::read_package_databases;
    use super::super::sqlite::tests::{blob_literal, sqlite3};
    use super::super::test_support::TempRoot;
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// The value of a header entry, for [`header`].
    enum Data<'a> {
        Str(&'a str),
        Strs(&'a [&'a str]),
        Ints(&'a [u32]),
    }
    use Data::{Ints, Str, Strs};

    /// A header blob as rpm writes one: a region entry (tag 63) first, whose
    /// trailer ends the data, then `entries`.
    fn header(entries: &[(Tag, Data)]) -> Vec<u8> {
        let mut index = vec![[63, 7, 0, 16]];
        let mut data = Vec::new();
        for (tag, value) in entries {
            match value {
                Str(s) => {
                    index.push([tag.0, STRING, data.len() as u32, 1]);
                    data.extend_from_slice(s.as_bytes());
                    data.push(0);
                }
                Strs(list) => {
                    index.push([tag.0, STRING_ARRAY, data.len() as u32, list.len() as u32]);
                    for s in *list {
                        data.extend_from_slice(s.as_bytes());
                        data.push(0);
                    }
                }
                Ints(values) => {
                    data.resize(data.len().next_multiple_of(4), 0);
                    index.push([tag.0, INT32, data.len() as u32, values.len() as u32]);
                    data.extend(values.iter().flat_map(|v| v.to_be_bytes()));
                }
            }
        }
        index[0][2] = data.len() as u32;
        let trailer = [63, 7, (-16 * index.len() as i32) as u32, 16];
        data.extend(trailer.iter().flat_map(|v| v.to_be_bytes()));
        raw(&index, &data)
    }

    /// A header blob from its index and data, lengths as given.
    fn raw(index: &[[u32; 4]], data: &[u8]) -> Vec<u8> {
        let mut blob = Vec::new();
        blob.extend((index.len() as u32).to_be_bytes());
        blob.extend((data.len() as u32).to_be_bytes());
        blob.extend(index.iter().flatten().flat_map(|v| v.to_be_bytes()));
        blob.extend_from_slice(data);
        blob
    }

    /// Component and paths of a header blob.
    fn decode(blob: &[u8]) -> Parsed<(String, Vec<String>)> {
        let h = Header::parse(blob)?;
        let paths = h.paths()?;
        let paths = paths
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        Ok((h.component()?, paths.collect()))
    }

    fn bash() -> Vec<u8> {
        header(&[
            (NAME, Str("bash")),
            (SOURCERPM, Str("bash-5.2.15-3.fc39.src.rpm")),
            (BASENAMES, Strs(&["bash", "bashrc", "sh", "bash"])),
            (DIRINDEXES, Ints(&[0, 1, 0, 2])),
            (DIRNAMES, Strs(&["/usr/bin/", "/etc/", "/usr/share/doc/"])),
        ])
    }

    #[test]
    fn header_blobs_give_component_and_paths() {
        let (component, paths) = decode(&bash()).unwrap();
        assert_eq!(component, "rpm:bash");
        assert_eq!(
            paths,
            [
                "/usr/bin/bash",
                "/etc/bashrc",
                "/usr/bin/sh",
                "/usr/share/doc/bash"
            ]
        );

        // A subpackage is named after its source; gpg-pubkey has no source
        // and no files; old headers list whole paths.
        let doc = header(&[
            (NAME, Str("bash-doc")),
            (SOURCERPM, Str("bash-5.2.15-3.fc39.src.rpm")),
        ]);
        assert_eq!(decode(&doc).unwrap(), ("rpm:bash".into(), vec![]));
        let key = header(&[(NAME, Str("gpg-pubkey"))]);
        assert_eq!(decode(&key).unwrap(), ("rpm:gpg-pubkey".into(), vec![]));
        let old = header(&[
            (NAME, Str("old")),
            (OLDFILENAMES, Strs(&["/etc/old.conf", "/usr/lib/old"])),
        ]);
        assert_eq!(
            decode(&old).unwrap(),
            (
                "rpm:old".into(),
                vec!["/etc/old.conf".into(), "/usr/lib/old".into()]
            )
        );
    }

    #[test]
    fn source_names() {
        let name =
            |s: &str| source_name(s.as_bytes()).map(|n| String::from_utf8_lossy(n).into_owned());
        assert_eq!(name("bash-5.2.15-3.fc39.src.rpm").unwrap(), "bash");
        assert_eq!(
            name("python3.12-3.12.1-1.fc39.src.rpm").unwrap(),
            "python3.12"
        );
        assert_eq!(
            name("xorg-x11-server-21.1.9-1.el9.src.rpm").unwrap(),
            "xorg-x11-server"
        );
        assert_eq!(name("kernel-rt-6.6.1-2.nosrc.rpm").unwrap(), "kernel-rt");
        for bad in [
            "bash-5.2.15-3.fc39.rpm",
            "bash-5.2.15.src.rpm",
            "-1-2.src.rpm",
            ".src.rpm",
            "",
        ] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    /// Headers broken in their framing or their NAME and SOURCERPM tags,
    /// with what the error must say.
    fn malformed_framing() -> Vec<(Vec<u8>, &'static str)> {
        let name = [NAME.0, STRING, 0, 1];
        vec![
            (vec![0, 0, 0], "truncated"),
            (raw(&[name], b"x\0")[..20].to_vec(), "is not 20 bytes long"),
            (
                [raw(&[name], b"x\0"), vec![0]].concat(),
                "is not 27 bytes long",
            ),
            (raw(&[[NAME.0, STRING, 9, 1]], b"bash\0"), "past the data"),
            (raw(&[name], b"bash"), "unterminated"),
            (raw(&[[NAME.0, STRING, 0, 2]], b"a\0b\0"), "count 2"),
            (raw(&[[NAME.0, STRING_ARRAY, 0, 1]], b"a\0"), "has type 8"),
            (
                raw(&[[SOURCERPM.0, STRING, 0, 1]], b"a-1-1.src.rpm\0"),
                "no NAME",
            ),
            (raw(&[name], b"\xff\0"), "not UTF-8"),
        ]
    }

    /// Headers whose file lists are broken, with what the error must say.
    fn malformed_file_lists() -> Vec<(Vec<u8>, &'static str)> {
        let name = [NAME.0, STRING, 0, 1];
        vec![
            (
                raw(&[name, [OLDFILENAMES.0, STRING_ARRAY, 0, 1000]], b"a\0/b\0"),
                "1000 strings",
            ),
            (
                raw(&[name, [OLDFILENAMES.0, STRING_ARRAY, 0, 3]], b"a\0/b\0"),
                "unterminated",
            ),
            (
                raw(&[name, [BASENAMES.0, STRING_ARRAY, 0, 1]], b"a\0"),
                "without DIRNAMES",
            ),
            (
                raw(
                    &[
                        [NAME.0, STRING, 0, 1],
                        [DIRNAMES.0, 8, 0, 1],
                        [BASENAMES.0, 8, 0, 1],
                    ],
                    b"a\0",
                ),
                "without DIRINDEXES",
            ),
            (
                raw(
                    &[
                        name,
                        [DIRNAMES.0, 8, 0, 1],
                        [BASENAMES.0, 8, 0, 1],
                        [DIRINDEXES.0, INT32, 4, 2],
                    ],
                    b"a\0\0\0\0\0\0\0",
                ),
                "has 2 values",
            ),
            (
                raw(
                    &[
                        name,
                        [DIRNAMES.0, 8, 0, 1],
                        [BASENAMES.0, 8, 0, 1],
                        [DIRINDEXES.0, INT32, 4, 0x4000_0001],
                    ],
                    b"a\0\0\0\0\0\0\0",
                ),
                "past the data",
            ),
            (
                raw(
                    &[
                        name,
                        [DIRNAMES.0, 8, 0, 1],
                        [BASENAMES.0, 8, 0, 1],
                        [DIRINDEXES.0, INT32, 4, 1],
                    ],
                    b"a\0\0\0\0\0\0\x05",
                ),
                "names directory 5 of 1",
            ),
            (
                raw(
                    &[
                        name,
                        [DIRNAMES.0, 8, 0, 1],
                        [BASENAMES.0, 8, 0, 2],
                        [DIRINDEXES.0, INT32, 4, 1],
                    ],
                    b"a\0\0\0\0\0\0\0",
                ),
                "2 BASENAMES but 1 DIRINDEXES",
            ),
        ]
    }

    #[test]
    fn malformed_headers_are_errors() {
        let cases = [malformed_framing(), malformed_file_lists()].concat();
        assert_eq!(cases.len(), 17);
        for (blob, expected) in cases {
            let err = decode(&blob).unwrap_err();
            assert!(err.contains(expected), "{err:?} does not say {expected:?}");
        }
    }

    #[test]
    fn an_odd_source_rpm_name_falls_back_to_the_package_name() {
        let name = [NAME.0, STRING, 0, 1];
        let odd = raw(&[name, [SOURCERPM.0, STRING, 2, 1]], b"a\0a.src.rpm\0");
        assert_eq!(decode(&odd).unwrap().0, "rpm:a");
    }

    #[test]
    fn damaged_headers_never_panic() {
        // Every truncation is refused, any flip is survived.
        let good = bash();
        for len in 0..good.len() {
            assert!(decode(&good[..len]).is_err());
        }
        for pos in 0..good.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = good.clone();
                damaged[pos] ^= flip;
                let _ = decode(&damaged);
            }
        }
    }

    /// Writes an rpm sqlite database holding `blobs` to `rel` under `root`.
    fn rpmdb(root: &TempRoot, rel: &str, blobs: &[Vec<u8>]) {
        let mut sql = String::from(
            "PRAGMA journal_mode=WAL;\n\
             CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);\n\
             CREATE TABLE IF NOT EXISTS 'Name' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL);\n",
        );
        for blob in blobs {
            sql.push_str(&format!(
                "INSERT INTO Packages(blob) VALUES ({});\n",
                blob_literal(blob)
            ));
        }
        root.mkdir(Path::new(rel).parent().unwrap().to_str().unwrap());
        let _ = std::fs::remove_file(root.path().join(rel));
        sqlite3(&root.path().join(rel), &sql);
    }

    const SYSIMAGE: &str = "usr/lib/sysimage/rpm/rpmdb.sqlite";
    const VAR: &str = "var/lib/rpm/rpmdb.sqlite";

    #[test]
    fn packages_carry_epoch_version_release_arch_and_licence() {
        let root = TempRoot::new("rpm-packages");
        let vim = header(&[
            (NAME, Str("vim-minimal")),
            (VERSION, Str("9.1.0")),
            (RELEASE, Str("1.fc40")),
            (EPOCH, Ints(&[2])),
            (ARCH, Str("x86_64")),
            (LICENSE, Str("Vim AND MIT")),
            (SOURCERPM, Str("vim-9.1.0-1.fc40.src.rpm")),
            (BASENAMES, Strs(&["vi"])),
            (DIRINDEXES, Ints(&[0])),
            (DIRNAMES, Strs(&["/usr/bin/"])),
        ]);
        rpmdb(
            &root,
            SYSIMAGE,
            &[vim, header(&[(NAME, Str("gpg-pubkey"))])],
        );
        let packages = root.packages();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "gpg-pubkey");
        assert_eq!(packages[0].version, None);
        let vim = &packages[1];
        assert_eq!(vim.version.as_deref(), Some("2:9.1.0-1.fc40"));
        assert_eq!(vim.architecture.as_deref(), Some("x86_64"));
        assert_eq!(vim.license.as_deref(), Some("Vim AND MIT"));
        assert_eq!(vim.source.as_deref(), Some("vim"));
        assert_eq!(vim.paths, [Path::new("usr/bin/vi")]);
    }

    #[test]
    fn sqlite_databases_in_either_place() {
        let root = TempRoot::new("rpm");
        let tools = header(&[
            (NAME, Str("bash-tools")),
            (SOURCERPM, Str("bash-5.2.15-3.fc39.src.rpm")),
            (BASENAMES, Strs(&["bashbug"])),
            (DIRINDEXES, Ints(&[0])),
            (DIRNAMES, Strs(&["/bin/"])),
        ]);
        rpmdb(
            &root,
            SYSIMAGE,
            &[bash(), header(&[(NAME, Str("gpg-pubkey"))]), tools],
        );
        root.mkdir("usr/bin");
        root.symlink("bin", "usr/bin");
        root.symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm");
        let o = root.read_both();
        let owner = |p: &str| o.owner(Path::new(p));
        assert_eq!(owner("usr/bin/bash"), Some("rpm:bash"));
        assert_eq!(owner("usr/bin/sh"), Some("rpm:bash"));
        assert_eq!(owner("etc/bashrc"), Some("rpm:bash"));
        assert_eq!(owner("usr/share/doc/bash"), Some("rpm:bash"));
        // Listed as /bin/bashbug: bin is a link to usr/bin.
        assert_eq!(owner("usr/bin/bashbug"), Some("rpm:bash"));
        assert_eq!(o.len(), 5);
        assert_eq!(o.components().collect::<Vec<_>>(), ["rpm:bash"]);

        // RHEL 9: var/lib/rpm only.
        let root = TempRoot::new("rpm-var");
        rpmdb(&root, VAR, &[bash()]);
        let o = root.read_both();
        assert_eq!(o.owner(Path::new("etc/bashrc")), Some("rpm:bash"));

        // Two distinct databases are both read.
        let other = header(&[
            (NAME, Str("zsh")),
            (BASENAMES, Strs(&["zsh"])),
            (DIRINDEXES, Ints(&[0])),
            (DIRNAMES, Strs(&["/usr/bin/"])),
        ]);
        rpmdb(&root, SYSIMAGE, &[other]);
        let o = root.read_both();
        assert_eq!(o.components().collect::<Vec<_>>(), ["rpm:bash", "rpm:zsh"]);
    }

    #[test]
    fn other_backends_are_refused() {
        for (rel, format) in [
            ("var/lib/rpm/Packages", "Berkeley DB"),
            ("usr/lib/sysimage/rpm/Packages.db", "ndb"),
        ] {
            let root = TempRoot::new("rpm-bdb");
            root.write(rel, b"\0\0\0\0\x61\x15\x06\0 not read");
            let err = read_package_databases(root.path()).unwrap_err();
            assert!(
                matches!(&err, Error::Io { path, source }
                    if path == &root.path().join(rel)
                        && source.kind() == io::ErrorKind::Unsupported
                        && source.to_string().contains(format)),
                "{err:?}"
            );
            // Left over beside a sqlite database: not looked at.
            rpmdb(&root, SYSIMAGE, &[bash()]);
            assert_eq!(root.read_both().len(), 4);
        }
    }

    #[test]
    fn broken_databases_name_the_file() {
        let root = TempRoot::new("rpm-broken");
        let db = root.path().join(SYSIMAGE);
        rpmdb(&root, SYSIMAGE, &[bash(), bash()[..40].to_vec()]);
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::PackageDb { path, line: 2, message }
                if path == &db && message.contains("package 2")),
            "{err:?}"
        );

        let long = format!("/{}", "x".repeat(5000));
        rpmdb(
            &root,
            SYSIMAGE,
            &[header(&[(NAME, Str("a")), (OLDFILENAMES, Strs(&[&long]))])],
        );
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::PackageDb { path, line: 1, .. } if path == &db),
            "{err:?}"
        );

        std::fs::remove_file(&db).unwrap();
        sqlite3(&db, "CREATE TABLE Other(a);\n");
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, .. } if path == &db)
                && err.to_string().contains("no Packages table"),
            "{err:?}"
        );

        std::fs::write(&db, b"not a database").unwrap();
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, .. } if path == &db),
            "{err:?}"
        );
    }

    /// Runs `program` with `args`, failing with how to install it.
    fn run(program: &str, args: &[&str]) {
        let output = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}): install it with `apt-get install rpm`")
            });
        assert!(
            output.status.success(),
            "{program} {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    const SPEC: &str = "\
Name: hello
Version: 1.0
Release: 1
Summary: chunkah test package
License: MIT
BuildArch: noarch

%description
A test package.

%package tools
Summary: chunkah test subpackage

%description tools
A test subpackage.

%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/bin %{buildroot}/etc
echo hello > %{buildroot}/usr/bin/hello
echo conf > %{buildroot}/etc/hello.conf
echo tool > %{buildroot}/usr/bin/hello-tool
echo legacy > %{buildroot}/bin/hello-legacy
mkdir -p %{buildroot}/usr/share/hello
for i in $(seq 300); do echo $i > %{buildroot}/usr/share/hello/data-$i; done

%files
/usr/bin/hello
%config /etc/hello.conf

%files tools
/usr/bin/hello-tool
/bin/hello-legacy
/usr/share/hello
";

    #[test]
    fn database_written_by_rpm() {
        let work = TempRoot::new("rpm-real");
        work.write("hello.spec", SPEC);
        let path = |rel: &str| work.path().join(rel).to_str().unwrap().to_owned();
        run(
            "rpmbuild",
            &[
                "-bb",
                "--define",
                &format!("_topdir {}", path("top")),
                "--define",
                &format!("_tmppath {}", path("tmp")),
                &path("hello.spec"),
            ],
        );
        // A Fedora-like root: usrmerged, the database under usr/lib/sysimage
        // and var/lib/rpm a link to it.
        work.mkdir("root/usr/bin");
        work.symlink("root/bin", "usr/bin");
        work.symlink("root/var/lib/rpm", "../../usr/lib/sysimage/rpm");
        let root = path("root");
        let rpm = |args: &[&str]| {
            let mut all = vec!["--root", &root, "--dbpath", "/usr/lib/sysimage/rpm"];
            // Debian's rpm defaults to sqlite too; older ones may not.
            all.extend(["--define", "_db_backend sqlite"]);
            all.extend_from_slice(args);
            run("rpm", &all);
        };
        rpm(&["--initdb"]);
        rpm(&[
            "-i",
            "--nodeps",
            "--justdb",
            &path("top/RPMS/noarch/hello-1.0-1.noarch.rpm"),
            &path("top/RPMS/noarch/hello-tools-1.0-1.noarch.rpm"),
        ]);
        // hello-tools' header, with its 300 data files, spills over
        // several pages.
        let db = std::fs::read(Path::new(&root).join(SYSIMAGE)).unwrap();
        let page_size = usize::from(u16::from_be_bytes([db[16], db[17]]));
        let sql = "SELECT max(length(blob)) FROM Packages";
        let output = Command::new("sqlite3")
            .arg(Path::new(&root).join(SYSIMAGE))
            .arg(sql)
            .output()
            .expect("cannot run sqlite3: install it with `apt-get install sqlite3`");
        let longest: usize = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap();
        assert!(
            longest > 4 * page_size,
            "{longest} bytes, pages of {page_size}"
        );

        let o = read_package_databases(Path::new(&root)).unwrap();
        let owner = |p: &str| o.owner(Path::new(p));
        assert_eq!(owner("usr/bin/hello"), Some("rpm:hello"));
        assert_eq!(owner("etc/hello.conf"), Some("rpm:hello"));
        // From hello-tools, built from hello-1.0-1.src.rpm.
        assert_eq!(owner("usr/bin/hello-tool"), Some("rpm:hello"));
        assert_eq!(owner("usr/bin/hello-legacy"), Some("rpm:hello"));
        assert_eq!(owner("usr/share/hello/data-300"), Some("rpm:hello"));
        assert_eq!(o.len(), 4 + 1 + 300);
        assert_eq!(o.components().collect::<Vec<_>>(), ["rpm:hello"]);

        // The packages, as `rpm -qa` lists them.
        let output = Command::new("rpm")
            .args(["--root", &root, "--dbpath", "/usr/lib/sysimage/rpm", "-qa"])
            .args([
                "--queryformat",
                "%{NAME} %{VERSION}-%{RELEASE} %{ARCH} %{LICENSE}\\n",
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        let mut listed: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        listed.sort();
        let read: Vec<String> = o
            .packages()
            .iter()
            .map(|p| {
                let field = |f: &Option<String>| f.clone().unwrap_or_default();
                let (v, a, l) = (field(&p.version), field(&p.architecture), field(&p.license));
                format!("{} {v} {a} {l}", p.name)
            })
            .collect();
        assert_eq!(read, listed);
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(o.warnings().is_empty(), "{:?}", o.warnings());
    }
}
