//! apk (Alpine): `lib/apk/db/installed`.
//!
//! One record per package, records separated by a blank line, each line
//! `<letter>:<value>`. Read here: `P:` package name, `o:` origin (the source
//! package; the component is `apk:<origin>`, or `apk:<name>` without one),
//! `V:` version, `A:` architecture, `L:` licence, `F:` a directory
//! (relative to the root) and `R:` a file in the last `F:` directory. Other
//! letters are skipped.

use std::path::Path;

use super::{
    database_path, lines, malformed, push_component, utf8, Database, InstalledPackage,
    OwnershipBuilder, RootFs,
};
use crate::Result;

/// Where apk keeps its database; newer layouts move it under `usr/`.
const INSTALLED: [&[u8]; 2] = [b"lib/apk/db/installed", b"usr/lib/apk/db/installed"];

pub(super) fn read(tree: &mut RootFs, out: &mut OwnershipBuilder) -> Result<()> {
    for rel in INSTALLED {
        if let Some((path, data)) = tree.read_file(rel)? {
            for (package, paths) in parse(&path, &data)? {
                let by = out.package(package, &path);
                for p in paths {
                    let resolved = tree.resolve_parent(&p)?;
                    out.claim_listed(resolved, by);
                }
            }
            // On a usrmerged system both names are one file: read it once.
            break;
        }
    }
    Ok(())
}

/// A package of the database and the paths it lists (normalised, not
/// resolved).
type Record = (InstalledPackage, Vec<Vec<u8>>);

