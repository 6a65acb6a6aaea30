//! Grouping: entries into components, components into at most N layers.
//!
//! Both steps are pure functions of the walked tree and the ownership map, so
//! the same tree always gives the same layers.
//!
//! * Components: a `user.component` xattr names an entry's component (on a
//!   directory, also that of everything below it); else the
//!   package that owns it; a hard link goes with its target. Entries no
//!   package owns are cut into groups by their paths: in walk order, a new
//!   group starts at every path whose BLAKE3 hash falls below a threshold (one
//!   path in [`UNOWNED_GROUP_PATHS`] on average). The cuts depend on the paths
//!   alone, so changing a file changes one group, and adding one changes at
//!   most two: never one catch-all.
//! * Layers: with more components than layers, the largest components get a
//!   layer each and the rest share [`shared_layers`] layers, each component in
//!   the one its name hashes to, so a small component stays where it was when
//!   others come and go; components whose `user.update-interval` differs
//!   share no layer while there are layers enough to keep them apart.
//!   Package layers come first, groups of unowned files (the likeliest to
//!   change) last.
//! * A layer holds its components' entries and every directory above them,
//!   with the directories' own metadata, in walk order.

mod rules;

pub use rules::Assignments;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::walk::{Entry, EntryKind, Tree, NO_PARENT};

/// A component: the name its entries go by in the image (in layer
/// annotations and reports), and how they came together.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Component {
    name: Arc<str>,
    kind: ComponentKind,
}

/// How the entries of a component came together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    /// Named by a package database, a component-assignment rule, or (for a
    /// hard link) the component of its target.
    Named,
    /// Named by a [`COMPONENT_XATTR`] (of the entry or a directory above).
    Xattr,
    /// A content-defined group of entries no package owns, cut by their
    /// paths; its name is [`UNOWNED_PREFIX`] and the group's first path.
    UnownedGroup,
}

impl Component {
    /// A component named `name` ([`ComponentKind::Named`]).
    pub fn named(name: impl Into<Arc<str>>) -> Self {
        Component {
            name: name.into(),
            kind: ComponentKind::Named,
        }
    }

    /// A component named by a [`COMPONENT_XATTR`] ([`ComponentKind::Xattr`]).
    pub fn from_xattr(name: impl Into<Arc<str>>) -> Self {
        Component {
            name: name.into(),
            kind: ComponentKind::Xattr,
        }
    }

    /// A component of the same kind, renamed.
    pub fn renamed(&self, name: impl Into<Arc<str>>) -> Self {
        Component {
            name: name.into(),
            kind: self.kind,
        }
    }

    /// A group of unowned entries named `name`
    /// ([`ComponentKind::UnownedGroup`]).
    fn unowned_group(name: Arc<str>) -> Self {
        Component {
            name,
            kind: ComponentKind::UnownedGroup,
        }
    }

    /// The name, as layer annotations and reports give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How its entries came together.
    pub fn kind(&self) -> ComponentKind {
        self.kind
    }

    /// Whether it is a group of entries no package owns.
    pub fn is_unowned_group(&self) -> bool {
        self.kind == ComponentKind::UnownedGroup
    }
}

