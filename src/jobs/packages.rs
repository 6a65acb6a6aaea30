//! What each package update costs: the packages of OLD and NEW compared
//! (added, removed, changed from one version to another) and the bytes of
//! a diff's layer, chunk and delta levels split among NEW's packages, as
//! `chunkah diff --packages` reports them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::diff::PlannedImages;
pub(crate) use super::package_list::SidePackages;
use crate::component::InstalledPackage;
use crate::error::{Error, Result};
use crate::store::OpenImage;
use crate::update::by_owner::{split_levels, LevelShares, Owner, Shares, UsedDelta};
use crate::update::RequestOptions;

/// Bytes at the layer, chunk and delta levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LevelBytes {
    /// At the layer level (new blobs).
    pub layer: u64,
    /// At the chunk level (new frames).
    pub chunk: u64,
    /// At the delta level, when NEW lists a delta from OLD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<u64>,
}

impl LevelBytes {
    fn of(shares: &LevelShares, owner: Owner) -> Self {
        LevelBytes {
            layer: shares.layer.get(owner),
            chunk: shares.chunk.get(owner),
            delta: shares.delta.as_ref().map(|d| d.get(owner)),
        }
    }

    /// Whether it counts no byte.
    pub fn is_zero(&self) -> bool {
        self.layer == 0 && self.chunk == 0 && self.delta.unwrap_or(0) == 0
    }

    /// The bytes of the deepest level it has (delta, else chunk).
    pub fn deepest(&self) -> u64 {
        self.delta.unwrap_or(self.chunk)
    }

    /// Adds `other`'s bytes level by level (a delta level where either
    /// has one).
    pub fn add(&mut self, other: &LevelBytes) {
        self.delta = match (self.delta, other.delta) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(self.chunk) + b.unwrap_or(other.chunk)),
        };
        self.layer += other.layer;
        self.chunk += other.chunk;
    }
}

/// How a package differs from OLD to NEW.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageStatus {
    /// In NEW only.
    Added,
    /// In OLD only.
    Removed,
    /// In both, with another version.
    Changed,
    /// In both, the same version (its files may still cost bytes: a
    /// neighbour in its layer changed, or its files did without a new
    /// version).
    Same,
}

/// One package and what updating it costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageCost {
    /// Its name.
    pub name: String,
    /// The database that lists it (`dpkg`, `rpm`, `apk`, `pacman`).
    pub database: String,
    /// Its architecture, if the database records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Added, removed, changed or the same.
    pub status: PackageStatus,
    /// Its version in OLD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_version: Option<String>,
    /// Its version in NEW.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version: Option<String>,
    /// What a client holding OLD downloads for its files in NEW.
    pub bytes: LevelBytes,
}

/// Every package update and its cost: what `diff --packages` adds to a
/// [`super::DiffReport`]. The bytes of `packages`, `unowned`, `metadata`
/// and `not_indexed` add up to the report's levels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageReport {
    /// The packages added, removed or changed, and those of the same
    /// version whose files cost bytes; the costliest first (delta level,
    /// else chunk, then layer), then by name.
    pub packages: Vec<PackageCost>,
    /// Packages in both, of the same version, that cost nothing.
    pub unchanged: usize,
    /// Files no package database lists.
    pub unowned: LevelBytes,
    /// Manifests, configs, chunk indexes, tar headers of entries without
    /// content (directories, links), finding a delta.
    pub metadata: LevelBytes,
    /// Layers without a chunk index (other tools' images): whose files
    /// they hold is not read.
    #[serde(skip_serializing_if = "LevelBytes::is_zero")]
    pub not_indexed: LevelBytes,
    /// What was wrong in either side's package databases, naming the
    /// file.
    pub warnings: Vec<String>,
    /// Where OLD's and NEW's packages were read: `tree` (a directory's
    /// databases), `layers` (an image's layers applied) or `sbom DIGEST`
    /// (the SPDX document published beside the image).
    pub read_from: [String; 2],
}

/// The packages of OLD and NEW (`images`, their packages `sides`) and the
/// levels of `planned` split among them.
pub(crate) fn image_package_report(
    images: [&OpenImage; 2],
    sides: [&SidePackages; 2],
    planned: &PlannedImages,
    options: RequestOptions,
) -> Result<PackageReport> {
    let [old, new] = images;
    let chunk_plan = crate::update::plan(&old.view, &new.view, options);
    let used = planned.found.as_deref().map(|found| UsedDelta {
        found,
        taken: planned
            .delta
            .as_ref()
            .map(|d| (planned.plan.blobs.as_slice(), d.ranges.as_slice())),
    });
    let shares = split_levels(&old.view, &new.view, &chunk_plan, used, &|p| {
        sides[1].owner(p)
    });
    let levels = &planned.plan.levels;
    let totals = LevelBytes {
        layer: levels.layer.bytes,
        chunk: levels.chunk.bytes,
        delta: levels.delta.map(|d| d.bytes),
    };
    package_report(sides[0], sides[1], &shares, totals)
}

