//! Which package owns each path of a root file system.
//!
//! [`read_package_databases`] reads the package databases it finds under a
//! root (dpkg, apk, pacman, rpm) and returns an [`Ownership`]: a map from a
//! path relative to the root (`usr/bin/ls`, no leading `/`) to a component
//! name. Component names say where they come from:
//!
//! | database | file(s) read | component |
//! |---|---|---|
//! | dpkg | `var/lib/dpkg/status`, `var/lib/dpkg/info/*.list`, `var/lib/dpkg/diversions` | `deb:<source package>` |
//! | apk | `lib/apk/db/installed` (or `usr/lib/apk/db/installed`) | `apk:<origin>` |
//! | pacman | `var/lib/pacman/local/*/{desc,files}` | `pacman:<base>` |
//! | rpm | `usr/lib/sysimage/rpm/rpmdb.sqlite` (or `var/lib/rpm/rpmdb.sqlite`) | `rpm:<source rpm name>` |
//! | Python | `**/{site,dist}-packages/*.dist-info/{METADATA,RECORD}` | `pypi:<normalised name>` |
//! | npm | `**/node_modules/{NAME,@SCOPE/NAME}/package.json` | `npm:<name>` |
//!
//! Databases name paths as the package manager sees them. On a "usrmerged"
//! system `/bin` is a symbolic link to `usr/bin`, and dpkg still says
//! `/bin/ls`: the symbolic links among a path's *parent directories* are
//! resolved inside the root (the root is `/`; links never lead out of it),
//! and the path is recorded where the file really is, `usr/bin/ls`. The last
//! component is not followed: a database entry that is itself a symbolic
//! link names the link.
//!
//! The result is a pure function of the databases and the tree: when several
//! packages list the same path (a directory such as `usr/share/doc`, or a
//! file two packages both ship), the lexicographically smallest component
//! name owns it.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let ownership = chunkah::component::read_package_databases(Path::new("/srv/rootfs"))?;
//! println!("{} paths owned by {} components", ownership.len(), ownership.components().count());
//! if let Some(owner) = ownership.owner(Path::new("usr/bin/ls")) {
//!     println!("usr/bin/ls belongs to {owner}");
//! }
//! # Ok::<(), chunkah::Error>(())
//! ```

mod apk;
mod dpkg;
mod npm;
mod os_release;
mod pacman;
mod python;
mod rpm;
mod sqlite;
mod view;

pub use os_release::{read_os_release, OsRelease};
pub use view::{DirRoot, Node, RootView, TarRoot};

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Which component owns each path of a tree.
///
/// Paths are relative to the root of the tree, without a leading `/`
/// (`usr/bin/ls`). Directories listed by a package database are owned too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Distinct component names, sorted; each owns at least one path.
    names: Vec<String>,
    /// Path -> index into `names`. Ordered by path components, which is the
    /// order of a sorted depth-first walk.
    owners: BTreeMap<PathBuf, usize>,
    /// The installed packages the databases list, sorted.
    packages: Vec<InstalledPackage>,
    /// What was wrong but did not stop the reading, each naming the file.
    warnings: Vec<String>,
}

/// The package databases chunkah reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Database {
    /// dpkg (Debian, Ubuntu).
    Dpkg,
    /// rpm (Fedora, RHEL, openSUSE).
    Rpm,
    /// apk (Alpine).
    Apk,
    /// pacman (Arch).
    Pacman,
    /// Python distributions (`.dist-info`, as pip installs them).
    Python,
    /// npm packages (`node_modules`).
    Npm,
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Database::Dpkg => "dpkg",
            Database::Rpm => "rpm",
            Database::Apk => "apk",
            Database::Pacman => "pacman",
            Database::Python => "python",
            Database::Npm => "npm",
        })
    }
}

/// One installed package, as its database records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledPackage {
    /// The database that lists it.
    pub database: Database,
    /// Its name (`libc6`, `bash`).
    pub name: String,
    /// Its version as the database writes it (`1:5.36.0-7`,
    /// `5.2.26-3.fc40`); `None` when the record has none.
    pub version: Option<String>,
    /// The architecture it was built for (`amd64`, `x86_64`, `noarch`).
    pub architecture: Option<String>,
    /// The source package it was built from (its name, without version).
    pub source: Option<String>,
    /// The licence the database records, verbatim (dpkg records none).
    pub license: Option<String>,
    /// The component its files belong to (`deb:glibc`).
    pub component: String,
    /// The paths it lists, resolved in the tree, relative, sorted: read by
    /// [`read_packages_in`] only (empty from [`read_package_databases_in`]).
    pub paths: Vec<PathBuf>,
    /// When it was built, seconds since the epoch, if the database records
    /// it (rpm's BUILDTIME, pacman's %BUILDDATE%, apk's `t:`).
    pub build_time: Option<i64>,
    /// When its changelog entries were written, as the database lists them
    /// (rpm's CHANGELOGTIME, newest first); empty where it records none.
    pub changelog_times: Vec<i64>,
}