impl AsRef<str> for Component {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The extended attribute that overrides an entry's component.
pub const COMPONENT_XATTR: &str = "user.component";

/// Average number of paths in a group of unowned entries.
pub const UNOWNED_GROUP_PATHS: u32 = 32;

/// Prefix of the names of groups of unowned entries (before the group's
/// first path). A group is told by its [`ComponentKind`], not by its name.
pub const UNOWNED_PREFIX: &str = "unowned:";

/// Component of every entry of `tree` (same order as `tree.entries`).
///
/// A `user.component` on a directory names the component of the directory
/// and of everything below it, down to an entry or directory with one of
/// its own (as coreos/chunkah reads it).
pub fn assign_components(tree: &Tree, owner: impl Fn(&Path) -> Option<String>) -> Vec<Component> {
    let mut out: Vec<Component> = Vec::with_capacity(tree.entries.len());
    let mut names = Names::default();
    let mut links = HardLinkTargets::of(tree);
    let mut groups = UnownedGroups::default();
    // Directories with a component, the innermost last.
    let mut scopes: Vec<(&Path, Component)> = Vec::new();
    for (i, e) in tree.entries.iter().enumerate() {
        links.note(e, i);
        while scopes.last().is_some_and(|(d, _)| !e.path.starts_with(d)) {
            scopes.pop();
        }
        let own = e
            .xattrs
            .iter()
            .find(|(k, _)| k == COMPONENT_XATTR)
            .map(|(_, v)| {
                Component::from_xattr(names.intern(String::from_utf8_lossy(v).into_owned()))
            });
        if let (Some(c), true) = (&own, e.is_dir()) {
            scopes.push((&e.path, c.clone()));
        }
        let explicit = own.or_else(|| scopes.last().map(|(_, c)| c.clone()));
        let component = explicit
            .or_else(|| links.target_component(e, &out))
            .or_else(|| owner(&e.path).map(|o| Component::named(names.intern(o))))
            .unwrap_or_else(|| groups.of(&e.path, &mut names));
        out.push(component);
    }
    out
}

/// Component names, each stored once whatever the number of its entries.
#[derive(Default)]
struct Names(HashSet<Arc<str>>);

impl Names {
    fn intern(&mut self, name: String) -> Arc<str> {
        match self.0.get(name.as_str()) {
            Some(c) => c.clone(),
            None => {
                let c: Arc<str> = name.into();
                self.0.insert(c.clone());
                c
            }
        }
    }
}

/// The entries hard links point at, and where they are among the entries
/// (a hard link takes its target's component: only targets are indexed).
struct HardLinkTargets<'t> {
    targets: HashSet<&'t Path>,
    index: HashMap<&'t Path, usize>,
}

impl<'t> HardLinkTargets<'t> {
    fn of(tree: &'t Tree) -> Self {
        let targets = tree
            .entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::HardLink { target } => Some(&**target),
                _ => None,
            })
            .collect();
        HardLinkTargets {
            targets,
            index: HashMap::new(),
        }
    }

    /// Records that `e` is entry `i`, if it is a target.
    fn note(&mut self, e: &'t Entry, i: usize) {
        if self.targets.contains(&*e.path) {
            self.index.insert(&e.path, i);
        }
    }

    /// For a hard link whose target came before: the target's component
    /// (`out` holds those so far).
    fn target_component(&self, e: &Entry, out: &[Component]) -> Option<Component> {
        match &e.kind {
            EntryKind::HardLink { target } => self.index.get(&**target).map(|&t| out[t].clone()),
            _ => None,
        }
    }
}

/// The groups of unowned entries, cut in walk order.
#[derive(Default)]
struct UnownedGroups {
    current: Option<Component>,
}

impl UnownedGroups {
    /// The group of the unowned entry at `path`: a new group starts where
    /// the path's BLAKE3 hash falls below the threshold (or at the first).
    fn of(&mut self, path: &Path, names: &mut Names) -> Component {
        let h = blake3::hash(path.as_os_str().as_bytes());
        let cut = u32::from_le_bytes(h.as_bytes()[..4].try_into().expect("4 bytes"));
        match &self.current {
            Some(group) if cut >= u32::MAX / UNOWNED_GROUP_PATHS => group.clone(),
            _ => {
                let name = names.intern(format!("{UNOWNED_PREFIX}{}", path.display()));
                let group = Component::unowned_group(name);
                self.current = Some(group.clone());
                group
            }
        }
    }
}

/// The extended attribute giving how often an entry's component changes:
/// days, or `daily`, `weekly`, `biweekly`, `monthly`, `quarterly`, `yearly`.
pub const UPDATE_INTERVAL_XATTR: &str = "user.update-interval";

/// Days in an update interval as `user.update-interval` spells it.
pub fn parse_update_interval(value: &[u8]) -> Option<u32> {
    match value {
        b"daily" => Some(1),
        b"weekly" => Some(7),
        b"biweekly" => Some(14),
        b"monthly" => Some(30),
        b"quarterly" => Some(90),
        b"yearly" => Some(365),
        digits if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(digits)
                .ok()?
                .parse()
                .ok()
                .filter(|&d| d > 0)
        }
        _ => None,
    }
}