/// One package over a series of versions: what `report --packages` sums.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPackage {
    /// Its name.
    pub name: String,
    /// The database that lists it.
    pub database: String,
    /// Its architecture, if the database records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The versions it had, oldest first, one for each change.
    pub versions: Vec<String>,
    /// The steps that added, removed or changed it.
    pub changed_in: usize,
    /// Its bytes summed over the steps (a step without a delta level
    /// counts its chunk level at the delta level).
    pub bytes: LevelBytes,
}

/// The packages of a series and what updating them cost over all its
/// steps: `report --packages`. The bytes of `packages`, `unowned`,
/// `metadata` and `not_indexed` add up to the steps' levels summed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPackages {
    /// The packages changed in some step or costing bytes in one, the
    /// costliest first.
    pub packages: Vec<SeriesPackage>,
    /// Files no package database lists.
    pub unowned: LevelBytes,
    /// Manifests, configs, chunk indexes, headers, finding deltas.
    pub metadata: LevelBytes,
    /// Layers without a chunk index.
    #[serde(skip_serializing_if = "LevelBytes::is_zero")]
    pub not_indexed: LevelBytes,
}

/// Sums the step reports `steps` of a series whose versions hold the
/// packages `sides` (one more than the steps).
pub(crate) fn sum_series(steps: &[&PackageReport], sides: &[SidePackages]) -> SeriesPackages {
    let mut sum = SeriesPackages::default();
    let mut rows: BTreeMap<(String, String, Option<String>), SeriesPackage> = BTreeMap::new();
    for step in steps {
        sum.unowned.add(&step.unowned);
        sum.metadata.add(&step.metadata);
        sum.not_indexed.add(&step.not_indexed);
        for c in &step.packages {
            let row = rows
                .entry((c.database.clone(), c.name.clone(), c.architecture.clone()))
                .or_insert_with(|| SeriesPackage {
                    name: c.name.clone(),
                    database: c.database.clone(),
                    architecture: c.architecture.clone(),
                    versions: Vec::new(),
                    changed_in: 0,
                    bytes: LevelBytes::default(),
                });
            row.changed_in += usize::from(c.status != PackageStatus::Same);
            row.bytes.add(&c.bytes);
        }
    }
    for side in sides {
        for p in side.packages() {
            let k = (
                p.database.to_string(),
                p.name.clone(),
                p.architecture.clone(),
            );
            if let (Some(row), Some(v)) = (rows.get_mut(&k), &p.version) {
                if row.versions.last() != Some(v) {
                    row.versions.push(v.clone());
                }
            }
        }
    }
    // Where any step has a delta level, every row has one (the chunk level
    // of the steps without), as the steps' totals do.
    let any_delta = steps.iter().any(|s| s.metadata.delta.is_some());
    sum.packages = rows.into_values().collect();
    for b in sum.packages.iter_mut().map(|p| &mut p.bytes).chain([
        &mut sum.unowned,
        &mut sum.metadata,
        &mut sum.not_indexed,
    ]) {
        if any_delta && b.delta.is_none() {
            b.delta = Some(b.chunk);
        }
    }
    sum.packages.sort_by(|a, b| {
        (b.bytes.deepest(), b.bytes.layer)
            .cmp(&(a.bytes.deepest(), a.bytes.layer))
            .then_with(|| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)))
    });
    sum
}

/// Who a package is, to match OLD's to NEW's.
type Key<'a> = (crate::component::Database, &'a str, Option<&'a str>);

fn key(p: &InstalledPackage) -> Key<'_> {
    (p.database, &p.name, p.architecture.as_deref())
}

/// Compares OLD's packages with NEW's and gives each its bytes of
/// `shares` (whose [`Owner::Package`] numbers are positions in NEW's
/// packages).
///
/// # Errors
///
/// [`Error::Config`] when the owners' bytes of a level do not add up to
/// `totals` (a fault of the split, reported rather than printed wrong).
pub(crate) fn package_report(
    old: &SidePackages,
    new: &SidePackages,
    shares: &LevelShares,
    totals: LevelBytes,
) -> Result<PackageReport> {
    check_totals(shares, totals)?;
    let (before, removed) = match_packages(old.packages(), new.packages());
    let mut report = PackageReport::default();
    for (i, (p, before)) in new.packages().iter().zip(before).enumerate() {
        let bytes = LevelBytes::of(shares, Owner::Package(i));
        let status = match before {
            None => PackageStatus::Added,
            Some(o) if o.version != p.version => PackageStatus::Changed,
            Some(_) => PackageStatus::Same,
        };
        if status == PackageStatus::Same && bytes.is_zero() {
            report.unchanged += 1;
            continue;
        }
        report.packages.push(PackageCost {
            name: p.name.clone(),
            database: p.database.to_string(),
            architecture: p.architecture.clone(),
            status,
            old_version: before.and_then(|o| o.version.clone()),
            new_version: p.version.clone(),
            bytes,
        });
    }
    for o in removed {
        report.packages.push(PackageCost {
            name: o.name.clone(),
            database: o.database.to_string(),
            architecture: o.architecture.clone(),
            status: PackageStatus::Removed,
            old_version: o.version.clone(),
            new_version: None,
            bytes: LevelBytes {
                delta: totals.delta.map(|_| 0),
                ..LevelBytes::default()
            },
        });
    }
    report.packages.sort_by(|a, b| {
        (b.bytes.deepest(), b.bytes.layer)
            .cmp(&(a.bytes.deepest(), a.bytes.layer))
            .then_with(|| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)))
    });
    report.unowned = LevelBytes::of(shares, Owner::Unowned);
    report.metadata = LevelBytes::of(shares, Owner::Metadata);
    report.not_indexed = LevelBytes::of(shares, Owner::NotIndexed);
    report.warnings = old
        .warnings()
        .iter()
        .map(|w| format!("OLD: {w}"))
        .chain(new.warnings().iter().map(|w| format!("NEW: {w}")))
        .collect();
    report.read_from = [old.read_from().to_string(), new.read_from().to_string()];
    Ok(report)
}

