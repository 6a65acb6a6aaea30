//! A read-only reader for SQLite database files: just enough to list the rows
//! of one table (rpm's `Packages`), with no C library.
//!
//! The facts relied on, from the file format description
//! (<https://www.sqlite.org/fileformat2.html>):
//!
//! - The file is a sequence of pages of one size, numbered from 1; page `n`
//!   starts at byte `(n - 1) * page_size`. The first 100 bytes of page 1 are
//!   the database header: the magic `SQLite format 3\0`, the page size (big
//!   endian `u16` at 16; a power of two from 512 to 32768, or 1 for 65536),
//!   the bytes reserved at the end of each page (at 20; the usable size `U` is
//!   the page size minus those, at least 480), the payload fractions 64, 32,
//!   32 (at 21..24), the text encoding (`u32` at 56; 1 is UTF-8).
//! - A table is a b-tree of pages keyed by rowid; page 1 is the root of
//!   `sqlite_schema`, whose rows are `(type, name, tbl_name, rootpage, sql)`.
//!   A b-tree page has a header (at byte 100 on page 1, else 0): a type byte
//!   (0x05 interior table page, 0x0D leaf table page), the cell count (`u16`
//!   at 3) and, on interior pages, the right-most child (`u32` at 8). The
//!   header (12 bytes interior, 8 leaf) is followed by one `u16` per cell:
//!   its offset from the start of the page.
//! - An interior cell is a child page (`u32`) and a rowid (varint); every
//!   rowid in the child is at most that key, and the rest are under the
//!   right-most child. A leaf cell is the payload size `P` (varint), the rowid
//!   (varint) and the payload. Only a prefix of a large payload is on the leaf:
//!   with `X = U - 35`, all of it if `P <= X`; otherwise, with
//!   `M = (U - 12) * 32 / 255 - 23` and `K = M + (P - M) % (U - 4)`, `K`
//!   bytes if `K <= X`, else `M`. The local part is then followed by the
//!   first overflow page (`u32`); each overflow page holds the next one
//!   (`u32`, 0 on the last) and `U - 4` bytes of the rest.
//! - A payload is a record: a header size (varint, counting itself), one
//!   serial type (varint) per column, then the values. Serial types: 0 NULL,
//!   1..=6 big-endian two's complement integers of 1, 2, 3, 4, 6 and 8 bytes,
//!   7 an IEEE 754 double, 8 and 9 the integers 0 and 1, even `N >= 12` a blob
//!   of `(N - 12) / 2` bytes, odd `N >= 13` text of `(N - 13) / 2` bytes.
//!   A column that is an alias of the rowid (`INTEGER PRIMARY KEY`) is stored
//!   as NULL; the rowid holds its value.
//! - A varint is 1 to 9 bytes, big endian: the first eight give 7 bits each
//!   and have the high bit set when another byte follows; a ninth gives 8.
//!
//! Only the main database file is read. In WAL mode, committed transactions
//! may still sit in `<file>-wal` until a checkpoint; rpm checkpoints when it
//! closes the database, so the WAL of a database at rest is empty and is not
//! read.
//!
//! Nothing here trusts the file: every offset and size is checked, a page
//! reached twice in one walk (a loop) is an error, b-trees deeper than
//! SQLite's own limit are refused, and the bytes assembled never exceed the
//! file's size.

use std::io;
use std::path::Path;

use crate::{Error, Result};

/// The largest database file read, in bytes (rpm databases are tens of MB).
pub(super) const MAX_FILE_BYTES: u64 = 1 << 30;

/// The deepest b-tree walked: SQLite's own cursors stop at 20 levels.
const MAX_DEPTH: usize = 20;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const HEADER_BYTES: usize = 100;
const INTERIOR_TABLE: u8 = 0x05;
const LEAF_TABLE: u8 = 0x0D;

/// A column value.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// A database file held in memory.
pub(super) struct Database<'a> {
    file: &'a Path,
    data: &'a [u8],
    page_size: usize,
    /// Bytes of each page that hold data: the page size less the reserved
    /// bytes at its end.
    usable: usize,
    /// Complete pages in the file.
    pages: u32,
}