/// The update interval (days) of each component that has one: the
/// `user.update-interval` of its entries, which must agree.
pub fn update_intervals(
    tree: &Tree,
    components: &[impl AsRef<str>],
) -> Result<BTreeMap<String, u32>> {
    let mut out: BTreeMap<String, (u32, &Path)> = BTreeMap::new();
    for (e, c) in tree.entries.iter().zip(components) {
        let c = c.as_ref();
        let Some((_, v)) = e.xattrs.iter().find(|(k, _)| k == UPDATE_INTERVAL_XATTR) else {
            continue;
        };
        let days = parse_update_interval(v).ok_or_else(|| {
            Error::malformed(
                e.path.display(),
                format!(
                    "{UPDATE_INTERVAL_XATTR} {:?} is not a number of days or daily, weekly, \
                     biweekly, monthly, quarterly, yearly",
                    String::from_utf8_lossy(v)
                ),
            )
        })?;
        match out.get(c) {
            Some(&(d, first)) if d != days => {
                return Err(Error::malformed(
                    e.path.display(),
                    format!(
                        "{UPDATE_INTERVAL_XATTR} of component {c:?} is {days} days here but {d} \
                         at {}",
                        first.display()
                    ),
                ))
            }
            Some(_) => {}
            None => {
                out.insert(c.to_string(), (days, &e.path));
            }
        }
    }
    Ok(out.into_iter().map(|(c, (d, _))| (c, d)).collect())
}

/// One planned layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedLayer {
    /// The components it holds, sorted.
    pub components: Vec<String>,
    /// Indices into the tree's entries, in walk order, ancestors included.
    pub entries: Vec<usize>,
    /// Bytes of regular-file content.
    pub content_bytes: u64,
}

/// Layers, bottom first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPlan {
    /// The layers.
    pub layers: Vec<PlannedLayer>,
}

/// How many layers components share when there are more components than
/// `max_layers`: a quarter of them, at least one.
pub fn shared_layers(max_layers: usize) -> usize {
    (max_layers / 4).max(1)
}

fn entry_bytes(e: &Entry) -> u64 {
    512 + match e.kind {
        EntryKind::Regular { size } => size.div_ceil(512) * 512,
        _ => 0,
    }
}

/// Packs the components of `tree` (from [`assign_components`]) into at most
/// `max_layers` layers (at least 1).
///
/// With `prior`, the components of each layer of a previous version (bottom
/// first), the previous grouping is kept: every component present in both
/// versions lands in the layer that held it, so a layer whose components are
/// all unchanged is byte-identical to the previous one. New components get
/// layers of their own while the limit allows, then share one; layers keep
/// their previous order, new ones come last.
pub fn plan_layers(
    tree: &Tree,
    components: &[Component],
    max_layers: usize,
    prior: Option<&[Vec<String>]>,
    intervals: &BTreeMap<String, u32>,
) -> LayerPlan {
    plan_layers_isolating(tree, components, max_layers, prior, intervals, &[])
}

/// [`plan_layers`], each component named in `isolate` in a layer of its
/// own: first, before the largest get theirs. With `prior`, an isolated
/// component that shared a layer moves to a new one of its own while the
/// limit allows.
pub fn plan_layers_isolating(
    tree: &Tree,
    components: &[Component],
    max_layers: usize,
    prior: Option<&[Vec<String>]>,
    intervals: &BTreeMap<String, u32>,
    isolate: &[String],
) -> LayerPlan {
    assert_eq!(tree.entries.len(), components.len());
    let max_layers = max_layers.max(1);
    let sizes = component_sizes(tree, components);
    let isolated: HashSet<&str> = isolate
        .iter()
        .filter_map(|c| sizes.get_key_value(c.as_str()).map(|(&k, _)| k))
        .collect();
    let mut slots = Slots {
        isolated,
        ..Slots::default()
    };
    if let Some(prior) = prior {
        slots.keep_prior(prior, &sizes, max_layers);
        slots.add_new(&sizes, max_layers);
    } else if sizes.len() <= max_layers {
        slots.one_each(&sizes);
    } else {
        slots.largest_own_rest_shared(&sizes, max_layers, intervals);
    }
    let mut layers = slots.layers(tree, components);
    if prior.is_none() {
        unowned_groups_last(&mut layers, components);
    }
    LayerPlan { layers }
}

/// The tar bytes of each component's entries (headers and padded content).
fn component_sizes<'c>(tree: &Tree, components: &'c [Component]) -> BTreeMap<&'c str, u64> {
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for (e, c) in tree.entries.iter().zip(components) {
        *sizes.entry(c.name()).or_default() += entry_bytes(e);
    }
    sizes
}

/// Components (by name) sorted by size, largest first, then by name.
fn largest_first<'c>(sizes: impl Iterator<Item = (&'c str, u64)>) -> Vec<(&'c str, u64)> {
    let mut by_size: Vec<(&str, u64)> = sizes.collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    by_size
}