/// Each NEW package's OLD counterpart: one of the same name and
/// architecture and the same version if there is one, else one of the same
/// name and architecture not matched yet (a change), else none (added);
/// and the OLD packages no NEW one matched (removed). A name installed
/// twice (npm's nested copies, two kernels) is matched version by version.
fn match_packages<'a>(
    old: &'a [InstalledPackage],
    new: &[InstalledPackage],
) -> (Vec<Option<&'a InstalledPackage>>, Vec<&'a InstalledPackage>) {
    let mut by_key: BTreeMap<Key<'_>, Vec<usize>> = BTreeMap::new();
    for (j, o) in old.iter().enumerate() {
        by_key.entry(key(o)).or_default().push(j);
    }
    let mut used = vec![false; old.len()];
    let mut matched: Vec<Option<usize>> = vec![None; new.len()];
    for same_version in [true, false] {
        for (i, p) in new.iter().enumerate() {
            if matched[i].is_some() {
                continue;
            }
            let candidates = by_key.get(&key(p)).map_or(&[][..], Vec::as_slice);
            let found = candidates
                .iter()
                .copied()
                .find(|&j| !used[j] && (!same_version || old[j].version == p.version));
            if let Some(j) = found {
                used[j] = true;
                matched[i] = Some(j);
            }
        }
    }
    let removed = old
        .iter()
        .zip(&used)
        .filter(|(_, &u)| !u)
        .map(|(o, _)| o)
        .collect();
    (
        matched.into_iter().map(|m| m.map(|j| &old[j])).collect(),
        removed,
    )
}

fn check_totals(shares: &LevelShares, totals: LevelBytes) -> Result<()> {
    let levels = [
        ("layer", Some(&shares.layer), Some(totals.layer)),
        ("chunk", Some(&shares.chunk), Some(totals.chunk)),
        ("delta", shares.delta.as_ref(), totals.delta),
    ];
    for (name, split, total) in levels {
        let split = split.map(Shares::total);
        if split != total {
            return Err(Error::Config(format!(
                "the {name} level's bytes split among packages add up to {split:?}, not its {total:?} bytes"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(name: &str, version: &str) -> InstalledPackage {
        InstalledPackage {
            database: crate::component::Database::Npm,
            name: name.into(),
            version: Some(version.into()),
            architecture: None,
            source: None,
            license: None,
            component: format!("npm:{name}"),
            paths: Vec::new(),
            build_time: None,
            changelog_times: Vec::new(),
        }
    }

    #[test]
    fn a_name_installed_twice_is_matched_version_by_version() {
        let old = [
            installed("ms", "2.1.2"),
            installed("ms", "2.1.3"),
            installed("gone", "1"),
        ];
        let new = [
            installed("debug", "4"),
            installed("ms", "2.1.3"),
            installed("ms", "2.1.4"),
        ];
        let (before, removed) = match_packages(&old, &new);
        let versions: Vec<Option<&str>> = before
            .iter()
            .map(|b| b.and_then(|o| o.version.as_deref()))
            .collect();
        // 2.1.3 stays 2.1.3; 2.1.2 became 2.1.4; debug is new.
        assert_eq!(versions, [None, Some("2.1.3"), Some("2.1.2")]);
        assert_eq!(
            removed.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["gone"]
        );
    }

    #[test]
    fn level_bytes_add_counts_the_chunk_level_where_a_step_has_no_delta() {
        let mut sum = LevelBytes {
            layer: 10,
            chunk: 5,
            delta: None,
        };
        sum.add(&LevelBytes {
            layer: 7,
            chunk: 4,
            delta: Some(1),
        });
        assert_eq!(
            sum,
            LevelBytes {
                layer: 17,
                chunk: 9,
                delta: Some(6)
            }
        );
        sum.add(&LevelBytes {
            layer: 1,
            chunk: 2,
            delta: None,
        });
        assert_eq!(sum.delta, Some(8));
    }
}
