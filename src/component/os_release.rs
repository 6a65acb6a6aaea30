//! `os-release(5)`: which distribution a root file system is, for package
//! URLs (`pkg:deb/debian/…?distro=debian-12`). Read from `etc/os-release`,
//! else `usr/lib/os-release`, through the tree's own symbolic links.

use super::{RootFs, RootView};
use crate::error::Result;

const PLACES: [&[u8]; 2] = [b"etc/os-release", b"usr/lib/os-release"];

/// The distribution's `ID` and `VERSION_ID`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `debian`, `fedora`, `alpine`, `arch` (`linux` when unset, as the
    /// manual says).
    pub id: String,
    /// `12`, `40`, `3.20`; empty for rolling releases.
    pub version_id: String,
}

/// The os-release of the tree `view` shows, `None` when it has none.
///
/// # Errors
///
/// [`crate::Error::Io`] when the file is there but cannot be read.
pub fn read_os_release(view: &dyn RootView) -> Result<Option<OsRelease>> {
    let mut tree = RootFs::new(view);
    for place in PLACES {
        if let Some((_, data)) = tree.read_file(place)? {
            return Ok(Some(parse(&data)));
        }
    }
    Ok(None)
}

/// `KEY=value` lines; values may be quoted with `"` or `'` and use `\`
/// escapes. Lines that are not assignments are skipped, as the manual
/// allows readers to.
fn parse(data: &[u8]) -> OsRelease {
    let text = String::from_utf8_lossy(data);
    let mut out = OsRelease {
        id: "linux".into(),
        version_id: String::new(),
    };
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key {
            "ID" if !value.is_empty() => out.id = value,
            "VERSION_ID" => out.version_id = value,
            _ => {}
        }
    }
    out
}

fn unquote(v: &str) -> String {
    let inner = match v.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q && v.len() >= 2 => &v[1..v.len() - 1],
        _ => v,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TempRoot;
    use super::super::DirRoot;
    use super::*;

    #[test]
    fn parses_quoted_and_bare_values() {
        let debian = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
            VERSION_ID=\"12\"\nID=debian\n# a comment\nnot an assignment\n";
        assert_eq!(
            parse(debian),
            OsRelease {
                id: "debian".into(),
                version_id: "12".into()
            }
        );
        let arch = b"NAME='Arch Linux'\nID='arch'\nBUILD_ID=rolling\n";
        assert_eq!(parse(arch).id, "arch");
        assert_eq!(parse(arch).version_id, "");
        assert_eq!(parse(b"VERSION_ID=\"3.\\20\"\n").version_id, "3.20");
        assert_eq!(parse(b"").id, "linux");
        assert_eq!(parse(b"ID=\"\n").id, "\"");
    }

    #[test]
    fn follows_the_link_into_usr_lib() {
        let root = TempRoot::new("os-release");
        root.write("usr/lib/os-release", "ID=fedora\nVERSION_ID=40\n");
        root.symlink("etc/os-release", "../usr/lib/os-release");
        let found = read_os_release(&DirRoot::open(root.path()).unwrap()).unwrap();
        assert_eq!(
            found,
            Some(OsRelease {
                id: "fedora".into(),
                version_id: "40".into()
            })
        );
        let empty = TempRoot::new("no-os-release");
        assert_eq!(
            read_os_release(&DirRoot::open(empty.path()).unwrap()).unwrap(),
            None
        );
    }
}
