//! POSIX ACLs in their two forms: the extended attributes
//! `system.posix_acl_access` / `system.posix_acl_default` (version 2:
//! entries of tag, permissions and id) and the text GNU tar and star write
//! as `SCHILY.acl.access` / `SCHILY.acl.default` PAX records.

/// Tag values of ACL entries, in the order the kernel wants them.
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// The id of entries that have none.
const NO_ID: u32 = u32::MAX;

/// The text form of a POSIX ACL in its extended-attribute form (version
/// 2: entries of tag, permissions and id), one entry per line with numeric
/// ids (`user::rwx\nuser:1234:r-x\n...`); `None` if it is not one.
pub fn to_text(xattr: &[u8]) -> Option<Vec<u8>> {
    let (version, entries) = xattr.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*version) != 2 || entries.len() % 8 != 0 {
        return None;
    }
    let mut out = Vec::new();
    for e in entries.chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u16::from_le_bytes([e[2], e[3]]);
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        let (kind, id) = match tag {
            USER_OBJ => ("user", None),
            USER => ("user", Some(id)),
            GROUP_OBJ => ("group", None),
            GROUP => ("group", Some(id)),
            MASK => ("mask", None),
            OTHER => ("other", None),
            _ => return None,
        };
        if perm > 7 {
            return None;
        }
        let bit = |b: u16, c: char| if perm & b != 0 { c } else { '-' };
        let line = format!(
            "{kind}:{}:{}{}{}\n",
            id.map(|i| i.to_string()).unwrap_or_default(),
            bit(4, 'r'),
            bit(2, 'w'),
            bit(1, 'x')
        );
        out.extend_from_slice(line.as_bytes());
    }
    Some(out)
}

/// The extended-attribute form of an ACL in text form: entries
/// `TAG:QUALIFIER:PERMS[:ID]` separated by newlines or commas, tags
/// `user`, `group`, `mask`, `other` (or `u`, `g`, `m`, `o`), ids numeric
/// (a name is read only with star's numeric fourth field); `None` if it is
/// not one (names alone cannot be mapped without the image's user database).
pub fn from_text(text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut entries: Vec<(u16, u32, u16)> = Vec::new();
    for e in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
    {
        let fields: Vec<&str> = e.split(':').collect();
        let (tag, qualifier, perms, id) = match fields.as_slice() {
            [t, q, p] => (*t, *q, *p, None),
            [t, q, p, id] => (*t, *q, *p, Some(*id)),
            _ => return None,
        };
        let perms = perms.as_bytes();
        if perms.len() != 3 {
            return None;
        }
        let mut perm = 0u16;
        for (c, (on, bit)) in perms.iter().zip([(b'r', 4), (b'w', 2), (b'x', 1)]) {
            match *c {
                c if c == on => perm |= bit,
                b'-' => {}
                _ => return None,
            }
        }
        let numeric = |s: &str| s.parse::<u32>().ok().filter(|&n| n != NO_ID);
        let id = match id {
            Some(id) => Some(numeric(id)?),
            None if qualifier.is_empty() => None,
            None => Some(numeric(qualifier)?),
        };
        let (tag, id) = match (tag, id) {
            ("user" | "u", None) => (USER_OBJ, NO_ID),
            ("user" | "u", Some(i)) => (USER, i),
            ("group" | "g", None) => (GROUP_OBJ, NO_ID),
            ("group" | "g", Some(i)) => (GROUP, i),
            ("mask" | "m", None) => (MASK, NO_ID),
            ("other" | "o", None) => (OTHER, NO_ID),
            _ => return None,
        };
        entries.push((tag, id, perm));
    }
    if entries.is_empty() {
        return None;
    }
    entries.sort_unstable();
    let mut out = 2u32.to_le_bytes().to_vec();
    for (tag, id, perm) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acls_are_written_as_text_too() {
        // user::rwx user:1234:rwx group::r-x mask::rwx other::r-x, as the
        // kernel stores them (ids of the unnamed entries are -1).
        let mut x = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 7u16, u32::MAX),
            (2, 7, 1234),
            (4, 5, u32::MAX),
            (0x10, 7, u32::MAX),
            (0x20, 5, u32::MAX),
        ] {
            x.extend_from_slice(&tag.to_le_bytes());
            x.extend_from_slice(&perm.to_le_bytes());
            x.extend_from_slice(&id.to_le_bytes());
        }
        assert_eq!(
            to_text(&x).unwrap(),
            b"user::rwx\nuser:1234:rwx\ngroup::r-x\nmask::rwx\nother::r-x\n"
        );
        assert_eq!(to_text(&x[..7]), None);
        assert_eq!(to_text(&[1, 0, 0, 0]), None);
    }

    #[test]
    fn text_from_gnu_tar_and_star_reads_back() {
        let gnu = b"user::rwx\nuser:1234:rwx\ngroup::r-x\nmask::rwx\nother::r-x\n";
        let x = from_text(gnu).unwrap();
        assert_eq!(to_text(&x).unwrap(), gnu);
        // star: commas, names with their numeric ids, any order.
        let star = b"group::r-x,user:lisa:rw-:1001,user::rwx,mask::rwx,other::---";
        let x = from_text(star).unwrap();
        assert_eq!(
            to_text(&x).unwrap(),
            b"user::rwx\nuser:1001:rw-\ngroup::r-x\nmask::rwx\nother::---\n"
        );
        for bad in [
            &b""[..],
            b"user:lisa:rw-",
            b"user::rwz",
            b"other:5:r--",
            b"bogus::rwx",
        ] {
            assert_eq!(from_text(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