impl<'a> Database<'a> {
    /// Checks the header of the database `data`, read from `file` (named in
    /// errors).
    pub(super) fn new(file: &'a Path, data: &'a [u8]) -> Result<Self> {
        let corrupt = |message: String| corrupt(file, message);
        if data.len() as u64 > MAX_FILE_BYTES {
            return Err(corrupt(format!(
                "larger than {MAX_FILE_BYTES} bytes, too large for a package database"
            )));
        }
        if data.len() < HEADER_BYTES || !data.starts_with(MAGIC) {
            return Err(corrupt("no SQLite 3 header".into()));
        }
        let page_size = match be16(&data[16..]) {
            1 => 65536,
            n if n.is_power_of_two() && n >= 512 => usize::from(n),
            n => return Err(corrupt(format!("invalid page size {n}"))),
        };
        // The read version: 1 rollback journal, 2 WAL. SQLite itself refuses
        // to read a later one.
        if !matches!(data[19], 1 | 2) {
            return Err(corrupt(format!("unknown file format version {}", data[19])));
        }
        let usable = page_size - usize::from(data[20]);
        if usable < 480 {
            return Err(corrupt(format!("usable page size {usable} below 480")));
        }
        if data[21..24] != [64, 32, 32] {
            return Err(corrupt("invalid payload fractions".into()));
        }
        let encoding = be32(&data[56..]);
        if encoding != 1 {
            return Err(corrupt(format!(
                "text encoding {encoding} is not UTF-8 (1)"
            )));
        }
        // At most 2^30 / 512 = 2^21 pages: the file size was checked.
        let pages = (data.len() / page_size) as u32;
        if pages == 0 {
            return Err(corrupt("truncated inside page 1".into()));
        }
        Ok(Database {
            file,
            data,
            page_size,
            usable,
            pages,
        })
    }

    /// The root page of the table called `name` (ASCII letters compared
    /// without case, as SQL does), or `None` if the schema has no such table.
    pub(super) fn table_root(&self, name: &str) -> Result<Option<u32>> {
        let mut root = None;
        self.for_each_row(1, &mut |_, values| {
            let is_table = matches!(values.first(), Some(Value::Text(t)) if t == b"table");
            let named = matches!(values.get(1), Some(Value::Text(n)) if n.eq_ignore_ascii_case(name.as_bytes()));
            if is_table && named && root.is_none() {
                match values.get(3) {
                    Some(&Value::Integer(page)) if page > 0 && page <= i64::from(self.pages) => {
                        root = Some(page as u32)
                    }
                    other => {
                        return Err(self.corrupt(format!(
                            "table {name} has root page {other:?}, not a page of the file"
                        )))
                    }
                }
            }
            Ok(())
        })?;
        Ok(root)
    }

    /// Calls `f` with the rowid and the column values of each row of the
    /// table whose b-tree starts at page `root`, in rowid order.
    pub(super) fn for_each_row(
        &self,
        root: u32,
        f: &mut dyn FnMut(i64, Vec<Value>) -> Result<()>,
    ) -> Result<()> {
        let mut visited = vec![false; self.pages as usize + 1];
        // Page 1 holds the database header: it is only ever the schema root.
        visited[1] = root != 1;
        self.walk(root, 0, &mut visited, f)
    }