/// Sorts `packages` as [`Ownership::packages`] lists them: by database,
/// name, version and architecture.
pub fn sort_packages(packages: &mut [InstalledPackage]) {
    packages.sort_by(|a, b| {
        (a.database, &a.name, &a.version, &a.architecture).cmp(&(
            b.database,
            &b.name,
            &b.version,
            &b.architecture,
        ))
    });
}

impl Ownership {
    /// The component that owns `path`, if any.
    ///
    /// `path` is relative to the root; a leading `/` is ignored, and so are
    /// repeated and trailing slashes (`usr//bin/` is `usr/bin`).
    pub fn owner(&self, path: &Path) -> Option<&str> {
        let path = path.strip_prefix("/").unwrap_or(path);
        self.owners.get(path).map(|&i| self.names[i].as_str())
    }

    /// The component `path` is grouped with: its owner, or for a file
    /// generated from an owned source, the source's owner (Python's
    /// `DIR/__pycache__/NAME.TAG.pyc`, which installers compile after the
    /// package manager wrote `DIR/NAME.py`).
    pub fn component_of(&self, path: &Path) -> Option<&str> {
        self.owner(path)
            .or_else(|| generated_from(path).and_then(|source| self.owner(&source)))
    }

    /// The number of owned paths.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether no path is owned.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The distinct component names, sorted.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The installed packages, sorted by database, name, version and
    /// architecture.
    pub fn packages(&self) -> &[InstalledPackage] {
        &self.packages
    }

    /// What was wrong in the databases but did not stop the reading (a
    /// package that records no version; with [`read_packages_in`], a
    /// database that does not parse and was left out), each naming the
    /// file and the cause.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every owned path with its owner, sorted by path (component by
    /// component, the order of a sorted depth-first walk).
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.owners
            .iter()
            .map(|(p, &i)| (p.as_path(), self.names[i].as_str()))
    }
}

/// The source a generated file was made from: `DIR/NAME.py` for
/// `DIR/__pycache__/NAME.TAG.pyc` (`TAG` such as `cpython-311` or
/// `cpython-311.opt-1`); `None` for other paths.
pub fn generated_from(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let cache = path.parent()?;
    if cache.file_name()? != "__pycache__" {
        return None;
    }
    let stem = name.strip_suffix(".pyc")?;
    let (module, tag) = stem.split_once('.')?;
    if module.is_empty() || tag.is_empty() {
        return None;
    }
    Some(cache.parent()?.join(format!("{module}.py")))
}

/// Builds an [`Ownership`] from `(path, component)` pairs, with the same rules
/// as the database readers: paths are made relative (no leading, trailing or
/// repeated `/`, no `.` components; the root itself is dropped) and a path
/// claimed twice goes to the smallest component name. Symbolic links are not
/// resolved: there is no tree to resolve them in.
impl<P: AsRef<Path>, S: Into<String>> FromIterator<(P, S)> for Ownership {
    fn from_iter<I: IntoIterator<Item = (P, S)>>(iter: I) -> Self {
        let mut builder = OwnershipBuilder::default();
        for (path, name) in iter {
            let id = builder.component(name.into());
            builder.claim(normalise(path.as_ref().as_os_str().as_bytes()), id);
        }
        builder.finish()
    }
}

/// Reads every package database found under `root` and says which component
/// owns each path.
///
/// Looks for dpkg (`var/lib/dpkg/status`), apk (`lib/apk/db/installed`),
/// pacman (`var/lib/pacman/local`) and rpm
/// (`usr/lib/sysimage/rpm/rpmdb.sqlite`, `var/lib/rpm/rpmdb.sqlite`); a root
/// with none of them gives an empty [`Ownership`], not an error. Database
/// files are found through the tree's own symbolic links, resolved inside
/// `root`.
///
/// # Errors
///
/// [`Error::Io`] when `root` is not a readable directory or a database file
/// cannot be read, is not a readable SQLite file (rpm), or is an rpm database
/// in a format other than sqlite; [`Error::PackageDb`], naming the file and
/// line (for rpm, the package's row), when a database does not parse.
pub fn read_package_databases(root: &Path) -> Result<Ownership> {
    // A root that is not there is a mistake, not a tree without databases.
    read_package_databases_in(&DirRoot::open(root)?)
}

