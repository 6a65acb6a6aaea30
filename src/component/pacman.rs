//! pacman (Arch): `var/lib/pacman/local/<name>-<version>/{desc,files}`.
//!
//! Both files are sections: a `%HEADER%` line, value lines, a blank line.
//! From `desc`: `%NAME%` and `%BASE%` (the source package; the component is
//! `pacman:<base>`, or `pacman:<name>` without one), `%VERSION%`, `%ARCH%`
//! and `%LICENSE%` (one licence a line). From `files`: `%FILES%`,
//! paths relative to the root, directories ending in `/`.

use std::path::Path;

use super::{
    database_path, lines, malformed, push_component, utf8, Database, InstalledPackage,
    OwnershipBuilder, RootFs,
};
use crate::Result;

const LOCAL: &[u8] = b"var/lib/pacman/local";

pub(super) fn read(tree: &mut RootFs, out: &mut OwnershipBuilder) -> Result<()> {
    let Some(local) = tree.read_dir(LOCAL)? else {
        return Ok(());
    };
    for entry in local.names {
        let mut dir = local.dir.clone();
        push_component(&mut dir, &entry);
        // Entries other than package directories (ALPM_DB_VERSION) are skipped.
        if tree.node(&dir)? != Some(super::Node::Dir) {
            continue;
        }
        let desc = read_required(tree, &dir, b"desc")?;
        let files = read_required(tree, &dir, b"files")?;
        let by = out.package(package(&desc.0, &desc.1)?, &desc.0);
        let (path, data) = &files;
        for (header, values) in parse(path, data)? {
            if header != b"%FILES%" {
                continue;
            }
            for (number, value) in values {
                let p = database_path(value, path, number)?;
                let resolved = tree.resolve_parent(&p)?;
                out.claim_listed(resolved, by);
            }
        }
    }
    Ok(())
}

/// The package a `desc` file describes.
fn package(path: &Path, data: &[u8]) -> Result<InstalledPackage> {
    let sections = parse(path, data)?;
    let text = |header: &[u8]| -> Result<Option<String>> {
        match first(&sections, header) {
            Some((number, v)) => Ok(Some(utf8(v, path, number)?.to_owned())),
            None => Ok(None),
        }
    };
    let name = text(b"%NAME%")?.ok_or_else(|| malformed(path, 1, "no %NAME% section"))?;
    let base = text(b"%BASE%")?.unwrap_or_else(|| name.clone());
    let mut licenses = Vec::new();
    for (h, values) in &sections {
        if *h == b"%LICENSE%" {
            for &(number, v) in values {
                licenses.push(utf8(v, path, number)?);
            }
        }
    }
    Ok(InstalledPackage {
        database: Database::Pacman,
        version: text(b"%VERSION%")?,
        architecture: text(b"%ARCH%")?,
        license: (!licenses.is_empty()).then(|| licenses.join(" AND ")),
        component: format!("pacman:{base}"),
        source: Some(base),
        name,
        paths: Vec::new(),
        build_time: text(b"%BUILDDATE%")?.and_then(|t| t.trim().parse().ok()),
        changelog_times: Vec::new(),
    })
}

/// Reads `dir/name`; a package directory without it is a broken database.
fn read_required(
    tree: &mut RootFs,
    dir: &[u8],
    name: &[u8],
) -> Result<(std::path::PathBuf, Vec<u8>)> {
    let mut rel = dir.to_vec();
    push_component(&mut rel, name);
    match tree.read_file(&rel)? {
        Some(found) => Ok(found),
        None => Err(crate::Error::io(
            tree.host_path(&rel),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "pacman package entry without this file",
            ),
        )),
    }
}

type Line<'a> = (usize, &'a [u8]);

/// The first value of section `header`, with its line number.
fn first<'a>(sections: &[(&[u8], Vec<Line<'a>>)], header: &[u8]) -> Option<Line<'a>> {
    sections
        .iter()
        .find(|(h, _)| *h == header)
        .and_then(|(_, values)| values.first().copied())
}

