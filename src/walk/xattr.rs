//! Extended attributes of a path, without following symlinks.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Calls `f(buf, len)` with a buffer the value fits: first one of
/// [`FIRST_TRY`] bytes (most entries have no extended attribute, or short
/// ones: one call), else one of the size `f` reports (asked again if the
/// value grows in between).
fn read_sized(
    path: &Path,
    mut f: impl FnMut(*mut libc::c_void, usize) -> isize,
) -> Result<Vec<u8>> {
    let mut len = FIRST_TRY;
    loop {
        let mut buf = vec![0u8; len];
        let got = f(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(Error::io(path, err));
        }
        let size = f(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(Error::io(path, std::io::Error::last_os_error()));
        }
        len = size as usize;
    }
}

/// The buffer the first call of [`read_sized`] gets.
const FIRST_TRY: usize = 1024;

/// Every extended attribute of `path` (the link itself for a symlink), sorted by name.
pub fn list(path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|e| Error::io(path, e.into()))?;
    let names = match read_sized(path, |buf, len| {
        // SAFETY: `cpath` is a NUL-terminated string; `buf` is null with len 0 or
        // points to `len` writable bytes.
        unsafe { libc::llistxattr(cpath.as_ptr(), buf.cast(), len) }
    }) {
        Ok(names) => names,
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOTSUP) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).expect("split at NUL bytes");
        let value = read_sized(path, |buf, len| {
            // SAFETY: as above; `cname` is NUL-terminated.
            unsafe { libc::lgetxattr(cpath.as_ptr(), cname.as_ptr(), buf, len) }
        })?;
        out.push((OsString::from_vec(name.to_vec()), value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_xattrs_sorted() {
        let path = std::env::temp_dir().join(format!("chunkah-xattr-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let cpath = CString::new(path.as_os_str().as_bytes()).unwrap();
        // user.c is longer than the first buffer read_sized offers.
        let long = vec![b'v'; 3 * FIRST_TRY];
        for (name, value) in [
            ("user.b", &b"2"[..]),
            ("user.a", b"\x00\x01binary"),
            ("user.c", &long),
        ] {
            let cname = CString::new(name).unwrap();
            // SAFETY: valid NUL-terminated strings and a value slice of the given length.
            let rc = unsafe {
                libc::lsetxattr(
                    cpath.as_ptr(),
                    cname.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            };
            assert_eq!(rc, 0, "setting {name}: {}", std::io::Error::last_os_error());
        }
        let got = list(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            got,
            vec![
                (OsString::from("user.a"), b"\x00\x01binary".to_vec()),
                (OsString::from("user.b"), b"2".to_vec()),
                (OsString::from("user.c"), long),
            ]
        );
    }
}