/// [`read_package_databases`] for a root that has been walked into `tree`
/// already: the directories language packages are looked for in are the
/// walk's, not listed again.
pub fn read_package_databases_walked(root: &Path, tree: &crate::walk::Tree) -> Result<Ownership> {
    read_package_databases_in(&DirRoot::walked(root, tree)?)
}

/// [`read_package_databases`] for a root file system held in tar streams
/// (a tarball, an image's layers): the database files are read where the
/// tar streams hold them, nothing is copied.
pub fn read_package_databases_in_tar(
    tree: &crate::walk::Tree,
    content: &crate::walk::TarContent,
) -> Result<Ownership> {
    read_package_databases_in(&TarRoot::new(tree, content))
}

/// [`read_package_databases`] for any [`RootView`].
pub fn read_package_databases_in(view: &dyn RootView) -> Result<Ownership> {
    read_all(view, OwnershipBuilder::default())
}

/// [`read_package_databases_in`], each package also with the paths it
/// lists ([`InstalledPackage::paths`]), for an inventory of the tree.
///
/// A database that cannot be read or does not parse is left out, with a
/// warning naming the file and the cause ([`Ownership::warnings`]): an
/// inventory of what the other databases list is still one.
pub fn read_packages_in(view: &dyn RootView) -> Result<Ownership> {
    read_all(
        view,
        OwnershipBuilder {
            keep_paths: true,
            lenient: true,
            ..OwnershipBuilder::default()
        },
    )
}

/// A database reader: claims what its database lists.
type Reader = fn(&mut RootFs, &mut OwnershipBuilder) -> Result<()>;

/// The readers, in the order they are read.
const READERS: [(Database, Reader); 6] = [
    (Database::Dpkg, dpkg::read),
    (Database::Apk, apk::read),
    (Database::Pacman, pacman::read),
    (Database::Rpm, rpm::read),
    (Database::Python, python::read),
    (Database::Npm, npm::read),
];

fn read_all(view: &dyn RootView, mut builder: OwnershipBuilder) -> Result<Ownership> {
    let mut tree = RootFs::new(view);
    for (database, read) in READERS {
        if !builder.lenient {
            read(&mut tree, &mut builder)?;
            continue;
        }
        // What a database that fails half-way claimed is taken back.
        let before = builder.clone();
        if let Err(e) = read(&mut tree, &mut builder) {
            builder = before;
            builder
                .warnings
                .push(format!("{e}; the {database} database is left out"));
        }
    }
    Ok(builder.finish())
}

/// Collects claims; the smallest component name wins a contested path.
#[derive(Clone, Default)]
struct OwnershipBuilder {
    names: Vec<String>,
    ids: HashMap<String, usize>,
    owners: HashMap<Vec<u8>, usize>,
    packages: Vec<InstalledPackage>,
    /// Whether each package keeps the paths it lists.
    keep_paths: bool,
    /// Whether a database that fails is left out with a warning (else the
    /// reading fails).
    lenient: bool,
    warnings: Vec<String>,
}

/// Who lists a path: a package and its component.
#[derive(Clone, Copy, Debug)]
struct Lister {
    component: usize,
    package: usize,
}