    fn walk(
        &self,
        number: u32,
        depth: usize,
        visited: &mut [bool],
        f: &mut dyn FnMut(i64, Vec<Value>) -> Result<()>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.corrupt(format!("b-tree deeper than {MAX_DEPTH} levels")));
        }
        let page = self.page(number, visited)?;
        let start = if number == 1 { HEADER_BYTES } else { 0 };
        let corrupt = |message: &str| self.corrupt(format!("page {number}: {message}"));
        let interior = match page[start] {
            INTERIOR_TABLE => true,
            LEAF_TABLE => false,
            other => {
                return Err(corrupt(&format!(
                    "type {other:#04x} is not a table b-tree page"
                )))
            }
        };
        let pointers = start + if interior { 12 } else { 8 };
        let cells = usize::from(be16(&page[start + 3..]));
        let cells_end = pointers + 2 * cells;
        if cells_end > page.len() {
            return Err(corrupt(&format!("{cells} cells do not fit")));
        }
        for i in 0..cells {
            let offset = usize::from(be16(&page[pointers + 2 * i..]));
            if offset < cells_end || offset >= page.len() {
                return Err(corrupt(&format!(
                    "cell {i} at offset {offset}, out of range"
                )));
            }
            let cell = &page[offset..];
            if interior {
                let child = cell
                    .get(..4)
                    .ok_or_else(|| corrupt(&format!("cell {i} runs past the page")))?;
                self.walk(be32(child), depth + 1, visited, f)?;
                continue;
            }
            let (size, a) = varint(cell).ok_or_else(|| corrupt("truncated payload size"))?;
            let (rowid, b) = varint(&cell[a..]).ok_or_else(|| corrupt("truncated rowid"))?;
            let payload = self.payload(number, &cell[a + b..], size, visited)?;
            let values =
                record(&payload).map_err(|m| corrupt(&format!("row {}: {m}", rowid as i64)))?;
            f(rowid as i64, values)?;
        }
        if interior {
            self.walk(be32(&page[start + 8..]), depth + 1, visited, f)?;
        }
        Ok(())
    }

    /// The payload of `size` bytes whose local part starts at `cell` on leaf
    /// page `number`, with its overflow pages.
    fn payload(
        &self,
        number: u32,
        cell: &[u8],
        size: u64,
        visited: &mut [bool],
    ) -> Result<Vec<u8>> {
        let corrupt = |message: String| self.corrupt(format!("page {number}: {message}"));
        if size > self.data.len() as u64 {
            return Err(corrupt(format!(
                "payload of {size} bytes is larger than the file"
            )));
        }
        let size = size as usize;
        let local = local_payload_bytes(self.usable, size);
        let here = cell
            .get(..local)
            .ok_or_else(|| corrupt("payload runs past the page".into()))?;
        if local == size {
            return Ok(here.to_vec());
        }
        let mut next = cell
            .get(local..local + 4)
            .map(be32)
            .ok_or_else(|| corrupt("overflow page number runs past the page".into()))?;
        let mut payload = Vec::with_capacity(size);
        payload.extend_from_slice(here);
        while payload.len() < size {
            let page = self.page(next, visited)?;
            next = be32(page);
            let take = (size - payload.len()).min(self.usable - 4);
            payload.extend_from_slice(&page[4..4 + take]);
        }
        if next != 0 {
            return Err(corrupt(format!(
                "overflow chain goes on to page {next} after the whole payload"
            )));
        }
        Ok(payload)
    }

    /// The usable bytes of page `number`, which this walk must not have
    /// reached before.
    fn page(&self, number: u32, visited: &mut [bool]) -> Result<&'a [u8]> {
        if number == 0 || number > self.pages {
            return Err(self.corrupt(format!(
                "page {number} is out of range (the file has {} pages)",
                self.pages
            )));
        }
        if std::mem::replace(&mut visited[number as usize], true) {
            return Err(self.corrupt(format!("page {number} is used twice (a loop)")));
        }
        let start = (number as usize - 1) * self.page_size;
        Ok(&self.data[start..start + self.usable])
    }

    fn corrupt(&self, message: String) -> Error {
        corrupt(self.file, message)
    }
}

/// How many bytes of a payload of `size` bytes are on the leaf page, for a
/// usable page size `usable`.
fn local_payload_bytes(usable: usize, size: usize) -> usize {
    let max_local = usable - 35;
    if size <= max_local {
        return size;
    }
    let min_local = (usable - 12) * 32 / 255 - 23;
    let k = min_local + (size - min_local) % (usable - 4);
    if k <= max_local {
        k
    } else {
        min_local
    }
}

/// The column values of a record.
/// SQLite's own limit on the columns of a table (`SQLITE_MAX_COLUMN` can be
/// raised to 32767 at most): a record claiming more is not one SQLite wrote,
/// and is refused before it costs memory.
const MAX_COLUMNS: usize = 32767;