/// The records of an installed database.
fn parse(file: &Path, data: &[u8]) -> Result<Vec<Record>> {
    #[derive(Default)]
    struct Fields<'a> {
        start: usize,
        name: Option<&'a str>,
        origin: Option<&'a str>,
        version: Option<&'a str>,
        architecture: Option<&'a str>,
        license: Option<&'a str>,
        build_time: Option<&'a str>,
        dir: Vec<u8>,
        paths: Vec<Vec<u8>>,
    }

    fn finish(file: &Path, r: Fields<'_>, out: &mut Vec<Record>) -> Result<()> {
        if r.start == 0 {
            return Ok(());
        }
        let Some(name) = r.name else {
            return Err(malformed(file, r.start, "record has no P: line"));
        };
        let origin = r.origin.filter(|o| !o.is_empty()).unwrap_or(name);
        let some = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(str::to_owned);
        let package = InstalledPackage {
            database: Database::Apk,
            name: name.to_owned(),
            version: some(r.version),
            architecture: some(r.architecture),
            source: Some(origin.to_owned()),
            license: some(r.license),
            component: format!("apk:{origin}"),
            paths: Vec::new(),
            build_time: r.build_time.and_then(|t| t.parse().ok()),
            changelog_times: Vec::new(),
        };
        out.push((package, r.paths));
        Ok(())
    }

    let mut out = Vec::new();
    let mut r = Fields::default();
    for (number, line) in lines(data) {
        if line.is_empty() {
            finish(file, std::mem::take(&mut r), &mut out)?;
            continue;
        }
        let [key, b':', value @ ..] = line else {
            return Err(malformed(file, number, "expected \"<letter>:<value>\""));
        };
        if r.start == 0 {
            r.start = number;
        }
        match key {
            b'P' => r.name = Some(utf8(value, file, number)?),
            b'o' => r.origin = Some(utf8(value, file, number)?),
            b'V' => r.version = Some(utf8(value, file, number)?),
            b'A' => r.architecture = Some(utf8(value, file, number)?),
            b'L' => r.license = Some(utf8(value, file, number)?),
            b't' => r.build_time = Some(utf8(value, file, number)?),
            b'F' => {
                r.dir = database_path(value, file, number)?;
                r.paths.push(r.dir.clone());
            }
            b'R' => {
                let name = database_path(value, file, number)?;
                let mut path = r.dir.clone();
                push_component(&mut path, &name);
                r.paths.push(path);
            }
            _ => {}
        }
    }
    finish(file, r, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::read_package_databases;
    use super::super::test_support::TempRoot;
    use crate::Error;
    use std::path::Path;

    const INSTALLED: &str = "\
C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
o:musl
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1def=
R:libc.musl-x86_64.so.1

C:Q1ghi=
P:busybox-binsh
V:1.36.1-r29
o:busybox
F:bin
R:sh
F:usr/share/doc

P:zlib
V:1.3.1-r1
F:usr/share/doc
F:usr/lib
R:libz.so.1
";

    #[test]
    fn installed_database() {
        let root = TempRoot::new("apk");
        root.write("lib/apk/db/installed", INSTALLED);
        root.mkdir("usr/bin");
        root.symlink("bin", "usr/bin");
        let o = root.read_both();
        let owner = |p: &str| o.owner(Path::new(p));
        assert_eq!(owner("lib/ld-musl-x86_64.so.1"), Some("apk:musl"));
        assert_eq!(owner("lib/libc.musl-x86_64.so.1"), Some("apk:musl"));
        assert_eq!(owner("lib"), Some("apk:musl"));
        // `o:` names the component; bin/ is a link to usr/bin here.
        assert_eq!(owner("usr/bin/sh"), Some("apk:busybox"));
        assert_eq!(owner("bin"), Some("apk:busybox"));
        // No `o:`: the package name.
        assert_eq!(owner("usr/lib/libz.so.1"), Some("apk:zlib"));
        assert_eq!(owner("usr/share/doc"), Some("apk:busybox"));
        assert_eq!(
            o.components().collect::<Vec<_>>(),
            ["apk:busybox", "apk:musl", "apk:zlib"]
        );
        assert_eq!(o.len(), 8);
    }

    #[test]
    fn packages_carry_version_architecture_origin_and_licence() {
        let root = TempRoot::new("apk-packages");
        root.write(
            "lib/apk/db/installed",
            format!("{INSTALLED}\nP:lic\nV:2-r0\nA:noarch\nL:MIT AND BSD-2-Clause\n"),
        );
        let packages = root.packages();
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["busybox-binsh", "lic", "musl", "zlib"]);
        let musl = &packages[2];
        assert_eq!(musl.version.as_deref(), Some("1.2.5-r0"));
        assert_eq!(musl.architecture.as_deref(), Some("x86_64"));
        assert_eq!(musl.source.as_deref(), Some("musl"));
        assert_eq!(
            musl.paths,
            [
                Path::new("lib"),
                Path::new("lib/ld-musl-x86_64.so.1"),
                Path::new("lib/libc.musl-x86_64.so.1")
            ]
        );
        assert_eq!(packages[0].source.as_deref(), Some("busybox"));
        assert_eq!(packages[0].architecture, None);
        assert_eq!(packages[1].license.as_deref(), Some("MIT AND BSD-2-Clause"));
        assert_eq!(packages[3].license, None);
        // Without the paths: the same packages.
        let o = root.read_both();
        assert_eq!(o.packages().len(), 4);
        assert!(o.packages().iter().all(|p| p.paths.is_empty()));
    }

    #[test]
    fn usr_lib_location() {
        let root = TempRoot::new("apk-usr");
        root.write("usr/lib/apk/db/installed", "P:a\nF:etc\nR:a.conf\n");
        let o = root.read_both();
        assert_eq!(o.owner(Path::new("etc/a.conf")), Some("apk:a"));
    }

    #[test]
    fn malformed_records_name_file_and_line() {
        let root = TempRoot::new("apk-bad");
        let cases: [(&[u8], usize); 4] = [
            (b"P:a\nF:etc\nthis is not a field\n", 3),
            (b"P:a\n\nV:1.0\nF:etc\n", 3),
            (b"P:a\nF:etc\nR:x\x00y\n", 3),
            (b"P:\xff\n", 1),
        ];
        for (data, line) in cases {
            root.write("lib/apk/db/installed", data);
            let err = read_package_databases(root.path()).unwrap_err();
            assert!(
                matches!(&err, Error::PackageDb { path, line: l, .. }
                    if *l == line && path == &root.path().join("lib/apk/db/installed")),
                "{err:?}"
            );
        }
    }
}