impl OwnershipBuilder {
    /// The id of component `name`, interned.
    fn component(&mut self, name: String) -> usize {
        match self.ids.entry(name) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let id = self.names.len();
                self.names.push(e.key().clone());
                e.insert(id);
                id
            }
        }
    }

    /// Records an installed package, read from `file`; what it lists is
    /// claimed through the returned [`Lister`]. A package without a version
    /// is kept, with a warning.
    fn package(&mut self, package: InstalledPackage, file: &Path) -> Lister {
        if package.version.is_none() {
            self.warnings.push(format!(
                "{}: package {} records no version",
                file.display(),
                package.name
            ));
        }
        let component = self.component(package.component.clone());
        self.packages.push(package);
        Lister {
            component,
            package: self.packages.len() - 1,
        }
    }

    /// Records that a package lists `path` (normalised, relative): its
    /// component claims it, and the package keeps it when paths are kept.
    fn claim_listed(&mut self, path: Vec<u8>, by: Lister) {
        if self.keep_paths && !path.is_empty() {
            let kept = PathBuf::from(OsStr::from_bytes(&path));
            self.packages[by.package].paths.push(kept);
        }
        self.claim(path, by.component);
    }

    /// Records that component `id` lists `path` (normalised, relative); the
    /// root (`""`) is never owned.
    fn claim(&mut self, path: Vec<u8>, id: usize) {
        if path.is_empty() {
            return;
        }
        match self.owners.entry(path) {
            Entry::Occupied(mut e) => {
                if self.names[id] < self.names[*e.get()] {
                    e.insert(id);
                }
            }
            Entry::Vacant(e) => {
                e.insert(id);
            }
        }
    }

    fn finish(self) -> Ownership {
        // Keep the names that own something, sorted, and renumber.
        let mut used = vec![false; self.names.len()];
        for &id in self.owners.values() {
            used[id] = true;
        }
        let mut order: Vec<usize> = (0..self.names.len()).filter(|&i| used[i]).collect();
        order.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        let mut renumber = vec![0; self.names.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old] = new;
        }
        let owners = self
            .owners
            .into_iter()
            .map(|(path, id)| (PathBuf::from(OsStr::from_bytes(&path)), renumber[id]))
            .collect();
        let mut names = self.names;
        let names = order
            .iter()
            .map(|&i| std::mem::take(&mut names[i]))
            .collect();
        let mut packages = self.packages;
        for p in &mut packages {
            p.paths.sort();
            p.paths.dedup();
        }
        sort_packages(&mut packages);
        Ownership {
            names,
            owners,
            packages,
            warnings: self.warnings,
        }
    }
}

/// The longest path a database may name, in bytes (Linux's `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;

/// How many symbolic links one resolution step follows before giving up
/// (Linux's limit for a whole path lookup).
const MAX_LINKS: usize = 40;

/// The largest package database file read (a text database or an rpm
/// sqlite file), in bytes.
const MAX_DATABASE_BYTES: u64 = 1 << 30;

/// A root file system, with symbolic links resolved inside it.
///
/// Paths are bytes relative to the root, components separated by one `/`,
/// `""` being the root itself.
struct RootFs<'v> {
    view: &'v dyn RootView,
    /// Literal directory -> (resolved directory, resolution complete).
    dirs: HashMap<Vec<u8>, (Vec<u8>, bool)>,
    /// Where language package managers keep their packages, found once.
    language: Option<LanguageDirs>,
}

/// The directories language package managers install into, anywhere in a
/// tree: found by one walk of its directories (symbolic links not
/// followed; `proc`, `sys` and `dev` at the root skipped).
#[derive(Clone, Debug, Default)]
struct LanguageDirs {
    /// `site-packages` and `dist-packages` directories.
    python: Vec<Vec<u8>>,
    /// `node_modules` directories not inside another (those are read with
    /// the package that holds them).
    npm: Vec<Vec<u8>>,
}

/// How deep the walk for [`LanguageDirs`] goes.
const MAX_LANGUAGE_DEPTH: usize = 32;

impl LanguageDirs {
    fn find(view: &dyn RootView) -> Result<Self> {
        let mut found = LanguageDirs::default();
        let mut pending: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0)];
        while let Some((dir, depth)) = pending.pop() {
            for name in view.subdirs(&dir)?.unwrap_or_default() {
                if dir.is_empty() && matches!(name.as_slice(), b"proc" | b"sys" | b"dev") {
                    continue;
                }
                let mut p = dir.clone();
                push_component(&mut p, &name);
                match name.as_slice() {
                    b"site-packages" | b"dist-packages" => found.python.push(p),
                    b"node_modules" => found.npm.push(p),
                    _ if depth < MAX_LANGUAGE_DEPTH => pending.push((p, depth + 1)),
                    _ => {}
                }
            }
        }
        found.python.sort();
        found.npm.sort();
        Ok(found)
    }
}

impl<'v> RootFs<'v> {
    fn new(view: &'v dyn RootView) -> Self {
        RootFs {
            view,
            dirs: HashMap::new(),
            language: None,
        }
    }

    /// Where language package managers keep their packages.
    fn language_dirs(&mut self) -> Result<&LanguageDirs> {
        if self.language.is_none() {
            self.language = Some(LanguageDirs::find(self.view)?);
        }
        Ok(self.language.as_ref().expect("just found"))
    }

    /// The relative path `rel` as named in messages.
    fn host_path(&self, rel: &[u8]) -> PathBuf {
        self.view.name(rel)
    }

