//! What coreos/chunkah writes, for `chunkah build`: its component names
//! (`rpm/<source rpm>`, `alpm/<base>`, `xattr/<value>`, `bigfiles/<name>`,
//! `chunkah/unclaimed`), its stability figure, its layer annotations
//! (`org.chunkah.component`, `org.chunkah.stability`), its history entries
//! and its `--write-manifest-to` document, so that tools reading
//! coreos/chunkah's output read ours.
//!
//! The grouping itself stays chunkah's: databases coreos/chunkah does not
//! read (dpkg, apk, Python, npm) name components `deb/`, `apk/`, `pypi/`,
//! `npm/`; files no database owns that are under 1 MiB stay in
//! content-defined groups (several layers may say `chunkah/unclaimed`); and
//! components are packed into layers as `pack` packs them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::component::InstalledPackage;
use crate::grouping::{Component, ComponentKind, LayerPlan, PlannedLayer};
use crate::walk::{EntryKind, Tree};

/// The layer annotation naming its components, space-separated.
pub const COMPONENT_ANNOTATION: &str = "org.chunkah.component";

/// The layer annotation giving its stability (`%.3f`).
pub const STABILITY_ANNOTATION: &str = "org.chunkah.stability";

/// The component of files no database, xattr or size claims.
pub const UNCLAIMED: &str = "chunkah/unclaimed";

/// Unowned regular files at least this large are components of their own,
/// `bigfiles/<name>`.
pub const BIGFILE_BYTES: u64 = 1 << 20;

/// Whose names and figures a pack writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// chunkah's: `dev.chunkah.components`, `deb:glibc`, `unowned:…`.
    #[default]
    Chunkah,
    /// coreos/chunkah's as well: `org.chunkah.component` and
    /// `org.chunkah.stability` on every layer, its component names and
    /// history entries.
    Coreos,
}

/// coreos/chunkah's name for a component chunkah named `name` from a
/// package database (`rpm:bash` is `rpm/bash`, `pacman:gcc` `alpm/gcc`).
fn database_name(name: &str) -> Option<String> {
    let (db, rest) = name.split_once(':')?;
    let repo = match db {
        "rpm" => "rpm",
        "pacman" => "alpm",
        "deb" => "deb",
        "apk" => "apk",
        "pypi" => "pypi",
        "npm" => "npm",
        _ => return None,
    };
    Some(format!("{repo}/{rest}"))
}

/// The components renamed as coreos/chunkah names them: database
/// components `REPO/NAME`, xattr components `xattr/VALUE`, and each
/// unowned regular file of [`BIGFILE_BYTES`] or more (and its hard links)
/// `bigfiles/BASENAME` (the path, without its leading `/`, when the
/// basename is taken). Groups of other unowned entries keep their names.
pub(crate) fn rename(tree: &Tree, components: &[Component]) -> Vec<Component> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut bigfiles: HashMap<&Path, String> = HashMap::new();
    for (e, c) in tree.entries.iter().zip(components) {
        let EntryKind::Regular { size } = e.kind else {
            continue;
        };
        if !c.is_unowned_group() || size < BIGFILE_BYTES {
            continue;
        }
        let base = e
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let name = if taken.contains(&base) {
            e.path.to_string_lossy().trim_start_matches('/').to_string()
        } else {
            base
        };
        taken.insert(name.clone());
        bigfiles.insert(&e.path, format!("bigfiles/{name}"));
    }
    tree.entries
        .iter()
        .zip(components)
        .map(|(e, c)| {
            let big = match &e.kind {
                EntryKind::HardLink { target } => bigfiles.get(&**target),
                _ => bigfiles.get(&*e.path),
            };
            match (c.kind(), big) {
                (ComponentKind::UnownedGroup, Some(name)) => Component::named(name.as_str()),
                (ComponentKind::UnownedGroup, None) => c.clone(),
                (ComponentKind::Xattr, _) => c.renamed(format!("xattr/{}", c.name())),
                (ComponentKind::Named, _) => match database_name(c.name()) {
                    Some(name) => c.renamed(name),
                    None => c.clone(),
                },
            }
        })
        .collect()
}

const DAY: i64 = 86_400;
const LOOKBACK_DAYS: i64 = 365;
const PERIOD_DAYS: f64 = 7.0;