/// The sections of a `desc` or `files` file, in order: header and values.
fn parse<'a>(file: &Path, data: &'a [u8]) -> Result<Vec<(&'a [u8], Vec<Line<'a>>)>> {
    let mut sections: Vec<(&[u8], Vec<Line<'a>>)> = Vec::new();
    let mut in_section = false;
    for (number, line) in lines(data) {
        if line.is_empty() {
            in_section = false;
        } else if in_section {
            if let Some((_, values)) = sections.last_mut() {
                values.push((number, line));
            }
        } else if line.len() >= 2 && line.starts_with(b"%") && line.ends_with(b"%") {
            // A header only where a section may start, so that a file named
            // `%x%` inside a section stays a file.
            sections.push((line, Vec::new()));
            in_section = true;
        } else {
            return Err(malformed(file, number, "expected a %SECTION% header"));
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::super::read_package_databases;
    use super::super::test_support::TempRoot;
    use crate::Error;
    use std::path::Path;

    const LOCAL: &str = "var/lib/pacman/local";

    fn package(root: &TempRoot, dir: &str, desc: &str, files: &[u8]) {
        root.write(&format!("{LOCAL}/{dir}/desc"), desc);
        root.write(&format!("{LOCAL}/{dir}/files"), files);
    }

    #[test]
    fn local_database() {
        let root = TempRoot::new("pacman");
        root.write(&format!("{LOCAL}/ALPM_DB_VERSION"), "9\n");
        package(
            &root,
            "gcc-libs-14.2.1-1",
            "%NAME%\ngcc-libs\n\n%VERSION%\n14.2.1-1\n\n%BASE%\ngcc\n\n",
            b"%FILES%\nusr/\nusr/lib/\nusr/lib/libstdc++.so.6\nusr/share/%odd%\n\n%BACKUP%\netc/x\tabc\n\n",
        );
        package(
            &root,
            "bash-5.2-1",
            "%NAME%\nbash\n\n%VERSION%\n5.2-1\n",
            b"%FILES%\nusr/\nusr/bin/\nusr/bin/bash\nusr/share/caf\xe9\n",
        );
        root.mkdir("usr/bin");
        root.symlink("bin", "usr/bin");
        let o = root.read_both();
        let owner = |p: &str| o.owner(Path::new(p));
        assert_eq!(owner("usr/lib/libstdc++.so.6"), Some("pacman:gcc"));
        assert_eq!(owner("usr/lib"), Some("pacman:gcc"));
        assert_eq!(owner("usr/share/%odd%"), Some("pacman:gcc"));
        assert_eq!(owner("usr/bin/bash"), Some("pacman:bash"));
        assert_eq!(owner("usr"), Some("pacman:bash"));
        assert_eq!(owner("etc/x"), None, "%BACKUP% is not %FILES%");
        use std::os::unix::ffi::OsStrExt;
        let cafe = std::ffi::OsStr::from_bytes(b"usr/share/caf\xe9");
        assert_eq!(o.owner(Path::new(cafe)), Some("pacman:bash"));
        assert_eq!(
            o.components().collect::<Vec<_>>(),
            ["pacman:bash", "pacman:gcc"]
        );
        assert_eq!(o.len(), 7);
        let packages = root.packages();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "bash");
        assert_eq!(packages[0].version.as_deref(), Some("5.2-1"));
        assert_eq!(packages[0].source.as_deref(), Some("bash"));
        assert_eq!(packages[1].name, "gcc-libs");
        assert_eq!(packages[1].source.as_deref(), Some("gcc"));
        assert_eq!(packages[1].paths.len(), 4);
    }

    #[test]
    fn desc_architecture_and_licences() {
        let root = TempRoot::new("pacman-desc");
        package(
            &root,
            "zlib-1.3-1",
            "%NAME%\nzlib\n\n%VERSION%\n1:1.3-1\n\n%ARCH%\nx86_64\n\n%LICENSE%\nZlib\nMIT\n\n",
            b"%FILES%\nusr/\n",
        );
        let packages = root.packages();
        assert_eq!(packages[0].version.as_deref(), Some("1:1.3-1"));
        assert_eq!(packages[0].architecture.as_deref(), Some("x86_64"));
        assert_eq!(packages[0].license.as_deref(), Some("Zlib AND MIT"));
    }

    #[test]
    fn malformed_entries_are_errors_with_the_path() {
        let root = TempRoot::new("pacman-bad");
        package(&root, "a-1-1", "%NAME%\na\n\nstray\n", b"%FILES%\nusr/\n");
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::PackageDb { path, line: 4, .. } if path.ends_with("a-1-1/desc")),
            "{err:?}"
        );

        package(&root, "a-1-1", "%VERSION%\n1-1\n", b"%FILES%\nusr/\n");
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::PackageDb { path, message, .. }
                if path.ends_with("a-1-1/desc") && message.contains("%NAME%")),
            "{err:?}"
        );

        std::fs::remove_file(root.path().join(LOCAL).join("a-1-1/files")).unwrap();
        root.write(&format!("{LOCAL}/a-1-1/desc"), "%NAME%\na\n");
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, .. } if path.ends_with("a-1-1/files")),
            "{err:?}"
        );
    }
}