/// Layer slots being filled with components, bottom first.
#[derive(Default)]
struct Slots<'c> {
    /// Which slot each component goes to.
    slot_of: HashMap<&'c str, usize>,
    /// The components of each slot.
    slots: Vec<Vec<&'c str>>,
    /// Components that get a slot of their own.
    isolated: HashSet<&'c str>,
}

impl<'c> Slots<'c> {
    fn put(&mut self, component: &'c str, slot: usize) {
        self.slot_of.insert(component, slot);
        self.slots[slot].push(component);
    }

    /// A new slot holding `component`.
    fn put_alone(&mut self, component: &'c str) {
        self.slots.push(Vec::new());
        self.put(component, self.slots.len() - 1);
    }

    /// The layers of `prior` that still have components, in order, each
    /// with its components still present; with fewer layers allowed than
    /// before, the rest join the last one.
    fn keep_prior(
        &mut self,
        prior: &[Vec<String>],
        sizes: &BTreeMap<&'c str, u64>,
        max_layers: usize,
    ) {
        for layer in prior {
            let mut present: Vec<&str> = layer
                .iter()
                .filter_map(|c| sizes.get_key_value(c.as_str()).map(|(&k, _)| k))
                .filter(|c| !self.slot_of.contains_key(c))
                .collect();
            // An isolated component sharing the layer leaves it (for a
            // slot of its own, among the new ones).
            if present.len() > 1 {
                present.retain(|c| !self.isolated.contains(c));
            }
            if present.is_empty() {
                continue;
            }
            let s = self.slots.len().min(max_layers - 1);
            if s == self.slots.len() {
                self.slots.push(Vec::new());
            }
            for c in present {
                self.put(c, s);
            }
        }
    }

    /// The components no slot holds yet, largest first: a slot each while
    /// the limit allows, then one shared slot (the last one, at the limit).
    fn add_new(&mut self, sizes: &BTreeMap<&'c str, u64>, max_layers: usize) {
        let mut new = largest_first(
            sizes
                .iter()
                .filter(|(c, _)| !self.slot_of.contains_key(*c))
                .map(|(&c, &n)| (c, n)),
        );
        // Isolated components first, so they get the free slots.
        new.sort_by_key(|(c, _)| !self.isolated.contains(c));
        let mut shared: Option<usize> = None;
        for (k, &(c, _)) in new.iter().enumerate() {
            let free = max_layers - self.slots.len().min(max_layers);
            let remaining = new.len() - k;
            if shared.is_none() && (free > 1 || (free == 1 && remaining == 1)) {
                self.put_alone(c);
                continue;
            }
            let s = *shared.get_or_insert_with(|| {
                if free > 0 {
                    self.slots.push(Vec::new());
                }
                self.slots.len() - 1
            });
            self.put(c, s);
        }
    }

    /// A slot for each component, in name order.
    fn one_each(&mut self, sizes: &BTreeMap<&'c str, u64>) {
        for &c in sizes.keys() {
            self.put_alone(c);
        }
    }

    /// More components than layers: the largest get a slot each, the rest
    /// share [`shared_layers`] slots (see [`shared_slots`]).
    fn largest_own_rest_shared(
        &mut self,
        sizes: &BTreeMap<&'c str, u64>,
        max_layers: usize,
        intervals: &BTreeMap<String, u32>,
    ) {
        let mut isolated: Vec<&str> = self.isolated.iter().copied().collect();
        isolated.sort_unstable();
        isolated.truncate(max_layers - 1);
        for &c in &isolated {
            self.put_alone(c);
        }
        let left = max_layers - isolated.len();
        let shared = shared_layers(max_layers).min(left);
        let own = left - shared;
        let by_size = largest_first(
            sizes
                .iter()
                .filter(|(c, _)| !self.slot_of.contains_key(*c))
                .map(|(&c, &s)| (c, s)),
        );
        for &(c, _) in &by_size[..own.min(by_size.len())] {
            self.put_alone(c);
        }
        let first_shared = self.slots.len();
        self.slots.extend((0..shared).map(|_| Vec::new()));
        let rest: Vec<&str> = by_size[own.min(by_size.len())..]
            .iter()
            .map(|&(c, _)| c)
            .collect();
        for (c, k) in shared_slots(&rest, shared, intervals) {
            self.put(c, first_shared + k);
        }
    }