fn record(payload: &[u8]) -> std::result::Result<Vec<Value>, String> {
    let (header_len, mut pos) = varint(payload).ok_or("truncated record header")?;
    if header_len < pos as u64 || header_len > payload.len() as u64 {
        return Err(format!("record header of {header_len} bytes does not fit"));
    }
    let header = &payload[..header_len as usize];
    let mut body = header.len();
    let mut values = Vec::new();
    while pos < header.len() {
        if values.len() == MAX_COLUMNS {
            return Err(format!("a record of more than {MAX_COLUMNS} columns"));
        }
        let (serial, n) = varint(&header[pos..]).ok_or("truncated serial type")?;
        pos += n;
        let len = match serial {
            0 | 8 | 9 => 0,
            1..=4 => serial,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err(format!("reserved serial type {serial}")),
            _ => (serial - 12) / 2,
        };
        if len > (payload.len() - body) as u64 {
            return Err("value runs past the record".into());
        }
        let bytes = &payload[body..body + len as usize];
        body += len as usize;
        values.push(match serial {
            0 => Value::Null,
            1..=6 => Value::Integer(
                bytes
                    .iter()
                    .fold(if bytes[0] & 0x80 != 0 { -1 } else { 0 }, |v, &b| {
                        (v << 8) | i64::from(b)
                    }),
            ),
            7 => Value::Real(f64::from_bits(
                bytes.iter().fold(0, |v, &b| (v << 8) | u64::from(b)),
            )),
            8 => Value::Integer(0),
            9 => Value::Integer(1),
            s if s % 2 == 0 => Value::Blob(bytes.to_vec()),
            _ => Value::Text(bytes.to_vec()),
        });
    }
    Ok(values)
}

