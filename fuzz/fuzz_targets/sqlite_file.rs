//! Writes small SQLite database files with rowid tables, the way SQLite lays
//! them out (<https://www.sqlite.org/fileformat2.html>): leaf and interior
//! table b-tree pages, overflow chains, reserved bytes at the end of each
//! page, the schema on page 1. No free pages, no indexes. Checked against
//! `sqlite3` (`PRAGMA integrity_check`) when written.

/// A column value.
#[derive(Clone, Debug)]
pub enum Val {
    Null,
    Int(i64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// A table: its name, its `CREATE TABLE` statement and its rows (rowid and
/// record payload), rowids increasing.
pub struct Table {
    pub name: String,
    pub sql: String,
    pub rows: Vec<(i64, Vec<u8>)>,
}

/// Appends the SQLite varint of `v`.
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v >> 56 != 0 {
        let mut buf = [0u8; 9];
        buf[8] = v as u8;
        let mut w = v >> 8;
        for b in buf[..8].iter_mut().rev() {
            *b = (w & 0x7f) as u8 | 0x80;
            w >>= 7;
        }
        out.extend_from_slice(&buf);
        return;
    }
    let mut tmp = Vec::with_capacity(8);
    let mut w = v;
    loop {
        tmp.push((w & 0x7f) as u8);
        w >>= 7;
        if w == 0 {
            break;
        }
    }
    let n = tmp.len();
    for (i, b) in tmp.iter().rev().enumerate() {
        out.push(if i + 1 < n { b | 0x80 } else { *b });
    }
}

fn varint_len(v: u64) -> usize {
    let mut out = Vec::new();
    put_varint(&mut out, v);
    out.len()
}

/// A record: header (its size, one serial type per value), then the values.
pub fn record(values: &[Val]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut body = Vec::new();
    for v in values {
        let serial: u64 = match v {
            Val::Null => 0,
            Val::Int(0) => 8,
            Val::Int(1) => 9,
            Val::Int(i) => {
                let (serial, len) = match *i {
                    -0x80..=0x7f => (1, 1),
                    -0x8000..=0x7fff => (2, 2),
                    -0x80_0000..=0x7f_ffff => (3, 3),
                    -0x8000_0000..=0x7fff_ffff => (4, 4),
                    -0x8000_0000_0000..=0x7fff_ffff_ffff => (5, 6),
                    _ => (6, 8),
                };
                body.extend_from_slice(&i.to_be_bytes()[8 - len..]);
                serial
            }
            Val::Text(t) => {
                body.extend_from_slice(t);
                13 + 2 * t.len() as u64
            }
            Val::Blob(b) => {
                body.extend_from_slice(b);
                12 + 2 * b.len() as u64
            }
        };
        put_varint(&mut types, serial);
    }
    let mut header_len = types.len() + 1;
    while header_len != types.len() + varint_len(header_len as u64) {
        header_len = types.len() + varint_len(header_len as u64);
    }
    let mut out = Vec::with_capacity(header_len + body.len());
    put_varint(&mut out, header_len as u64);
    out.extend_from_slice(&types);
    out.extend_from_slice(&body);
    out
}

/// How many bytes of a payload of `size` bytes stay on a leaf page.
fn local_bytes(usable: usize, size: usize) -> usize {
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

struct Pages {
    size: usize,
    usable: usize,
    pages: Vec<Vec<u8>>,
}

impl Pages {
    /// A new zeroed page; its number.
    fn allocate(&mut self) -> u32 {
        self.pages.push(vec![0; self.size]);
        self.pages.len() as u32
    }

    fn page(&mut self, number: u32) -> &mut Vec<u8> {
        &mut self.pages[number as usize - 1]
    }

    /// A leaf cell for `rowid` and `payload`, its overflow pages written.
    fn leaf_cell(&mut self, rowid: i64, payload: &[u8]) -> Vec<u8> {
        let mut cell = Vec::new();
        put_varint(&mut cell, payload.len() as u64);
        put_varint(&mut cell, rowid as u64);
        let local = local_bytes(self.usable, payload.len());
        cell.extend_from_slice(&payload[..local]);
        if local < payload.len() {
            let chunks: Vec<&[u8]> = payload[local..].chunks(self.usable - 4).collect();
            let numbers: Vec<u32> = chunks.iter().map(|_| self.allocate()).collect();
            cell.extend_from_slice(&numbers[0].to_be_bytes());
            for (i, chunk) in chunks.iter().enumerate() {
                let next = numbers.get(i + 1).copied().unwrap_or(0);
                let page = self.page(numbers[i]);
                page[..4].copy_from_slice(&next.to_be_bytes());
                page[4..4 + chunk.len()].copy_from_slice(chunk);
            }
        }
        cell
    }

    /// Writes a b-tree page: header at `start` (100 on page 1), cell pointers,
    /// cells packed at the end of the usable area.
    fn write_page(&mut self, number: u32, start: usize, leaf: bool, cells: &[Vec<u8>], right: u32) {
        let usable = self.usable;
        let page = self.page(number);
        let mut end = usable;
        let header = if leaf { 8 } else { 12 };
        for (i, cell) in cells.iter().enumerate() {
            end -= cell.len();
            page[end..end + cell.len()].copy_from_slice(cell);
            let at = start + header + 2 * i;
            page[at..at + 2].copy_from_slice(&(end as u16).to_be_bytes());
        }
        page[start] = if leaf { 0x0d } else { 0x05 };
        page[start + 3..start + 5].copy_from_slice(&(cells.len() as u16).to_be_bytes());
        // 0 stands for 65536.
        page[start + 5..start + 7].copy_from_slice(&(end as u16).to_be_bytes());
        if !leaf {
            page[start + 8..start + 12].copy_from_slice(&right.to_be_bytes());
        }
    }

    /// Writes the b-tree of `rows`; its root page. With `root` given (page 1,
    /// the schema) every cell must fit on it.
    fn table(&mut self, rows: &[(i64, Vec<u8>)], root: Option<u32>) -> Option<u32> {
        let cells: Vec<(i64, Vec<u8>)> = rows
            .iter()
            .map(|(rowid, payload)| (*rowid, self.leaf_cell(*rowid, payload)))
            .collect();
        if let Some(root) = root {
            let room = self.usable - 100 - 8;
            if cells.iter().map(|(_, c)| c.len() + 2).sum::<usize>() > room {
                return None;
            }
            let cells: Vec<Vec<u8>> = cells.into_iter().map(|(_, c)| c).collect();
            self.write_page(root, 100, true, &cells, 0);
            return Some(root);
        }
        // Leaves, then levels of interior pages: (page, largest rowid below).
        let mut level: Vec<(u32, i64)> = Vec::new();
        let room = self.usable - 8;
        let mut group: Vec<Vec<u8>> = Vec::new();
        let mut used = 0;
        let mut last = 0;
        for (rowid, cell) in cells {
            if !group.is_empty() && used + cell.len() + 2 > room {
                let page = self.allocate();
                self.write_page(page, 0, true, &group, 0);
                level.push((page, last));
                group.clear();
                used = 0;
            }
            used += cell.len() + 2;
            last = rowid;
            group.push(cell);
        }
        let page = self.allocate();
        self.write_page(page, 0, true, &group, 0);
        level.push((page, last));
        while level.len() > 1 {
            let room = self.usable - 12;
            let mut next: Vec<(u32, i64)> = Vec::new();
            let mut group: Vec<(u32, i64)> = Vec::new();
            let mut used = 0;
            let flush =
                |this: &mut Pages, group: &mut Vec<(u32, i64)>, next: &mut Vec<(u32, i64)>| {
                    let (right, key) = group.pop().unwrap();
                    let cells: Vec<Vec<u8>> = group
                        .iter()
                        .map(|(child, key)| {
                            let mut c = child.to_be_bytes().to_vec();
                            put_varint(&mut c, *key as u64);
                            c
                        })
                        .collect();
                    let page = this.allocate();
                    this.write_page(page, 0, false, &cells, right);
                    next.push((page, key));
                    group.clear();
                };
            for (child, key) in level {
                let cost = 4 + varint_len(key as u64) + 2;
                if group.len() > 1 && used + cost > room {
                    flush(self, &mut group, &mut next);
                    used = 0;
                }
                used += cost;
                group.push((child, key));
            }
            flush(self, &mut group, &mut next);
            level = next;
        }
        Some(level[0].0)
    }
}

/// The database file holding `tables`, with pages of `page_size` bytes
/// (512 to 65536) of which `reserved` at the end are unused. Tables whose
/// schema rows do not fit on page 1 are left out.
pub fn database(page_size: usize, reserved: u8, tables: &[Table]) -> Vec<u8> {
    let mut pages = Pages {
        size: page_size,
        usable: page_size - usize::from(reserved),
        pages: Vec::new(),
    };
    pages.allocate();
    let mut schema = Vec::new();
    for table in tables {
        let root = pages.table(&table.rows, None).unwrap();
        let row = record(&[
            Val::Text(b"table".to_vec()),
            Val::Text(table.name.as_bytes().to_vec()),
            Val::Text(table.name.as_bytes().to_vec()),
            Val::Int(i64::from(root)),
            Val::Text(table.sql.as_bytes().to_vec()),
        ]);
        schema.push((schema.len() as i64 + 1, row));
    }
    while pages.table(&schema, Some(1)).is_none() {
        schema.pop();
    }
    let count = pages.pages.len() as u32;
    let mut out: Vec<u8> = pages.pages.concat();
    let h = &mut out[..100];
    h[..16].copy_from_slice(b"SQLite format 3\0");
    let size_field = if page_size == 65536 {
        1
    } else {
        page_size as u16
    };
    h[16..18].copy_from_slice(&size_field.to_be_bytes());
    h[18] = 1; // write version: rollback journal
    h[19] = 1; // read version
    h[20] = reserved;
    h[21..24].copy_from_slice(&[64, 32, 32]);
    h[24..28].copy_from_slice(&1u32.to_be_bytes()); // change counter
    h[28..32].copy_from_slice(&count.to_be_bytes()); // pages
    h[40..44].copy_from_slice(&1u32.to_be_bytes()); // schema cookie
    h[44..48].copy_from_slice(&4u32.to_be_bytes()); // schema format
    h[56..60].copy_from_slice(&1u32.to_be_bytes()); // UTF-8
    h[92..96].copy_from_slice(&1u32.to_be_bytes()); // version-valid-for
    h[96..100].copy_from_slice(&3_045_001u32.to_be_bytes());
    out
}