/// coreos/chunkah's stability of a package: the chance of no change in a
/// 7-day period, changes being a Poisson process whose rate is the days
/// with a changelog entry in the last year (consecutive entries of one UTC
/// day counted once) over the days since the oldest of them; without a
/// changelog, the build is the one change. `now` is the image's creation
/// time; 0.99 without a change in the year, 0.0 for one less than a day
/// old.
pub fn stability(changelog: &[i64], build_time: i64, now: i64) -> f64 {
    let start = (now - LOOKBACK_DAYS * DAY).max(0);
    let (changes, oldest) = if changelog.is_empty() {
        (u32::from(build_time >= start), build_time)
    } else {
        let mut changes = 0;
        let mut last_day = None;
        let mut oldest = i64::MAX;
        for &t in changelog.iter().filter(|&&t| t >= start) {
            let day = t.div_euclid(DAY);
            if last_day != Some(day) {
                changes += 1;
            }
            last_day = Some(day);
            oldest = oldest.min(t);
        }
        (changes, oldest)
    };
    if changes == 0 {
        return 0.99;
    }
    let span_days = (now - oldest).max(0) as f64 / DAY as f64;
    if span_days < 1.0 {
        return 0.0;
    }
    let rate = f64::from(changes) / span_days;
    (-PERIOD_DAYS * rate).exp()
}

/// The stability of a component whose update interval is `days`
/// (`user.update-interval`).
fn interval_stability(days: u32) -> f64 {
    (-PERIOD_DAYS / f64::from(days)).exp()
}

/// What coreos/chunkah says of a component: its stability and its time
/// (the newest build of its packages, else the image's creation time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Figures {
    /// The chance it does not change in a week.
    pub stability: f64,
    /// Seconds since the epoch.
    pub time: i64,
}

/// The figures of every (renamed) component: the stability from its
/// packages' build and changelog times (the least stable package of a
/// source), else its `user.update-interval`, else a week's interval
/// (coreos/chunkah's default), 0 for unowned files; the time the newest
/// build of its packages, else `now` (the image's creation time).
pub(crate) fn figures(
    components: &[Component],
    packages: &[InstalledPackage],
    intervals: &BTreeMap<String, u32>,
    now: i64,
) -> HashMap<String, Figures> {
    let mut by_package: HashMap<String, Figures> = HashMap::new();
    for p in packages {
        let Some(build) = p.build_time else { continue };
        let Some(name) = database_name(&p.component) else {
            continue;
        };
        let stability = stability(&p.changelog_times, build, now);
        by_package
            .entry(name)
            .and_modify(|f| {
                f.stability = f.stability.min(stability);
                f.time = f.time.max(build);
            })
            .or_insert(Figures {
                stability,
                time: build,
            });
    }
    let mut out = HashMap::new();
    for c in components {
        if out.contains_key(c.name()) {
            continue;
        }
        let f = if c.is_unowned_group() || c.name().starts_with("bigfiles/") {
            Figures {
                stability: 0.0,
                time: now,
            }
        } else if let Some(&f) = by_package.get(c.name()) {
            f
        } else {
            let days = intervals.get(c.name()).copied().unwrap_or(7);
            Figures {
                stability: interval_stability(days),
                time: now,
            }
        };
        out.insert(c.name().to_string(), f);
    }
    out
}

/// The stability of a layer holding `components`: the product of theirs.
pub(crate) fn layer_stability(components: &[String], figures: &HashMap<String, Figures>) -> f64 {
    components
        .iter()
        .map(|c| figures.get(c).map_or(0.0, |f| f.stability))
        .product()
}

/// Orders the layers of `plan` as coreos/chunkah does: the most stable
/// first (at the bottom), equal ones in the order they were.
pub(crate) fn most_stable_first(plan: &mut LayerPlan, figures: &HashMap<String, Figures>) {
    plan.layers.sort_by(|a, b| {
        layer_stability(&b.components, figures).total_cmp(&layer_stability(&a.components, figures))
    });
}

/// A layer as coreos/chunkah annotates it: its component names (a group of
/// unowned files is [`UNCLAIMED`]) sorted as bytes, joined by a space, and
/// the product of their stabilities.
pub(crate) struct LayerLabel {
    /// `org.chunkah.component`.
    pub component: String,
    /// `org.chunkah.stability`, `%.3f`.
    pub stability: String,
    /// Its history entry's time: the newest of its components' times.
    pub time: i64,
}

