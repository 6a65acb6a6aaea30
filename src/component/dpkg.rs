//! dpkg: `var/lib/dpkg/status`, `info/<package>[:<arch>].list`, `diversions`.
//!
//! The component of a package is `deb:<source package>`: the `Source:` field
//! without its `(version)`, or the `Package:` name when there is no `Source:`.
//!
//! A package counts when it is fully installed: its `Status:` is
//! `<want> ok installed`. The first word only says what the administrator
//! wants next (`install`, `hold`, `deinstall`, `purge`): a held package's
//! files are on disk like any other's, so that word is not checked. Packages
//! half-way through an operation (`unpacked`, `half-configured`, ...) and
//! removed ones (`config-files`, `not-installed`) are left out.
//!
//! Diversions are applied: when package P lists a path that another package
//! (or the administrator, `:`) diverted, P's file is at the diverted-to path.
//! Like dpkg, diversions match paths as written in the `.list` files, before
//! symbolic links are resolved.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{
    database_path, lines, malformed, utf8, Database, InstalledPackage, OwnershipBuilder, RootFs,
};
use crate::Result;

const STATUS: &[u8] = b"var/lib/dpkg/status";
const INFO: &[u8] = b"var/lib/dpkg/info";
const DIVERSIONS: &[u8] = b"var/lib/dpkg/diversions";

/// An installed package, from one paragraph of the status file.
struct Installed {
    package: String,
    architecture: Option<String>,
    version: Option<String>,
    source: String,
    component: String,
}

impl Installed {
    fn record(&self) -> InstalledPackage {
        InstalledPackage {
            database: Database::Dpkg,
            name: self.package.clone(),
            version: self.version.clone(),
            architecture: self.architecture.clone(),
            source: Some(self.source.clone()),
            license: None,
            component: self.component.clone(),
            paths: Vec::new(),
            build_time: None,
            changelog_times: Vec::new(),
        }
    }
}

/// A diversion: where files of other packages go, and who diverted.
struct Diversion {
    to: Vec<u8>,
    /// The diverting package; `None` for a local diversion (`:`), which
    /// applies to every package.
    by: Option<String>,
}

pub(super) fn read(tree: &mut RootFs, out: &mut OwnershipBuilder) -> Result<()> {
    let Some((status_path, status)) = tree.read_file(STATUS)? else {
        return Ok(());
    };
    let installed = parse_status(&status_path, &status)?;
    let diversions = match tree.read_file(DIVERSIONS)? {
        Some((path, data)) => parse_diversions(&path, &data)?,
        None => HashMap::new(),
    };
    // dpkg's own files about a package (var/lib/dpkg/info/NAME.EXT: list,
    // md5sums, postinst...) change with the package: they belong to it.
    let (info_dir, _) = tree.resolve_dir(INFO)?;
    let info_files: Vec<Vec<u8>> = tree.list(&info_dir)?.unwrap_or_default();
    let mut seen = HashSet::new();
    for package in &installed {
        let by = out.package(package.record(), &status_path);
        let id = by.component;
        for name in [
            package
                .architecture
                .as_ref()
                .map(|a| format!("{}:{a}", package.package)),
            Some(package.package.clone()),
        ]
        .into_iter()
        .flatten()
        {
            for f in &info_files {
                // NAME.EXT with an extension free of dots: python3's files are
                // not python3.11's.
                let is_its = f
                    .strip_prefix(name.as_bytes())
                    .and_then(|r| r.strip_prefix(b"."))
                    .is_some_and(|ext| !ext.is_empty() && !ext.contains(&b'.'));
                if is_its {
                    let mut path = info_dir.clone();
                    path.push(b'/');
                    path.extend_from_slice(f);
                    out.claim(path, id);
                }
            }
        }
        let mut names = Vec::with_capacity(2);
        if let Some(arch) = &package.architecture {
            names.push(format!("{}:{arch}.list", package.package));
        }
        names.push(format!("{}.list", package.package));
        for name in names {
            if !seen.insert(name.clone()) {
                continue;
            }
            let mut rel = INFO.to_vec();
            rel.push(b'/');
            rel.extend_from_slice(name.as_bytes());
            let Some((list_path, list)) = tree.read_file(&rel)? else {
                continue;
            };
            for (number, line) in lines(&list) {
                let mut path = database_path(line, &list_path, number)?;
                if let Some(d) = diversions.get(&path) {
                    if d.by.as_deref() != Some(package.package.as_str()) {
                        path = d.to.clone();
                    }
                }
                if path.is_empty() {
                    continue;
                }
                let resolved = tree.resolve_parent(&path)?;
                out.claim_listed(resolved, by);
            }
        }
    }
    Ok(())
}