    /// What is at the resolved path `rel`.
    fn node(&self, rel: &[u8]) -> Result<Option<Node>> {
        self.view.node(rel)
    }

    /// The names in the resolved directory `rel`, sorted.
    fn list(&self, rel: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        self.view.list(rel)
    }

    /// Resolves the symbolic links among the parent directories of `rel`, but
    /// not its last component: where a database entry really is.
    ///
    /// A loop of links leaves the path partly resolved; that is not an error
    /// here, since the entry is only named, never opened.
    fn resolve_parent(&mut self, rel: &[u8]) -> Result<Vec<u8>> {
        Ok(self.resolve(rel, false)?.0)
    }

    /// Resolves `rel` (normalised) inside the root. Returns the resolved path
    /// and whether resolution completed (false when a link loop was cut).
    fn resolve(&mut self, rel: &[u8], follow_last: bool) -> Result<(Vec<u8>, bool)> {
        if rel.is_empty() {
            return Ok((Vec::new(), true));
        }
        if rel.split(|&b| b == b'/').any(|c| c == b"..") {
            // Never seen in a real database; resolve it without the cache.
            return self.follow(b"", rel, follow_last);
        }
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&rel[..0], rel),
        };
        let (dir, dir_complete) = self.resolve_dir(parent)?;
        let (path, complete) = self.follow(&dir, name, follow_last)?;
        Ok((path, dir_complete && complete))
    }

    /// Resolves directory `dir` (normalised, no `..`) with every component
    /// followed, caching each prefix.
    fn resolve_dir(&mut self, dir: &[u8]) -> Result<(Vec<u8>, bool)> {
        if dir.is_empty() {
            return Ok((Vec::new(), true));
        }
        if let Some(hit) = self.dirs.get(dir) {
            return Ok(hit.clone());
        }
        // Ends of each prefix: `a`, `a/b`, `a/b/c`.
        let ends: Vec<usize> = dir
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .chain(std::iter::once(dir.len()))
            .collect();
        // The longest prefix already resolved.
        let mut start = ends.len();
        while start > 0 && !self.dirs.contains_key(&dir[..ends[start - 1]]) {
            start -= 1;
        }
        let (mut cur, mut complete) = match start {
            0 => (Vec::new(), true),
            n => self.dirs[&dir[..ends[n - 1]]].clone(),
        };
        for k in start..ends.len() {
            let from = if k == 0 { 0 } else { ends[k - 1] + 1 };
            let (next, done) = self.follow(&cur, &dir[from..ends[k]], true)?;
            cur = next;
            complete &= done;
            self.dirs
                .insert(dir[..ends[k]].to_vec(), (cur.clone(), complete));
        }
        Ok((cur, complete))
    }

    /// Walks `rest` (relative, `/`-separated) from `base`, a resolved
    /// directory, following symbolic links inside the root: an absolute
    /// target starts again at the root, `..` never climbs above it. The last
    /// component is followed only if `follow_last`.
    fn follow(&self, base: &[u8], rest: &[u8], follow_last: bool) -> Result<(Vec<u8>, bool)> {
        let mut cur = base.to_vec();
        // Components still to walk, the next one last.
        let mut pending: Vec<Vec<u8>> = rest
            .split(|&b| b == b'/')
            .rev()
            .map(<[u8]>::to_vec)
            .collect();
        let mut links = 0;
        // Once a component is missing, nothing below it can be a link.
        let mut exists = true;
        while let Some(component) = pending.pop() {
            match component.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    pop_component(&mut cur);
                    continue;
                }
                _ => {}
            }
            push_component(&mut cur, &component);
            if !exists || (pending.is_empty() && !follow_last) {
                continue;
            }
            // Missing, or below a link whose resolution was cut (a loop):
            // nothing below it resolves.
            let target = match self.view.node(&cur)? {
                None => {
                    exists = false;
                    continue;
                }
                Some(Node::Symlink(target)) => target,
                Some(_) => continue,
            };
            if links == MAX_LINKS {
                // A loop, or a chain too long to be honest: keep the rest as
                // it is written.
                while let Some(c) = pending.pop() {
                    push_component(&mut cur, &c);
                }
                return Ok((cur, false));
            }
            links += 1;
            let target = target.as_slice();
            pop_component(&mut cur);
            if target.starts_with(b"/") {
                cur.clear();
            }
            pending.extend(target.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
        }
        Ok((cur, true))
    }

    /// Reads the file at `rel` (normalised), following symbolic links inside
    /// the root. `None` if it does not exist. Also returns the host path read,
    /// for error messages.
    fn read_file(&mut self, rel: &[u8]) -> Result<Option<(PathBuf, Vec<u8>)>> {
        let (resolved, complete) = self.resolve(rel, true)?;
        let host = self.host_path(&resolved);
        if !complete {
            return Err(Error::io(host, too_many_links()));
        }
        match self.view.read(&resolved, MAX_DATABASE_BYTES)? {
            Some(data) if data.len() as u64 > MAX_DATABASE_BYTES => Err(Error::malformed(
                host.display(),
                format!("larger than {MAX_DATABASE_BYTES} bytes: not a package database"),
            )),
            Some(data) => Ok(Some((host, data))),
            None => Ok(None),
        }
    }

    /// The names in directory `rel` (normalised), sorted, following symbolic
    /// links inside the root. `None` if it does not exist.
    fn read_dir(&mut self, rel: &[u8]) -> Result<Option<Listing>> {
        let (resolved, complete) = self.resolve(rel, true)?;
        let host = self.host_path(&resolved);
        if !complete {
            return Err(Error::io(host, too_many_links()));
        }
        let Some(names) = self.view.list(&resolved)? else {
            return Ok(None);
        };
        Ok(Some(Listing {
            dir: resolved,
            names,
        }))
    }
}