/// The label of each layer of `plan`.
pub(crate) fn layer_labels(
    plan: &LayerPlan,
    components: &[Component],
    figures: &HashMap<String, Figures>,
) -> Vec<LayerLabel> {
    let groups: HashSet<&str> = components
        .iter()
        .filter(|c| c.is_unowned_group())
        .map(Component::name)
        .collect();
    plan.layers
        .iter()
        .map(|l| label(l, &groups, figures))
        .collect()
}

fn label(
    l: &PlannedLayer,
    groups: &HashSet<&str>,
    figures: &HashMap<String, Figures>,
) -> LayerLabel {
    let mut names: Vec<&str> = l
        .components
        .iter()
        .map(|c| {
            if groups.contains(c.as_str()) {
                UNCLAIMED
            } else {
                c.as_str()
            }
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let stability = layer_stability(&l.components, figures);
    let time = l
        .components
        .iter()
        .filter_map(|c| figures.get(c).map(|f| f.time))
        .max()
        .unwrap_or(0);
    LayerLabel {
        component: names.join(" "),
        stability: format!("{stability:.3}"),
        time,
    }
}

/// One component of the `--write-manifest-to` document.
#[derive(Serialize)]
struct ManifestComponent {
    file_count: u64,
    size: u64,
    stability: f64,
    files: Vec<String>,
}

/// The `--write-manifest-to` document: every component (groups of unowned
/// files together as [`UNCLAIMED`]) with its entries' count, size
/// (regular files' content, symbolic links' targets), stability and
/// absolute paths, in the tree's order; pretty JSON without a final
/// newline, as coreos/chunkah writes it.
pub(crate) fn manifest_document(
    tree: &Tree,
    components: &[Component],
    figures: &HashMap<String, Figures>,
) -> String {
    let mut out: BTreeMap<String, ManifestComponent> = BTreeMap::new();
    for (e, c) in tree.entries.iter().zip(components) {
        let name = if c.is_unowned_group() {
            UNCLAIMED
        } else {
            c.name()
        };
        let entry = out
            .entry(name.to_string())
            .or_insert_with(|| ManifestComponent {
                file_count: 0,
                size: 0,
                stability: figures.get(c.name()).map_or(0.0, |f| f.stability),
                files: Vec::new(),
            });
        entry.file_count += 1;
        entry.size += match &e.kind {
            EntryKind::Regular { size } => *size,
            EntryKind::Symlink { target } => target.as_os_str().len() as u64,
            _ => 0,
        };
        entry.files.push(format!("/{}", e.path.display()));
    }
    #[derive(Serialize)]
    struct Document {
        components: BTreeMap<String, ManifestComponent>,
    }
    serde_json::to_string_pretty(&Document { components: out }).expect("a manifest serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn stability_as_coreos_computes_it() {
        // No changelog: the build is the one change.
        let built = NOW - 100 * DAY;
        assert!((stability(&[], built, NOW) - (-7.0f64 / 100.0).exp()).abs() < 1e-12);
        assert_eq!(stability(&[], NOW - 400 * DAY, NOW), 0.99);
        assert_eq!(stability(&[], NOW - 3600, NOW), 0.0);
        // Entries of one day count once, older than a year not at all.
        let log = [
            NOW - 10 * DAY,
            NOW - 10 * DAY - 60,
            NOW - 50 * DAY,
            NOW - 500 * DAY,
        ];
        let want = (-7.0 * 2.0 / 50.0f64).exp();
        assert!(
            (stability(&log, built, NOW) - want).abs() < 1e-12,
            "{}",
            stability(&log, built, NOW)
        );
        assert_eq!(stability(&[NOW - 500 * DAY], built, NOW), 0.99);
        assert_eq!(format!("{:.3}", interval_stability(7)), "0.368");
        assert_eq!(format!("{:.3}", interval_stability(30)), "0.792");
    }

    #[test]
    fn database_names_as_coreos_spells_them() {
        assert_eq!(database_name("rpm:bash").as_deref(), Some("rpm/bash"));
        assert_eq!(database_name("pacman:gcc").as_deref(), Some("alpm/gcc"));
        assert_eq!(database_name("deb:glibc").as_deref(), Some("deb/glibc"));
        assert_eq!(database_name("myapp"), None);
        assert_eq!(database_name("unowned:usr"), None);
    }
}