/// The installed packages of a status file (deb822 paragraphs).
fn parse_status(file: &Path, data: &[u8]) -> Result<Vec<Installed>> {
    let mut out = Vec::new();
    let mut p = Paragraph::default();
    for (number, line) in lines(data) {
        if line.trim_ascii().is_empty() {
            out.extend(p.installed(file)?);
            p = Paragraph::default();
            continue;
        }
        p.read_line(file, number, line)?;
    }
    out.extend(p.installed(file)?);
    Ok(out)
}

/// The fields read of one paragraph of the status file.
#[derive(Default)]
struct Paragraph<'a> {
    /// The paragraph's first line; 0 before it starts.
    start: usize,
    package: Option<&'a str>,
    source: Option<&'a str>,
    architecture: Option<&'a str>,
    version: Option<&'a str>,
    status: Option<&'a str>,
}

impl<'a> Paragraph<'a> {
    /// Reads `line` (number `number` of `file`, not blank): a field, or the
    /// continuation of one.
    fn read_line(&mut self, file: &Path, number: usize, line: &'a [u8]) -> Result<()> {
        if line[0] == b' ' || line[0] == b'\t' {
            if self.start == 0 {
                return Err(malformed(file, number, "continuation line outside a field"));
            }
            return Ok(());
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(malformed(file, number, "expected \"Field: value\""));
        };
        if self.start == 0 {
            self.start = number;
        }
        if let Some(field) = self.field(&line[..colon]) {
            *field = Some(utf8(line[colon + 1..].trim_ascii(), file, number)?);
        }
        Ok(())
    }

    /// Where the value of the field `name` goes, if it is one read.
    fn field(&mut self, name: &[u8]) -> Option<&mut Option<&'a str>> {
        if name.eq_ignore_ascii_case(b"Package") {
            Some(&mut self.package)
        } else if name.eq_ignore_ascii_case(b"Source") {
            Some(&mut self.source)
        } else if name.eq_ignore_ascii_case(b"Architecture") {
            Some(&mut self.architecture)
        } else if name.eq_ignore_ascii_case(b"Version") {
            Some(&mut self.version)
        } else if name.eq_ignore_ascii_case(b"Status") {
            Some(&mut self.status)
        } else {
            None
        }
    }

    /// The package the paragraph describes, checked; `None` before the
    /// paragraph starts or when the package is not fully installed.
    fn installed(&self, file: &Path) -> Result<Option<Installed>> {
        if self.start == 0 {
            return Ok(None);
        }
        let Some(package) = self.package else {
            return Err(malformed(
                file,
                self.start,
                "paragraph has no Package field",
            ));
        };
        if !is_name(package) {
            return Err(malformed(
                file,
                self.start,
                format!("invalid package name {package:?}"),
            ));
        }
        if let Some(arch) = self.architecture {
            if !is_name(arch) {
                return Err(malformed(
                    file,
                    self.start,
                    format!("invalid architecture {arch:?} for package {package}"),
                ));
            }
        }
        let words: Vec<&str> = self.status.unwrap_or("").split_ascii_whitespace().collect();
        if !matches!(words.as_slice(), [_, "ok", "installed"]) {
            return Ok(None);
        }
        let source = self
            .source
            .and_then(|s| s.split_ascii_whitespace().next())
            .unwrap_or(package);
        Ok(Some(Installed {
            package: package.to_owned(),
            architecture: self.architecture.map(str::to_owned),
            version: self.version.filter(|v| !v.is_empty()).map(str::to_owned),
            source: source.to_owned(),
            component: format!("deb:{source}"),
        }))
    }
}

/// A package or architecture name: safe to put in a file name.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._~".contains(&b))
}