    /// The layers of the slots that hold entries: each slot's entries with
    /// their ancestor directories, in walk order.
    fn layers(self, tree: &Tree, components: &[Component]) -> Vec<PlannedLayer> {
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); self.slots.len()];
        let mut bytes = vec![0u64; self.slots.len()];
        for (i, (e, c)) in tree.entries.iter().zip(components).enumerate() {
            let s = self.slot_of[c.name()];
            members[s].push(i);
            if let EntryKind::Regular { size } = e.kind {
                bytes[s] += size;
            }
        }
        let mut ancestors = Ancestors::new(tree);
        let mut layers: Vec<PlannedLayer> = Vec::new();
        for (s, ((mut comps, mut entries), content_bytes)) in
            self.slots.into_iter().zip(members).zip(bytes).enumerate()
        {
            if entries.is_empty() {
                continue;
            }
            entries.extend(ancestors.not_taken(s as u32, &entries));
            entries.sort_unstable();
            entries.dedup();
            entries.shrink_to_fit();
            comps.sort_unstable();
            layers.push(PlannedLayer {
                components: comps.into_iter().map(str::to_string).collect(),
                entries,
                content_bytes,
            });
        }
        layers
    }
}

/// The ancestor directories of the entries of one slot after another.
struct Ancestors {
    parents: Vec<u32>,
    /// The last slot that took each entry: an entry taken has its
    /// ancestors taken too, so a climb stops at the first one.
    taken: Vec<u32>,
}

impl Ancestors {
    fn new(tree: &Tree) -> Self {
        Ancestors {
            parents: tree.parents(),
            taken: vec![u32::MAX; tree.entries.len()],
        }
    }

    /// The ancestors of `entries` (slot `s`'s) that are not among them, each
    /// once; the entries and their ancestors are then taken by `s`.
    fn not_taken(&mut self, s: u32, entries: &[usize]) -> Vec<usize> {
        let mut ancestors: Vec<usize> = Vec::new();
        for &i in entries {
            if self.taken[i] == s {
                continue;
            }
            self.taken[i] = s;
            let mut p = self.parents[i];
            while p != NO_PARENT && self.taken[p as usize] != s {
                self.taken[p as usize] = s;
                ancestors.push(p as usize);
                p = self.parents[p as usize];
            }
        }
        ancestors
    }
}

/// Orders `layers`: package layers before layers mostly of groups of
/// unowned entries; layers of one component before shared ones; then by
/// first component.
fn unowned_groups_last(layers: &mut [PlannedLayer], components: &[Component]) {
    let unowned: HashSet<&str> = components
        .iter()
        .filter(|c| c.is_unowned_group())
        .map(Component::name)
        .collect();
    layers.sort_by_key(|l| {
        let groups = l
            .components
            .iter()
            .filter(|c| unowned.contains(c.as_str()))
            .count();
        (
            groups * 2 > l.components.len(),
            l.components.len() > 1,
            l.components[0].clone(),
        )
    });
}