/// A directory's entries.
struct Listing {
    /// The directory, resolved inside the root.
    dir: Vec<u8>,
    /// The names of its entries, sorted.
    names: Vec<Vec<u8>>,
}

fn too_many_links() -> io::Error {
    io::Error::other("too many levels of symbolic links inside the root")
}

/// Appends `component` to the relative path `path`.
fn push_component(path: &mut Vec<u8>, component: &[u8]) {
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(component);
}

/// Removes the last component of the relative path `path`; the root stays
/// the root.
fn pop_component(path: &mut Vec<u8>) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => path.truncate(i),
        None => path.clear(),
    }
}

/// `path` made relative: no leading, trailing or repeated `/`, no `.`
/// components. `""` is the root.
fn normalise(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for component in path.split(|&b| b == b'/') {
        if !component.is_empty() && component != b"." {
            push_component(&mut out, component);
        }
    }
    out
}

/// A path named by a database, normalised; an error for paths no file system
/// could hold (a NUL byte, longer than `PATH_MAX`).
fn database_path(raw: &[u8], file: &Path, line: usize) -> Result<Vec<u8>> {
    if raw.contains(&0) {
        return Err(malformed(file, line, "path contains a NUL byte"));
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(malformed(
            file,
            line,
            format!("path longer than {MAX_PATH_BYTES} bytes"),
        ));
    }
    Ok(normalise(raw))
}

/// The lines of a database file, numbered from 1. A final newline does not
/// start another line.
fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line))
}

/// A field value that must be text (a package name).
fn utf8<'a>(value: &'a [u8], file: &Path, line: usize) -> Result<&'a str> {
    std::str::from_utf8(value).map_err(|_| malformed(file, line, "value is not UTF-8"))
}

fn malformed(file: &Path, line: usize, message: impl Into<String>) -> Error {
    Error::PackageDb {
        path: file.to_path_buf(),
        line,
        message: message.into(),
    }
}

#[cfg(test)]
mod test_support {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory under the system's temporary directory, removed on drop.
    pub(crate) struct TempRoot(PathBuf);

    impl TempRoot {
        pub(crate) fn new(name: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "chunkah-component-{}-{n}-{name}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempRoot(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }

        /// Writes `data` to `rel`, creating parent directories.
        pub(crate) fn write(&self, rel: &str, data: impl AsRef<[u8]>) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }

        pub(crate) fn mkdir(&self, rel: &str) {
            std::fs::create_dir_all(self.0.join(rel)).unwrap();
        }

