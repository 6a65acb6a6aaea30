//! A deterministic tar writer: ustar headers, PAX records where ustar falls short.
//!
//! Written by hand rather than with the `tar` crate so that every byte is
//! chosen here: no user or group names, no access times, PAX records sorted by
//! key, one fixed name for PAX headers. PAX records carry what ustar cannot:
//! long paths and link targets, large ids, sizes and times, and extended
//! attributes as `SCHILY.xattr.NAME` (binary values kept as they are).

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use crate::walk::{Entry, EntryKind};

const BLOCK: usize = 512;

/// Largest value of an 8-byte octal field (uid, gid, mode).
const MAX_OCTAL_8: u64 = 0o7_777_777;
/// Largest value of a 12-byte octal field (size, mtime).
const MAX_OCTAL_12: u64 = 0o77_777_777_777;

/// Writes tar entries to `W`, counting the bytes written.
pub struct TarWriter<W: Write> {
    out: W,
    position: u64,
}

impl<W: Write> TarWriter<W> {
    /// A writer at offset 0 of `out`.
    pub fn new(out: W) -> Self {
        TarWriter { out, position: 0 }
    }

    /// Bytes written so far (always a multiple of 512 between entries).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The sink, for calls that do not write to it (ending a zstd frame):
    /// bytes written through it would not be counted.
    pub fn sink_mut(&mut self) -> &mut W {
        &mut self.out
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Writes the header (and any PAX header) of `entry`, with `mtime` as
    /// its modification time. Its path in the archive is its path (`.` for
    /// the root), directories with a trailing `/`. For a regular file the
    /// caller then writes exactly `size` bytes of content through
    /// [`TarWriter::content`].
    pub fn header(&mut self, entry: &Entry, mtime: i64) -> io::Result<()> {
        let name = archive_name(entry);
        let kind = KindFields::of(&entry.kind);
        let mut pax = overflow_records(entry, &name, &kind, mtime);
        pax.extend(xattr_records(entry));
        if !pax.is_empty() {
            self.pax_header(pax)?;
        }
        let header = Ustar {
            name: &name[..name.len().min(100)],
            typeflag: kind.typeflag,
            size: kind.size.min(MAX_OCTAL_12),
            mode: u64::from(entry.mode),
            uid: u64::from(entry.uid).min(MAX_OCTAL_8),
            gid: u64::from(entry.gid).min(MAX_OCTAL_8),
            mtime: mtime.clamp(0, MAX_OCTAL_12 as i64) as u64,
            link: &kind.link[..kind.link.len().min(100)],
            device: kind.device,
        };
        self.write(&header.block())
    }

    /// Writes a PAX extended header holding `records` (sorted here).
    fn pax_header(&mut self, mut records: Vec<PaxRecord>) -> io::Result<()> {
        records.sort();
        let body = pax_records(&records);
        let header = Ustar {
            name: b"././@PaxHeader",
            typeflag: b'x',
            size: body.len() as u64,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            link: b"",
            device: (0, 0),
        };
        self.write(&header.block())?;
        self.write(&body)?;
        self.pad()
    }

    /// Writes content bytes of the current regular file.
    pub fn content(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(bytes)
    }

    /// Pads the last content to a whole block.
    pub fn pad(&mut self) -> io::Result<()> {
        let rem = (self.position % BLOCK as u64) as usize;
        if rem != 0 {
            self.write(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.write(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// A PAX record: key and value.
type PaxRecord = (Vec<u8>, Vec<u8>);

/// The path of `entry` in the archive: `.` for the root, a trailing `/`
/// for a directory.
fn archive_name(entry: &Entry) -> Vec<u8> {
    let mut name = entry.path.as_os_str().as_bytes().to_vec();
    if name.is_empty() {
        // The root directory itself.
        name.push(b'.');
    }
    if entry.is_dir() {
        name.push(b'/');
    }
    name
}

/// What a header says of an entry's kind.
struct KindFields<'a> {
    typeflag: u8,
    /// Content size (0 but for a regular file).
    size: u64,
    /// Link target (empty but for links).
    link: &'a [u8],
    /// Device major and minor (0 but for devices).
    device: (u32, u32),
}

impl<'a> KindFields<'a> {
    fn of(kind: &'a EntryKind) -> Self {
        let (typeflag, size, link, device): (u8, u64, &[u8], (u32, u32)) = match kind {
            EntryKind::Regular { size } => (b'0', *size, b"", (0, 0)),
            EntryKind::HardLink { target } => (b'1', 0, target.as_os_str().as_bytes(), (0, 0)),
            EntryKind::Symlink { target } => (b'2', 0, target.as_os_str().as_bytes(), (0, 0)),
            EntryKind::CharDevice { major, minor } => (b'3', 0, b"", (*major, *minor)),
            EntryKind::BlockDevice { major, minor } => (b'4', 0, b"", (*major, *minor)),
            EntryKind::Directory => (b'5', 0, b"", (0, 0)),
            EntryKind::Fifo => (b'6', 0, b"", (0, 0)),
        };
        KindFields {
            typeflag,
            size,
            link,
            device,
        }
    }
}

/// PAX records for the fields ustar cannot hold: a path or link target
/// over 100 bytes, ids, size or mtime out of range.
fn overflow_records(
    entry: &Entry,
    name: &[u8],
    kind: &KindFields<'_>,
    mtime: i64,
) -> Vec<PaxRecord> {
    let mut pax: Vec<PaxRecord> = Vec::new();
    if name.len() > 100 {
        pax.push((b"path".to_vec(), name.to_vec()));
    }
    if kind.link.len() > 100 {
        pax.push((b"linkpath".to_vec(), kind.link.to_vec()));
    }
    if u64::from(entry.uid) > MAX_OCTAL_8 {
        pax.push((b"uid".to_vec(), entry.uid.to_string().into_bytes()));
    }
    if u64::from(entry.gid) > MAX_OCTAL_8 {
        pax.push((b"gid".to_vec(), entry.gid.to_string().into_bytes()));
    }
    if kind.size > MAX_OCTAL_12 {
        pax.push((b"size".to_vec(), kind.size.to_string().into_bytes()));
    }
    if mtime < 0 || mtime as u64 > MAX_OCTAL_12 {
        pax.push((b"mtime".to_vec(), mtime.to_string().into_bytes()));
    }
    pax
}

/// PAX records for the extended attributes of `entry`: each as
/// `SCHILY.xattr.NAME`, and POSIX ACLs also as text, as GNU tar and star
/// write them (some unpackers, podman's, set ACLs from these records only).
fn xattr_records(entry: &Entry) -> Vec<PaxRecord> {
    let mut pax: Vec<PaxRecord> = Vec::new();
    for (key, value) in &entry.xattrs {
        let mut k = b"SCHILY.xattr.".to_vec();
        k.extend_from_slice(key.as_bytes());
        pax.push((k, value.clone()));
        let text_key: &[u8] = match key.as_bytes() {
            b"system.posix_acl_access" => b"SCHILY.acl.access",
            b"system.posix_acl_default" => b"SCHILY.acl.default",
            _ => continue,
        };
        if let Some(text) = crate::walk::acl::to_text(value) {
            pax.push((text_key.to_vec(), text));
        }
    }
    pax
}

/// PAX records `"LEN KEY=VALUE\n"`, where LEN counts the whole record.
fn pax_records(records: &[PaxRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// The fields of a ustar header block, each within its field's range.
struct Ustar<'a> {
    name: &'a [u8],
    typeflag: u8,
    size: u64,
    mode: u64,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: &'a [u8],
    device: (u32, u32),
}

impl Ustar<'_> {
    /// The header block, checksum included.
    fn block(&self) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..self.name.len()].copy_from_slice(self.name);
        octal(&mut h[100..108], self.mode);
        octal(&mut h[108..116], self.uid);
        octal(&mut h[116..124], self.gid);
        octal(&mut h[124..136], self.size);
        octal(&mut h[136..148], self.mtime);
        h[156] = self.typeflag;
        h[157..157 + self.link.len()].copy_from_slice(self.link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], u64::from(self.device.0));
        octal(&mut h[337..345], u64::from(self.device.1));
        checksum(&mut h);
        h
    }
}

fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::io::Read;

    fn entry(path: &[u8], kind: EntryKind) -> Entry {
        Entry {
            path: std::path::Path::new(std::ffi::OsStr::from_bytes(path)).into(),
            kind,
            mode: 0o4755,
            uid: 3_000_000,
            gid: 7,
            mtime: 1_700_000_000,
            xattrs: vec![(
                OsString::from("security.capability"),
                vec![1, 0, 0, 2, 0x20, 0, 0, 0],
            )]
            .into(),
        }
    }

    #[test]
    fn the_tar_crate_reads_back_every_field() {
        let long = [b'x'; 150];
        let mut path = b"dir/".to_vec();
        path.extend_from_slice(&long);
        let entries = vec![
            entry(b"dir", EntryKind::Directory),
            entry(&path, EntryKind::Regular { size: 5 }),
            entry(
                b"dir/\xffname",
                EntryKind::Symlink {
                    target: std::path::Path::new(std::str::from_utf8(&long).unwrap()).into(),
                },
            ),
            entry(
                b"dir/hard",
                EntryKind::HardLink {
                    target: std::path::Path::new("dir/x").into(),
                },
            ),
            entry(b"dev/null", EntryKind::CharDevice { major: 1, minor: 3 }),
            entry(b"dev/sda", EntryKind::BlockDevice { major: 8, minor: 0 }),
            entry(b"fifo", EntryKind::Fifo),
        ];
        let mut w = TarWriter::new(Vec::new());
        for e in &entries {
            w.header(e, e.mtime).unwrap();
            if let EntryKind::Regular { .. } = e.kind {
                w.content(b"hello").unwrap();
                w.pad().unwrap();
            }
        }
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 512, 0);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = 0;
        for (got, e) in archive.entries().unwrap().zip(&entries) {
            let mut got = got.unwrap();
            let mut expected_path = e.path.as_os_str().as_bytes().to_vec();
            if e.is_dir() {
                expected_path.push(b'/');
            }
            assert_eq!(&got.path_bytes()[..], &expected_path[..]);
            let h = got.header().clone();
            assert_eq!(h.mode().unwrap(), 0o4755);
            // The tar crate applies the PAX uid over the clamped ustar field.
            assert_eq!(h.uid().unwrap(), 3_000_000);
            assert_eq!(
                pax_value(&mut got, b"uid").as_deref(),
                Some(&b"3000000"[..])
            );
            assert_eq!(h.gid().unwrap(), 7);
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            let caps = pax_value(&mut got, b"SCHILY.xattr.security.capability");
            assert_eq!(caps, Some(vec![1, 0, 0, 2, 0x20, 0, 0, 0]));
            assert_kind_reads_back(&mut got, &e.kind);
            seen += 1;
        }
        assert_eq!(seen, entries.len());
    }