/// A varint at the start of `bytes` and its length; `None` if truncated.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        if i == 8 {
            return Some(((value << 8) | u64::from(b), 9));
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A big-endian `u16` at the start of `b` (at least 2 bytes).
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// A big-endian `u32` at the start of `b` (at least 4 bytes).
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn corrupt(file: &Path, message: String) -> Error {
    Error::io(
        file,
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a readable SQLite database: {message}"),
        ),
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::test_support::TempRoot;
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    /// Creates the database `db` by running the SQL script `sql` through
    /// the `sqlite3` command-line shell.
    pub(in crate::component) fn sqlite3(db: &Path, sql: &str) {
        let script = db.with_extension("sql");
        std::fs::write(&script, sql).unwrap();
        let output = Command::new("sqlite3")
            .arg(db)
            .arg(format!(".read {}", script.display()))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run sqlite3 ({e}): install it with `apt-get install sqlite3`")
            });
        assert!(
            output.status.success(),
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::remove_file(script).unwrap();
    }

    /// `bytes` as an SQL blob literal.
    pub(in crate::component) fn blob_literal(bytes: &[u8]) -> String {
        let mut s = String::with_capacity(3 + 2 * bytes.len());
        s.push_str("X'");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\'');
        s
    }

    /// `len` pseudo-random bytes determined by `seed` (xorshift64).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Every row of table `name`.
    fn rows(file: &Path, data: &[u8], name: &str) -> Result<Vec<(i64, Vec<Value>)>> {
        let db = Database::new(file, data)?;
        let root = db.table_root(name)?.expect("the table exists");
        let mut rows = Vec::new();
        db.for_each_row(root, &mut |rowid, values| {
            rows.push((rowid, values));
            Ok(())
        })?;
        Ok(rows)
    }

    /// The size of a blob whose record in `Packages` (a NULL and the blob)
    /// is a payload of `payload` bytes.
    fn blob_size(payload: usize) -> usize {
        let varint_len = |v: usize| (1..9).find(|n| v < 1 << (7 * n)).unwrap_or(9);
        // The header: its own size (one byte here), 0 for NULL, the blob's type.
        let overhead = |blob: usize| 2 + varint_len(12 + 2 * blob);
        (3..=6)
            .map(|h| payload - h)
            .find(|&blob| blob + overhead(blob) == payload)
            .unwrap()
    }

    /// The page numbers of the children of interior page `number`.
    fn children(data: &[u8], page_size: usize, number: u32) -> Vec<u32> {
        let page = &data[(number as usize - 1) * page_size..][..page_size];
        assert_eq!(page[0], INTERIOR_TABLE, "page {number} is interior");
        let cells = usize::from(be16(&page[3..]));
        let mut out: Vec<u32> = (0..cells)
            .map(|i| be32(&page[usize::from(be16(&page[12 + 2 * i..]))..]))
            .collect();
        out.push(be32(&page[8..]));
        out
    }

    #[test]
    fn blobs_of_every_size_read_back_as_written() {
        let dir = TempRoot::new("sqlite-sizes");
        for (page_size, reserved) in [(512usize, 0), (1024, 32), (4096, 0), (65536, 0)] {
            let usable = page_size - reserved;
            let max_local = usable - 35;
            // Payloads (blob and record header) around the limits: all local
            // up to X; past it, K local bytes up to X, then M.
            let mut sizes = vec![0, 1, 100];
            for pages in 0..4 {
                let payload = max_local + pages * (usable - 4);
                sizes.extend((payload - 1..=payload + 1).map(blob_size));
            }
            // Many pages long.
            sizes.extend([page_size, 3 * page_size - 7, 20 * page_size]);
            // Many small rows, for interior pages.
            let small = if page_size == 512 { 300 } else { 100 };
            sizes.extend((0..small).map(|i| noise(i, 1)[0] as usize * page_size / 512));
            let mut sql = format!(
                "PRAGMA page_size={page_size};\n\
                 .filectrl reserve_bytes {reserved}\n\
                 CREATE TABLE Packages(hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);\n\
                 BEGIN;\n"
            );
            // Enough tables that the schema itself needs interior pages.
            for t in 0..40 {
                sql.push_str(&format!(
                    "CREATE TABLE padding_table_with_a_long_name_{t}(a TEXT, b INTEGER);\n"
                ));
            }
            let mut expected = Vec::new();
            for (i, &size) in sizes.iter().enumerate() {
                let blob = noise(1000 + i as u64, size);
                sql.push_str(&format!(
                    "INSERT INTO Packages(blob) VALUES ({});\n",
                    blob_literal(&blob)
                ));
                expected.push((i as i64 + 1, vec![Value::Null, Value::Blob(blob)]));
            }
            // Gaps in the rowids and free pages.
            sql.push_str("DELETE FROM Packages WHERE hnum % 7 = 3;\nCOMMIT;\n");
            expected.retain(|(rowid, _)| rowid % 7 != 3);

            let file = dir.path().join(format!("db-{page_size}.sqlite"));
            sqlite3(&file, &sql);
            let data = std::fs::read(&file).unwrap();
            assert_eq!(usize::from(data[20]), reserved);
            let got = rows(&file, &data, "Packages").unwrap();
            assert_eq!(got.len(), expected.len(), "page size {page_size}");
            for (g, e) in got.iter().zip(&expected) {
                assert!(g == e, "page size {page_size}: row {} differs", e.0);
            }
            // The b-trees walked were deep enough to mean something.
            let db = Database::new(&file, &data).unwrap();
            let root = db.table_root("packages").unwrap().unwrap();
            let below = children(&data, page_size, root);
            assert!(below.len() > 1);
            if page_size == 512 {
                children(&data, page_size, below[0]);
                assert_eq!(data[HEADER_BYTES], INTERIOR_TABLE, "schema root");
            }
        }
    }

    #[test]
    fn every_serial_type_decodes() {
        let dir = TempRoot::new("sqlite-types");
        let file = dir.path().join("types.sqlite");
        let values: [(&str, Value); 22] = [
            ("NULL", Value::Null),
            ("0", Value::Integer(0)),
            ("1", Value::Integer(1)),
            ("2", Value::Integer(2)),
            ("-1", Value::Integer(-1)),
            ("127", Value::Integer(127)),
            ("-129", Value::Integer(-129)),
            ("32768", Value::Integer(32768)),
            ("-8388608", Value::Integer(-8388608)),
            ("8388608", Value::Integer(8388608)),
            ("2147483648", Value::Integer(2147483648)),
            ("-140737488355328", Value::Integer(-140737488355328)),
            ("140737488355328", Value::Integer(140737488355328)),
            ("9223372036854775807", Value::Integer(i64::MAX)),
            ("-9223372036854775808", Value::Integer(i64::MIN)),
            ("1.5", Value::Real(1.5)),
            ("-2.25e100", Value::Real(-2.25e100)),
            ("''", Value::Text(Vec::new())),
            ("'caf\u{e9}'", Value::Text("caf\u{e9}".into())),
            ("X''", Value::Blob(Vec::new())),
            ("X'00ff10'", Value::Blob(vec![0, 0xff, 0x10])),
            ("zeroblob(3)", Value::Blob(vec![0; 3])),
        ];
        let mut sql = String::from("CREATE TABLE \"Mixed Case\"(k INTEGER PRIMARY KEY, a, b);\n");
        for (i, (literal, _)) in values.iter().enumerate() {
            sql.push_str(&format!(
                "INSERT INTO \"Mixed Case\" VALUES ({}, {literal}, 'x');\n",
                i as i64 * 1000 - 5000
            ));
        }
        sqlite3(&file, &sql);
        let data = std::fs::read(&file).unwrap();
        let got = rows(&file, &data, "MIXED case").unwrap();
        let expected: Vec<(i64, Vec<Value>)> = values
            .into_iter()
            .enumerate()
            .map(|(i, (_, v))| {
                (
                    i as i64 * 1000 - 5000,
                    vec![Value::Null, v, Value::Text(b"x".to_vec())],
                )
            })
            .collect();
        assert_eq!(got, expected);
        let db = Database::new(&file, &data).unwrap();
        assert_eq!(db.table_root("Packages").unwrap(), None);
    }

    #[test]
    fn only_utf8_table_databases_are_read() {
        let dir = TempRoot::new("sqlite-utf16");
        let file = dir.path().join("utf16.sqlite");
        sqlite3(&file, "PRAGMA encoding='UTF-16le';\nCREATE TABLE t(a);\n");
        let data = std::fs::read(&file).unwrap();
        let err = Database::new(&file, &data).err().unwrap();
        assert!(err.to_string().contains("not UTF-8"), "{err}");

        let file = dir.path().join("index.sqlite");
        sqlite3(
            &file,
            "CREATE TABLE t(a PRIMARY KEY, b) WITHOUT ROWID;\nINSERT INTO t VALUES (1, 2);\n",
        );
        let data = std::fs::read(&file).unwrap();
        let err = rows(&file, &data, "t").unwrap_err();
        assert!(err.to_string().contains("not a table b-tree page"), "{err}");
    }

    /// A small database with overflow chains and an interior root.
    fn small_database(dir: &TempRoot, name: &str, sizes: &[usize]) -> (PathBuf, Vec<u8>) {
        let mut sql = String::from(
            "PRAGMA page_size=512;\nCREATE TABLE Packages(hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL);\n",
        );
        for (i, &size) in sizes.iter().enumerate() {
            sql.push_str(&format!(
                "INSERT INTO Packages(blob) VALUES ({});\n",
                blob_literal(&noise(i as u64, size))
            ));
        }
        let file = dir.path().join(name);
        sqlite3(&file, &sql);
        let data = std::fs::read(&file).unwrap();
        (file, data)
    }

    #[test]
    fn truncated_and_damaged_files_are_errors_not_panics() {
        let dir = TempRoot::new("sqlite-damage");
        let (file, data) = small_database(&dir, "small.sqlite", &[10, 2000, 300, 40, 700, 5]);
        assert_eq!(rows(&file, &data, "Packages").unwrap().len(), 6);
        // Every page is in use: any truncation loses something.
        for len in 0..data.len() {
            let err = match Database::new(&file, &data[..len]) {
                Err(err) => err,
                Ok(db) => db
                    .for_each_row(2, &mut |_, _| Ok(()))
                    .expect_err(&format!("truncated to {len} bytes")),
            };
            assert!(
                err.to_string().starts_with(&file.display().to_string()),
                "{err}"
            );
        }
        let mut errors = 0;
        for pos in 0..data.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = data.clone();
                damaged[pos] ^= flip;
                // Any result but a panic or a hang; errors name the file.
                if let Err(err) = Database::new(&file, &damaged).and_then(|db| {
                    let root = db.table_root("Packages")?.unwrap_or(2);
                    db.for_each_row(root, &mut |_, _| Ok(()))
                }) {
                    errors += 1;
                    assert!(err.to_string().contains(&file.display().to_string()));
                }
            }
        }
        // Most bytes are blob content, free to change; the structure is not.
        assert!(errors > 300, "only {errors} damaged copies were refused");
    }

    #[test]
    fn loops_and_stray_page_numbers_are_errors() {
        let dir = TempRoot::new("sqlite-loops");
        let first_error = |data: &[u8], file: &Path| {
            let db = Database::new(file, data).unwrap();
            db.for_each_row(2, &mut |_, _| Ok(()))
                .unwrap_err()
                .to_string()
        };

        // One row, its payload spilling over pages 3, 4, ...
        let (file, data) = small_database(&dir, "chain.sqlite", &[3000]);
        let leaf = &data[512..1024];
        assert_eq!(leaf[0], LEAF_TABLE);
        let cell = &leaf[usize::from(be16(&leaf[8..]))..];
        let (size, a) = varint(cell).unwrap();
        let (_, b) = varint(&cell[a..]).unwrap();
        let at = a + b + local_payload_bytes(512, size as usize);
        let first = be32(&cell[at..]);
        let first_at = (first as usize - 1) * 512;
        let patch = |at: usize, value: u32| patch_at(&data, at, value);
        let err = first_error(&patch(first_at, first), &file);
        assert!(
            err.contains(&format!("page {first} is used twice")),
            "{err}"
        );
        let err = first_error(&patch(first_at, 1), &file);
        assert!(err.contains("page 1 is used twice"), "{err}");
        let err = first_error(&patch(first_at, 0), &file);
        assert!(err.contains("page 0 is out of range"), "{err}");
        let err = first_error(
            &patch(512 + usize::from(be16(&leaf[8..])) + at, 9999),
            &file,
        );
        assert!(err.contains("page 9999 is out of range"), "{err}");
        // The last overflow page must end the chain.
        let pages = data.len() / 512;
        let err = first_error(&patch((pages - 1) * 512, 2), &file);
        assert!(err.contains("after the whole payload"), "{err}");

        // Many rows: the root (page 2) is interior.
        let (file, data) = small_database(&dir, "tree.sqlite", &[200; 40]);
        assert_eq!(data[512], INTERIOR_TABLE);
        let err = first_error(&patch_at(&data, 512 + 8, 2), &file);
        assert!(err.contains("page 2 is used twice"), "{err}");
        // An absurd cell count.
        let mut copy = data.clone();
        copy[512 + 3..512 + 5].copy_from_slice(&[0xff, 0xff]);
        let err = first_error(&copy, &file);
        assert!(err.contains("cells do not fit"), "{err}");
    }

    fn patch_at(data: &[u8], at: usize, value: u32) -> Vec<u8> {
        let mut copy = data.to_vec();
        copy[at..at + 4].copy_from_slice(&value.to_be_bytes());
        copy
    }

    #[test]
    fn varints_and_local_sizes() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
        assert_eq!(varint(&[]), None);
        // U = 512: X = 477, M = 39, U - 4 = 508.
        assert_eq!(local_payload_bytes(512, 477), 477);
        // K = 39 + (478 - 39) % 508 = 478 > X: M.
        assert_eq!(local_payload_bytes(512, 478), 39);
        assert_eq!(local_payload_bytes(512, 39 + 508 + 400), 400 + 39);
        assert_eq!(local_payload_bytes(512, 39 + 508 + 450), 39);
    }
}