        pub(crate) fn symlink(&self, rel: &str, target: &str) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, path).unwrap();
        }
    }

    impl TempRoot {
        /// The ownership read from the directory, checked to be the same
        /// when the tree is read from a tarball of it instead.
        pub(crate) fn read_both(&self) -> super::Ownership {
            let from_dir = super::read_package_databases(&self.0).unwrap();
            let mut tarball = tar::Builder::new(Vec::new());
            tarball.follow_symlinks(false);
            tarball.append_dir_all(".", &self.0).unwrap();
            let bytes = tarball.into_inner().unwrap();
            let file = self.0.with_extension("tar");
            std::fs::write(&file, bytes).unwrap();
            let scratch = std::env::temp_dir();
            let (tree, content) = crate::walk::walk_tar(&file, &scratch).unwrap();
            std::fs::remove_file(&file).unwrap();
            let from_tar = super::read_package_databases_in_tar(&tree, &content).unwrap();
            // Warnings name the database file where it is: on disk, or in
            // the tarball.
            let without_warnings = |o: &super::Ownership| super::Ownership {
                warnings: Vec::new(),
                ..o.clone()
            };
            assert_eq!(
                without_warnings(&from_dir),
                without_warnings(&from_tar),
                "a directory and a tarball of it differ"
            );
            assert_eq!(from_dir.warnings.len(), from_tar.warnings.len());
            from_dir
        }
    }

    impl TempRoot {
        /// The packages read from the directory with the paths they list.
        pub(crate) fn packages(&self) -> Vec<super::InstalledPackage> {
            let view = super::DirRoot::open(&self.0).unwrap();
            super::read_packages_in(&view).unwrap().packages().to_vec()
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::TempRoot;
    use super::*;

    /// An inventory read leaves out a database that fails half-way (its
    /// claims taken back) with a warning, and warns of a package with no
    /// version; the strict read fails on the same tree.
    #[test]
    fn an_inventory_read_leaves_a_broken_database_out_with_a_warning() {
        let root = TempRoot::new("lenient");
        root.write(
            "var/lib/dpkg/status",
            "Package: a\nStatus: install ok installed\nVersion: 1\n\n\
             Package: b\nStatus: install ok installed\n",
        );
        root.write("var/lib/dpkg/info/a.list", "/usr/bin/a\n");
        root.write("usr/bin/a", "a");
        // The first record is good, the second is not.
        root.write(
            "lib/apk/db/installed",
            "P:musl\nV:1.2.5-r0\nF:lib\nR:libc.so\n\nP:bad\nno colon\n",
        );
        assert!(matches!(
            read_package_databases(root.path()),
            Err(Error::PackageDb { .. })
        ));
        let read = read_packages_in(&DirRoot::open(root.path()).unwrap()).unwrap();
        let names: Vec<&str> = read.packages().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"], "apk's musl is taken back");
        assert_eq!(read.owner(Path::new("lib/libc.so")), None);
        assert_eq!(read.owner(Path::new("usr/bin/a")), Some("deb:a"));
        // Without the bad record, musl claims it.
        root.write(
            "lib/apk/db/installed",
            "P:musl\nV:1.2.5-r0\nF:lib\nR:libc.so\n",
        );
        let good = read_package_databases(root.path()).unwrap();
        assert!(good.owner(Path::new("lib/libc.so")).is_some());
        let warnings = read.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].ends_with("var/lib/dpkg/status: package b records no version"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("lib/apk/db/installed")
                && warnings[1].ends_with("; the apk database is left out"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_root_without_databases_owns_nothing() {
        let root = TempRoot::new("empty");
        root.mkdir("usr/bin");
        root.write("usr/bin/ls", "x");
        let ownership = root.read_both();
        assert!(ownership.is_empty());
        assert_eq!(ownership.len(), 0);
        assert_eq!(ownership.components().count(), 0);
    }

    #[test]
    fn compiled_python_files_join_their_source() {
        assert_eq!(
            generated_from(Path::new(
                "usr/lib/python3.11/__pycache__/os.cpython-311.pyc"
            )),
            Some(PathBuf::from("usr/lib/python3.11/os.py"))
        );
        assert_eq!(
            generated_from(Path::new("a/__pycache__/m.cpython-312.opt-1.pyc")),
            Some(PathBuf::from("a/m.py"))
        );
        for other in [
            "a/__pycache__/m.pyc",
            "a/m.cpython-311.pyc",
            "a/__pycache__/.x.pyc",
            "__pycache__/m.cpython-311.pyo",
        ] {
            assert_eq!(generated_from(Path::new(other)), None, "{other}");
        }
        let ownership: Ownership = [("usr/lib/python3.11/os.py", "deb:python3.11")]
            .into_iter()
            .collect();
        let pyc = Path::new("usr/lib/python3.11/__pycache__/os.cpython-311.pyc");
        assert_eq!(ownership.owner(pyc), None);
        assert_eq!(ownership.component_of(pyc), Some("deb:python3.11"));
        assert_eq!(
            ownership.component_of(Path::new(
                "usr/lib/python3.11/__pycache__/re.cpython-311.pyc"
            )),
            None
        );
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let root = TempRoot::new("missing");
        let missing = root.path().join("nothing-here");
        let err = read_package_databases(&missing).unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, .. } if path == &missing),
            "{err:?}"
        );
    }

    #[test]
    fn contested_paths_go_to_the_smallest_name_whatever_the_order() {
        let pairs = [
            ("/usr/share/doc/", "deb:zlib"),
            ("usr/share/doc", "deb:bash"),
            ("usr//share/./doc", "deb:coreutils"),
            ("usr/bin/ls", "deb:coreutils"),
            ("/", "deb:base-files"),
        ];
        let forward: Ownership = pairs.iter().copied().collect();
        let backward: Ownership = pairs.iter().rev().copied().collect();
        assert_eq!(forward, backward);
        assert_eq!(forward.owner(Path::new("usr/share/doc")), Some("deb:bash"));
        assert_eq!(
            forward.owner(Path::new("/usr/share/doc/")),
            Some("deb:bash")
        );
        assert_eq!(
            forward.owner(Path::new("usr/bin/ls")),
            Some("deb:coreutils")
        );
        assert_eq!(forward.owner(Path::new("usr")), None);
        // The root is never owned, and deb:zlib and deb:base-files own nothing.
        assert_eq!(forward.len(), 2);
        assert_eq!(
            forward.components().collect::<Vec<_>>(),
            ["deb:bash", "deb:coreutils"]
        );
        assert_eq!(
            forward.iter().collect::<Vec<_>>(),
            [
                (Path::new("usr/bin/ls"), "deb:coreutils"),
                (Path::new("usr/share/doc"), "deb:bash"),
            ]
        );
    }

    #[test]
    fn parents_resolve_inside_the_root_and_the_last_component_is_kept() {
        let root = TempRoot::new("resolve");
        root.mkdir("usr/bin");
        root.mkdir("usr/lib/x86_64-linux-gnu");
        root.symlink("bin", "usr/bin");
        root.symlink("lib", "/usr/lib");
        root.symlink("usr/bin/sh", "dash");
        // Absolute targets and `..` stay inside the root.
        root.symlink("opt", "/../../../usr");
        root.symlink("usr/up", "../../..");
        // A loop.
        root.symlink("a", "b");
        root.symlink("b", "a");
        let view = DirRoot::open(root.path()).unwrap();
        let mut tree = RootFs::new(&view);
        let mut parent =
            |p: &str| String::from_utf8(tree.resolve_parent(p.as_bytes()).unwrap()).unwrap();
        assert_eq!(parent("bin/ls"), "usr/bin/ls");
        assert_eq!(parent("bin/sh"), "usr/bin/sh");
        assert_eq!(parent("bin"), "bin");
        assert_eq!(
            parent("lib/x86_64-linux-gnu/libc.so.6"),
            "usr/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(parent("opt/bin/ls"), "usr/bin/ls");
        assert_eq!(parent("usr/up/etc/passwd"), "etc/passwd");
        assert_eq!(parent("usr/up/bin/ls"), "usr/bin/ls");
        assert_eq!(parent("missing/dir/file"), "missing/dir/file");
        assert_eq!(parent("usr/bin/ls/x"), "usr/bin/ls/x");
        assert_eq!(parent("a/file"), "a/file");
        let (_, complete) = tree.resolve(b"a/file", false).unwrap();
        assert!(!complete, "a link loop is reported as incomplete");
        let (followed, complete) = tree.resolve(b"bin/sh", true).unwrap();
        assert_eq!(
            (followed.as_slice(), complete),
            (&b"usr/bin/dash"[..], true)
        );
    }

    #[test]
    fn symbolic_link_loops_below_a_loop_leave_paths_unresolved() {
        let root = TempRoot::new("loop2");
        root.symlink("a", "b");
        root.symlink("b", "a");
        root.write(
            "var/lib/dpkg/status",
            "Package: p\nStatus: install ok installed\n\n",
        );
        root.write("var/lib/dpkg/info/p.list", "/a/file\n/a/b/file\n/a/b/c/d\n");
        let owned = root.read_both();
        for p in ["a/file", "a/b/file", "a/b/c/d"] {
            assert_eq!(owned.owner(Path::new(p)), Some("deb:p"), "{p}: {owned:?}");
        }
    }

    #[test]
    fn non_utf8_paths_are_kept_as_bytes() {
        let raw = OsStr::from_bytes(b"usr/share/caf\xe9");
        let ownership: Ownership = [(Path::new(raw), "apk:x")].into_iter().collect();
        assert_eq!(ownership.owner(Path::new(raw)), Some("apk:x"));
    }
}