    /// The value of the PAX record `key` of `entry`.
    fn pax_value(entry: &mut tar::Entry<'_, &[u8]>, key: &[u8]) -> Option<Vec<u8>> {
        entry
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|x| x.unwrap())
            .find(|x| x.key_bytes() == key)
            .map(|x| x.value_bytes().to_vec())
    }

    /// What `got` says of its kind is `kind`: content, link target, device.
    fn assert_kind_reads_back(got: &mut tar::Entry<'_, &[u8]>, kind: &EntryKind) {
        let h = got.header().clone();
        match kind {
            EntryKind::Regular { .. } => {
                let mut s = String::new();
                got.read_to_string(&mut s).unwrap();
                assert_eq!(s, "hello");
            }
            EntryKind::Symlink { target } | EntryKind::HardLink { target } => {
                assert_eq!(
                    &got.link_name_bytes().unwrap()[..],
                    target.as_os_str().as_bytes()
                );
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                assert_eq!(h.device_major().unwrap(), Some(*major));
                assert_eq!(h.device_minor().unwrap(), Some(*minor));
            }
            _ => {}
        }
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_records(&[(b"path".to_vec(), vec![b'a'; 95])]);
        assert_eq!(&r[..4], b"105 ");
        assert_eq!(r.len(), 105);
        let r = pax_records(&[(b"k".to_vec(), b"v".to_vec())]);
        assert_eq!(r, b"6 k=v\n");
    }
}