/// The shared layer (0 to `shared - 1`) of each of `components`. Those
/// with an update interval are kept apart from those with another one:
/// the layers are dealt out to the intervals (components without one
/// count as weekly) in proportion to their components, at least one each,
/// the intervals nearest each other sharing when there are more intervals
/// than layers; within an interval's layers, a component goes to the one
/// its name hashes to, so it stays there when others come and go.
fn shared_slots<'a>(
    components: &[&'a str],
    shared: usize,
    intervals: &BTreeMap<String, u32>,
) -> Vec<(&'a str, usize)> {
    const DEFAULT_DAYS: u32 = 7;
    let hash = |c: &str, n: usize| {
        let h = blake3::hash(c.as_bytes());
        (u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) % n as u64) as usize
    };
    let mut tiers: BTreeMap<u32, Vec<&'a str>> = BTreeMap::new();
    for &c in components {
        let days = intervals.get(c).copied().unwrap_or(DEFAULT_DAYS);
        tiers.entry(days).or_default().push(c);
    }
    // More intervals than layers: neighbouring intervals share, in runs of
    // about the same number of intervals.
    let tiers: Vec<Vec<&'a str>> = {
        let all: Vec<Vec<&'a str>> = tiers.into_values().collect();
        let groups = all.len().min(shared.max(1));
        let mut merged: Vec<Vec<&'a str>> = vec![Vec::new(); groups];
        for (i, t) in all.iter().enumerate() {
            merged[i * groups / all.len()].extend(t);
        }
        merged
    };
    // Layers per tier: one each, the rest in proportion to their size.
    let total: usize = tiers.iter().map(Vec::len).sum();
    let mut layers: Vec<usize> = vec![1; tiers.len()];
    let mut left = shared.saturating_sub(tiers.len());
    let extra: Vec<usize> = tiers
        .iter()
        .map(|t| left * t.len() / total.max(1))
        .collect();
    for (l, e) in layers.iter_mut().zip(&extra) {
        *l += e;
    }
    left -= extra.iter().sum::<usize>();
    // What rounding left goes to the largest tiers.
    let mut order: Vec<usize> = (0..tiers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tiers[i].len()));
    for &i in order.iter().cycle().take(left) {
        layers[i] += 1;
    }
    let mut out = Vec::with_capacity(components.len());
    let mut first = 0;
    for (t, n) in tiers.iter().zip(layers) {
        for &c in t {
            out.push((c, first + hash(c, n)));
        }
        first += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(path: &str, size: u64) -> Entry {
        Entry {
            path: Path::new(path).into(),
            kind: if size == u64::MAX {
                EntryKind::Directory
            } else {
                EntryKind::Regular { size }
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Box::default(),
        }
    }

    fn tree(entries: Vec<Entry>) -> Tree {
        Tree {
            entries,
            root: None,
            warnings: Vec::new(),
        }
    }

    fn with(mut e: Entry, key: &str, value: &str) -> Entry {
        let mut x = e.xattrs.into_vec();
        x.push((key.into(), value.as_bytes().to_vec()));
        e.xattrs = x.into();
        e
    }

    #[test]
    fn a_directory_component_covers_what_is_below_it() {
        let dir = u64::MAX;
        let t = tree(vec![
            with(file("d", dir), COMPONENT_XATTR, "outer"),
            file("d/a", 1),
            with(file("d/e", dir), COMPONENT_XATTR, "inner"),
            file("d/e/b", 1),
            with(file("d/e/f", 1), COMPONENT_XATTR, "outer"),
            file("d/g", 1),
            file("da", 1),
        ]);
        let c = assign_components(&t, |_| None);
        assert_eq!(
            c[..6].iter().map(Component::name).collect::<Vec<_>>(),
            ["outer", "outer", "inner", "inner", "outer", "outer"]
        );
        assert!(c[..6].iter().all(|c| c.kind() == ComponentKind::Xattr));
        assert!(c[6].is_unowned_group(), "{c:?}");
        assert_eq!(c[6].name(), "unowned:da");
    }

    #[test]
    fn update_intervals_are_read_and_must_agree() {
        assert_eq!(parse_update_interval(b"weekly"), Some(7));
        assert_eq!(parse_update_interval(b"36500"), Some(36500));
        for bad in [&b"0"[..], b"-1", b"Weekly", b" 7", b"7\n", b"3.5", b""] {
            assert_eq!(parse_update_interval(bad), None, "{bad:?}");
        }
        let t = tree(vec![
            with(
                with(file("a", 1), COMPONENT_XATTR, "c"),
                UPDATE_INTERVAL_XATTR,
                "7",
            ),
            with(
                with(file("b", 1), COMPONENT_XATTR, "c"),
                UPDATE_INTERVAL_XATTR,
                "weekly",
            ),
            with(
                with(file("x", 1), COMPONENT_XATTR, "y"),
                UPDATE_INTERVAL_XATTR,
                "yearly",
            ),
        ]);
        let c = assign_components(&t, |_| None);
        let got = update_intervals(&t, &c).unwrap();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [("c".into(), 7), ("y".into(), 365)]
        );
        let mut t = t;
        t.entries[1].xattrs[1].1 = b"daily".to_vec();
        let err = update_intervals(&t, &c).unwrap_err().to_string();
        assert!(
            err.contains("b:") && err.contains("1 days") && err.contains("at a"),
            "{err}"
        );
        t.entries[1].xattrs[1].1 = b"often".to_vec();
        assert!(update_intervals(&t, &c).is_err());
    }

    #[test]
    fn components_of_other_update_intervals_do_not_share_layers() {
        // 40 small components, half daily, half yearly, and 4 large ones:
        // 8 layers, of which 2 shared.
        let mut entries = Vec::new();
        let mut intervals = BTreeMap::new();
        for i in 0..40 {
            let name = format!("c{i:02}");
            entries.push(with(file(&format!("f{i:02}"), 10), COMPONENT_XATTR, &name));
            intervals.insert(name, if i % 2 == 0 { 1 } else { 365 });
        }
        for i in 0..6 {
            let name = format!("big{i}");
            entries.push(with(
                file(&format!("g{i}"), 1 << 20),
                COMPONENT_XATTR,
                &name,
            ));
        }
        let t = tree(entries);
        let c = assign_components(&t, |_| None);
        let plan = plan_layers(&t, &c, 8, None, &intervals);
        assert_eq!(plan.layers.len(), 8);
        let mut shared = 0;
        for l in plan.layers.iter().filter(|l| l.components.len() > 1) {
            shared += 1;
            let days: std::collections::BTreeSet<u32> =
                l.components.iter().map(|c| intervals[c]).collect();
            assert_eq!(days.len(), 1, "{:?}", l.components);
        }
        assert_eq!(shared, 2);
        // Without intervals the same components mix.
        let plain = plan_layers(&t, &c, 8, None, &BTreeMap::new());
        assert!(plain.layers.iter().any(|l| {
            let days: std::collections::BTreeSet<u32> = l
                .components
                .iter()
                .filter_map(|c| intervals.get(c).copied())
                .collect();
            days.len() > 1
        }));
    }

    #[test]
    fn unowned_groups_are_stable_when_a_file_is_added() {
        let paths: Vec<String> = (0..2000).map(|i| format!("srv/data/file{i:05}")).collect();
        let t1 = tree(paths.iter().map(|p| file(p, 10)).collect());
        let mut with_new = paths.clone();
        with_new.push("srv/data/file01000a".into());
        with_new.sort();
        let t2 = tree(with_new.iter().map(|p| file(p, 10)).collect());
        let c1 = assign_components(&t1, |_| None);
        let c2 = assign_components(&t2, |_| None);
        let groups = |t: &Tree, c: &[Component]| -> BTreeMap<String, Vec<PathBuf>> {
            let mut m: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
            for (e, c) in t.entries.iter().zip(c) {
                m.entry(c.to_string())
                    .or_default()
                    .push(e.path.to_path_buf());
            }
            m
        };
        let (g1, g2) = (groups(&t1, &c1), groups(&t2, &c2));
        assert!(g1.len() > 30 && g1.len() < 120, "{} groups", g1.len());
        let changed = g2.iter().filter(|(k, v)| g1.get(*k) != Some(v)).count();
        assert!((1..=2).contains(&changed), "{changed} groups changed");
    }

    #[test]
    fn owners_xattrs_and_hard_links_decide_components() {
        let mut e = vec![
            file("usr", u64::MAX),
            file("usr/a", 1),
            file("usr/b", 1),
            file("usr/c", 1),
        ];
        e[2].xattrs = vec![(COMPONENT_XATTR.into(), b"mine".to_vec())].into();
        e[3].kind = EntryKind::HardLink {
            target: std::path::Path::new("usr/a").into(),
        };
        let t = tree(e);
        let c = assign_components(&t, |p| {
            (p == Path::new("usr/a")).then(|| "deb:a".to_string())
        });
        assert_eq!(
            c[1..].iter().map(Component::name).collect::<Vec<_>>(),
            ["deb:a", "mine", "deb:a"]
        );
        assert!(c[1..].iter().all(|c| !c.is_unowned_group()));
        assert!(c[0].is_unowned_group());
        assert_eq!(c[0].name(), "unowned:usr");
    }

    #[test]
    fn plans_respect_the_layer_limit_and_keep_parents() {
        let mut entries = vec![file("usr", u64::MAX), file("usr/lib", u64::MAX)];
        let mut comps = vec![Component::named("deb:base"), Component::named("deb:base")];
        for i in 0..100 {
            entries.push(file(&format!("usr/lib/f{i:03}"), 1000 * (i + 1)));
            comps.push(Component::named(format!("deb:p{:02}", i % 40)));
        }
        let t = tree(entries);
        for max in [1, 2, 7, 40, 41, 64, 500] {
            let plan = plan_layers(&t, &comps, max, None, &BTreeMap::new());
            assert!(
                plan.layers.len() <= max,
                "{} layers for max {max}",
                plan.layers.len()
            );
            let mut seen = vec![0; t.entries.len()];
            for l in &plan.layers {
                for &i in &l.entries {
                    seen[i] += 1;
                }
                assert!(l.entries.windows(2).all(|w| w[0] < w[1]));
                // Every file's parents are in its layer.
                assert!(l.entries.contains(&0) && l.entries.contains(&1));
            }
            assert!(
                seen.iter().all(|&n| n >= 1),
                "an entry is missing for max {max}"
            );
            assert_eq!(
                plan,
                plan_layers(&t, &comps, max, None, &BTreeMap::new()),
                "not deterministic"
            );
        }
        assert_eq!(
            plan_layers(&t, &comps, 64, None, &BTreeMap::new())
                .layers
                .len(),
            41
        );
    }

    #[test]
    fn isolated_components_get_layers_of_their_own() {
        let mut entries = vec![file("usr", u64::MAX)];
        let mut comps = vec![Component::named("deb:base")];
        for i in 0..40 {
            entries.push(file(&format!("usr/f{i:03}"), 1000 * (i + 1)));
            comps.push(Component::named(format!("deb:p{i:02}")));
        }
        let t = tree(entries);
        let alone =
            |plan: &LayerPlan, c: &str| plan.layers.iter().any(|l| l.components == [c.to_string()]);
        // The smallest components share a layer, unless isolated.
        let plain = plan_layers(&t, &comps, 8, None, &BTreeMap::new());
        assert!(!alone(&plain, "deb:p00") && !alone(&plain, "deb:p01"));
        let isolate = ["deb:p00".to_string(), "deb:p01".into(), "deb:absent".into()];
        let plan = plan_layers_isolating(&t, &comps, 8, None, &BTreeMap::new(), &isolate);
        assert!(plan.layers.len() <= 8);
        assert!(
            alone(&plan, "deb:p00") && alone(&plan, "deb:p01"),
            "{:?}",
            plan.layers
        );
        // With a prior grouping, an isolated component leaves its shared layer.
        let prior: Vec<Vec<String>> = plain.layers.iter().map(|l| l.components.clone()).collect();
        let kept = plan_layers_isolating(
            &t,
            &comps,
            10,
            Some(&prior),
            &BTreeMap::new(),
            &isolate[..1],
        );
        assert!(alone(&kept, "deb:p00"), "{:?}", kept.layers);
        assert!(kept.layers.len() <= 10);
        let unchanged = plan_layers(&t, &comps, 10, Some(&prior), &BTreeMap::new());
        assert!(!alone(&unchanged, "deb:p00"));
    }

    #[test]
    fn a_prior_grouping_is_kept_and_new_components_get_layers() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let entries: Vec<Entry> = (0..6).map(|i| file(&format!("f{i}"), 100)).collect();
        let comps: Vec<Component> = names(&["a", "b", "c", "d", "new1", "new2"])
            .into_iter()
            .map(Component::named)
            .collect();
        let t = tree(entries);
        let prior = vec![names(&["b", "gone"]), names(&["a", "c"]), names(&["d"])];
        let plan = plan_layers(&t, &comps, 5, Some(&prior), &BTreeMap::new());
        let got: Vec<Vec<String>> = plan.layers.iter().map(|l| l.components.clone()).collect();
        assert_eq!(
            got,
            vec![
                names(&["b"]),
                names(&["a", "c"]),
                names(&["d"]),
                names(&["new1"]),
                names(&["new2"])
            ]
        );
        // At the limit, new components share the last layer.
        let plan = plan_layers(&t, &comps, 4, Some(&prior), &BTreeMap::new());
        let got: Vec<Vec<String>> = plan.layers.iter().map(|l| l.components.clone()).collect();
        assert_eq!(
            got,
            vec![
                names(&["b"]),
                names(&["a", "c"]),
                names(&["d"]),
                names(&["new1", "new2"])
            ]
        );
        // Fewer layers than before: the overflow joins the last allowed layer.
        let plan = plan_layers(&t, &comps, 2, Some(&prior), &BTreeMap::new());
        assert_eq!(plan.layers.len(), 2);
    }

    #[test]
    fn unowned_groups_are_told_by_their_kind_not_their_name() {
        // A component named like a group is no group: its layer comes
        // before the groups' layers.
        let t = tree(vec![
            file("a", 10),
            with(file("b", 10), COMPONENT_XATTR, "unowned:zzz"),
            file("x", 10),
        ]);
        let c = assign_components(&t, |p| (p == Path::new("a")).then(|| "deb:a".to_string()));
        assert_eq!(
            c.iter().map(|c| (c.name(), c.kind())).collect::<Vec<_>>(),
            [
                ("deb:a", ComponentKind::Named),
                ("unowned:zzz", ComponentKind::Xattr),
                ("unowned:x", ComponentKind::UnownedGroup)
            ]
        );
        let plan = plan_layers(&t, &c, 64, None, &BTreeMap::new());
        let got: Vec<&str> = plan.layers.iter().map(|l| &*l.components[0]).collect();
        assert_eq!(got, ["deb:a", "unowned:zzz", "unowned:x"]);
    }
}