/// The diversions file: records of three lines (from, to, diverting package).
fn parse_diversions(file: &Path, data: &[u8]) -> Result<HashMap<Vec<u8>, Diversion>> {
    let mut out = HashMap::new();
    if data.is_empty() {
        return Ok(out);
    }
    let all: Vec<(usize, &[u8])> = lines(data).collect();
    let mut records = all.chunks_exact(3);
    for record in &mut records {
        let ((n_from, from), (n_to, to), (n_by, by)) = (record[0], record[1], record[2]);
        let from = database_path(from, file, n_from)?;
        let to = database_path(to, file, n_to)?;
        let by = utf8(by, file, n_by)?;
        let by = (by != ":").then(|| by.to_owned());
        out.insert(from, Diversion { to, by });
    }
    if let Some(&(number, _)) = records.remainder().last() {
        return Err(malformed(file, number, "incomplete diversion record"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TempRoot;
    use super::super::{read_package_databases, Ownership};
    use crate::Error;
    use std::path::Path;

    const STATUS: &str = "\
Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4
Source: glibc (2.36-9)
Description: GNU C Library
 continuation line: with a colon
 .

Package: coreutils
Status: install ok installed
Architecture: amd64

Package: bash
Status: hold ok installed
Architecture: amd64
Source: bash

Package: removed
Status: deinstall ok config-files
Architecture: amd64

Package: dash
Status: install ok installed
Architecture: amd64
";

    fn usrmerged_root(name: &str) -> TempRoot {
        let root = TempRoot::new(name);
        root.mkdir("usr/bin");
        root.mkdir("usr/lib/x86_64-linux-gnu");
        root.symlink("bin", "usr/bin");
        root.symlink("lib", "usr/lib");
        root.write("var/lib/dpkg/status", STATUS);
        root
    }

    fn owner<'a>(o: &'a Ownership, p: &str) -> Option<&'a str> {
        o.owner(Path::new(p))
    }

    #[test]
    fn dpkg_metadata_files_belong_to_their_package() {
        let root = usrmerged_root("dpkg-info");
        root.write("var/lib/dpkg/info/bash.list", "/bin/bash\n");
        root.write("var/lib/dpkg/info/bash.md5sums", "x");
        root.write("var/lib/dpkg/info/libc6:amd64.postinst", "x");
        root.write("var/lib/dpkg/info/bash.extra.list", "x");
        let o = root.read_both();
        assert_eq!(owner(&o, "var/lib/dpkg/info/bash.list"), Some("deb:bash"));
        assert_eq!(
            owner(&o, "var/lib/dpkg/info/bash.md5sums"),
            Some("deb:bash")
        );
        assert_eq!(
            owner(&o, "var/lib/dpkg/info/libc6:amd64.postinst"),
            Some("deb:glibc")
        );
        // Another package's file whose name starts with "bash.": not bash's.
        assert_eq!(owner(&o, "var/lib/dpkg/info/bash.extra.list"), None);
        assert_eq!(owner(&o, "var/lib/dpkg/status"), None);
    }

    #[test]
    fn status_lists_and_usrmerge() {
        let root = usrmerged_root("dpkg");
        root.write(
            "var/lib/dpkg/info/libc6:amd64.list",
            "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n/usr/share/doc\n",
        );
        root.write(
            "var/lib/dpkg/info/coreutils.list",
            "/.\n/bin\n/bin/ls\n/usr\n/usr/share/doc\n/usr/share/doc/coreutils\n",
        );
        root.write("var/lib/dpkg/info/bash.list", "/bin/bash\n/usr/share/doc\n");
        root.write("var/lib/dpkg/info/removed.list", "/usr/bin/removed\n");
        let o = root.read_both();

        // Source with a version, Source without one, no Source at all.
        assert_eq!(
            owner(&o, "usr/lib/x86_64-linux-gnu/libc.so.6"),
            Some("deb:glibc")
        );
        assert_eq!(owner(&o, "usr/bin/bash"), Some("deb:bash"));
        assert_eq!(owner(&o, "usr/bin/ls"), Some("deb:coreutils"));
        // The literal usrmerged path is not recorded: nothing lives there.
        assert_eq!(owner(&o, "bin/ls"), None);
        // A directory listed by several packages goes to the smallest name;
        // the symbolic links themselves are owned as listed.
        assert_eq!(owner(&o, "usr/share/doc"), Some("deb:bash"));
        assert_eq!(owner(&o, "usr/lib/x86_64-linux-gnu"), Some("deb:glibc"));
        assert_eq!(owner(&o, "bin"), Some("deb:coreutils"));
        assert_eq!(owner(&o, "lib"), Some("deb:glibc"));
        // A removed package's list is not read; dash has no list at all.
        assert_eq!(owner(&o, "usr/bin/removed"), None);
        assert_eq!(
            o.components().collect::<Vec<_>>(),
            ["deb:bash", "deb:coreutils", "deb:glibc"]
        );
        // Nine listed paths and the three .list files of installed packages.
        assert_eq!(o.len(), 12);
        // Every installed package, with what its paragraph says; a package
        // keeps what it lists (resolved), not dpkg's own files about it.
        let packages = root.packages();
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bash", "coreutils", "dash", "libc6"]);
        let libc = &packages[3];
        assert_eq!(libc.source.as_deref(), Some("glibc"));
        assert_eq!(libc.version.as_deref(), Some("2.36-9+deb12u4"));
        assert_eq!(packages[1].version, None);
        assert_eq!(libc.architecture.as_deref(), Some("amd64"));
        assert_eq!(libc.component, "deb:glibc");
        assert!(libc
            .paths
            .contains(&"usr/lib/x86_64-linux-gnu/libc.so.6".into()));
        assert!(!libc.paths.iter().any(|p| p.starts_with("var/lib/dpkg")));
        assert_eq!(packages[0].source.as_deref(), Some("bash"));
    }

    #[test]
    fn diversions_move_other_packages_files() {
        let root = usrmerged_root("dpkg-divert");
        root.write("var/lib/dpkg/info/dash.list", "/bin/sh\n/bin/dash\n");
        root.write("var/lib/dpkg/info/bash.list", "/bin/sh\n/bin/bash\n");
        root.write(
            "var/lib/dpkg/diversions",
            "/bin/sh\n/bin/sh.distrib\ndash\n/usr/bin/dash\n/usr/bin/dash.local\n:\n",
        );
        let o = root.read_both();
        // bash's /bin/sh went to sh.distrib; dash, the diverter, keeps /bin/sh.
        assert_eq!(owner(&o, "usr/bin/sh"), Some("deb:dash"));
        assert_eq!(owner(&o, "usr/bin/sh.distrib"), Some("deb:bash"));
        // A local diversion applies to everyone, matched on the literal path:
        // dash lists /bin/dash, not /usr/bin/dash, so it is not diverted.
        assert_eq!(owner(&o, "usr/bin/dash"), Some("deb:dash"));
        assert_eq!(owner(&o, "usr/bin/dash.local"), None);
    }

    #[test]
    fn malformed_status_names_file_and_line() {
        let root = TempRoot::new("dpkg-bad");
        let cases: [(&[u8], usize, &str); 5] = [
            (
                b"Package: a\nStatus: install ok installed\nno colon here\n",
                3,
                "Field",
            ),
            (b" leading continuation\n", 1, "continuation"),
            (b"Status: install ok installed\n\n", 1, "no Package"),
            (
                b"\n\nPackage: ../../etc/passwd\n",
                3,
                "invalid package name",
            ),
            (
                b"Package: a\nStatus: install ok installed\nSource: \xff\n",
                3,
                "UTF-8",
            ),
        ];
        for (status, line, needle) in cases {
            root.write("var/lib/dpkg/status", status);
            let err = read_package_databases(root.path()).unwrap_err();
            let Error::PackageDb {
                path,
                line: got,
                message,
            } = &err
            else {
                panic!("expected a PackageDb error, got {err:?}");
            };
            assert_eq!(path, &root.path().join("var/lib/dpkg/status"));
            assert_eq!(*got, line, "{message}");
            assert!(message.contains(needle), "{message}");
            assert!(err.to_string().contains("var/lib/dpkg/status:"), "{err}");
        }
    }

    #[test]
    fn malformed_lists_and_diversions_name_file_and_line() {
        let root = TempRoot::new("dpkg-bad-list");
        root.write(
            "var/lib/dpkg/status",
            "Package: a\nStatus: install ok installed\n",
        );
        root.write("var/lib/dpkg/info/a.list", b"/ok\n/bad\x00path\n");
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::PackageDb { path, line: 2, .. } if path.ends_with("info/a.list")),
            "{err:?}"
        );

        root.write("var/lib/dpkg/info/a.list", b"/ok\n");
        root.write("var/lib/dpkg/diversions", "/a\n/b\nx\n/c\n");
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::PackageDb { path, line: 4, .. } if path.ends_with("diversions")),
            "{err:?}"
        );
    }

    #[test]
    fn a_list_that_is_a_directory_is_an_io_error_with_its_path() {
        let root = TempRoot::new("dpkg-io");
        root.write(
            "var/lib/dpkg/status",
            "Package: a\nStatus: install ok installed\n",
        );
        root.mkdir("var/lib/dpkg/info/a.list");
        let err = read_package_databases(root.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, .. } if path.ends_with("info/a.list")),
            "{err:?}"
        );
    }
}
