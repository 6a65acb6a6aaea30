//! `chunkah report IMAGE1 IMAGE2 ...`: update bandwidth at every level, step
//! by step, as a table, JSON or an SVG chart.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{report, LevelBytes, ReportJob, SeriesPackages, Step};
use chunkah::store::ImageRef;
use clap::Args;

use super::chart::{BarChart, Group, Series};
use super::diff::human;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The versions, oldest first: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`
    /// or `docker://HOST/REPO:TAG`.
    #[arg(value_name = "IMAGE", num_args = 2.., required = true, value_parser = ImageRef::parse)]
    images: Vec<ImageRef>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also sum each package's bytes over the steps (its versions, the
    /// steps that changed it, its bytes at the layer, chunk and delta
    /// levels); reads every layer of every version.
    #[arg(long)]
    packages: bool,
    /// Write a bar chart of the steps to FILE (SVG).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    #[command(flatten)]
    plan_args: super::plan_args::PlanArgs,
    /// The architecture image indexes are read for (amd64, arm64;
    /// x86_64, aarch64 ... are read as such); default this machine's.
    #[arg(long, value_name = "ARCH", value_parser = super::base_config::parse_arch)]
    arch: Option<String>,
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

/// Short names of the versions for tables and charts: their tags (`latest`
/// where none is given) when those tell them apart, else the references.
fn labels(images: &[ImageRef]) -> Vec<String> {
    let tags: Vec<String> = images
        .iter()
        .map(|r| r.tag_or_default().to_string())
        .collect();
    let mut sorted = tags.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() == tags.len() {
        tags
    } else {
        images.iter().map(ToString::to_string).collect()
    }
}

pub fn run(args: ReportArgs) -> Result<()> {
    let job = ReportJob {
        images: args.images.clone(),
        options: args.plan_args.options(),
        packages: args.packages,
    };
    let ctx = super::job_context(args.registry.store()?, None, args.arch.as_deref());
    let series = report(&job, &ctx)?;
    let names = labels(&args.images);
    let steps: Vec<(String, &Step)> = series
        .steps
        .iter()
        .zip(names.windows(2))
        .map(|(s, n)| (format!("{} -> {}", n[0], n[1]), s))
        .collect();
    if let Some(file) = &args.svg {
        chunkah::io::write_atomic(file, chart(&steps).to_svg().as_bytes())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let mut out = io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&series).expect("a report serialises");
        writeln!(out, "{json}")?;
        return Ok(());
    }
    let width = steps.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "{:<width$} {:>10} {:>10} {:>10} {:>10} {:>9} {:>12} {:>10}",
        "step", "image", "layer", "file", "chunk", "requests", "chunk/layer", "delta"
    )?;
    for (name, s) in &steps {
        let l = &s.levels;
        writeln!(
            out,
            "{:<width$} {:>10} {:>10} {:>10} {:>10} {:>9} {:>11.1}% {:>10}",
            name,
            human(l.image.bytes),
            human(l.layer.bytes),
            human(l.file.bytes),
            human(l.chunk.bytes),
            l.chunk.requests.unwrap_or(0),
            100.0 * l.chunk.bytes as f64 / l.layer.bytes.max(1) as f64,
            l.delta.map_or_else(|| "-".to_string(), |d| human(d.bytes)),
        )?;
    }
    if let Some(p) = &series.packages {
        writeln!(out)?;
        write_packages(&mut out, p)?;
    }
    Ok(())
}

/// The packages summed over the series; the rows add up to the steps'
/// levels summed.
fn write_packages(out: &mut impl Write, p: &SeriesPackages) -> io::Result<()> {
    let rows: Vec<(String, String, &LevelBytes, usize)> = p
        .packages
        .iter()
        .map(|c| {
            let name = super::escape_controls(&c.name);
            (
                name,
                super::escape_controls(&c.versions.join(" -> ")),
                &c.bytes,
                c.changed_in,
            )
        })
        .collect();
    let others = [
        ("(unowned files)", &p.unowned),
        ("(metadata)", &p.metadata),
        ("(layers without index)", &p.not_indexed),
    ];
    let others = others
        .iter()
        .filter(|(n, b)| !b.is_zero() || !n.starts_with("(layers"));
    let name_w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(22);
    let version_w = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    let line = |out: &mut dyn Write, name: &str, versions: &str, changed: &str, b: [String; 3]| {
        writeln!(
            out,
            "{name:<name_w$}  {versions:<version_w$}  {changed:>7} {:>9} {:>9} {:>9}",
            b[0], b[1], b[2]
        )
    };
    let amounts = |b: &LevelBytes| {
        [
            human(b.layer),
            human(b.chunk),
            b.delta.map_or("-".into(), human),
        ]
    };
    line(
        out,
        "package",
        "versions",
        "changed",
        ["layer".into(), "chunk".into(), "delta".into()],
    )?;
    for (name, versions, bytes, changed) in &rows {
        line(out, name, versions, &changed.to_string(), amounts(bytes))?;
    }
    for (name, bytes) in others {
        line(out, name, "", "", amounts(bytes))?;
    }
    Ok(())
}

/// The chart's bars: the levels, cheapest last, each with its colour.
const LEVELS: [Series; 5] = [
    Series {
        name: "image",
        color: "#b0b0b0",
    },
    Series {
        name: "layer",
        color: "#e4794a",
    },
    Series {
        name: "file",
        color: "#e8b64c",
    },
    Series {
        name: "chunk",
        color: "#3a78c2",
    },
    Series {
        name: "delta",
        color: "#3f9a5a",
    },
];

/// A grouped bar chart: for each step, the bytes at each level; the delta
/// level where any step has one.
fn chart(steps: &[(String, &Step)]) -> BarChart {
    let with_delta = steps.iter().any(|(_, s)| s.levels.delta.is_some());
    let series = LEVELS[..if with_delta { 5 } else { 4 }].to_vec();
    let groups = steps
        .iter()
        .map(|(name, step)| {
            let l = &step.levels;
            let bytes = [l.image, l.layer, l.file, l.chunk].map(|level| Some(level.bytes));
            Group {
                label: name.replace(" -> ", " → "),
                bytes: bytes
                    .into_iter()
                    .chain([l.delta.map(|d| d.bytes)])
                    .take(series.len())
                    .collect(),
            }
        })
        .collect();
    BarChart {
        title: "Download per update step, by level".to_string(),
        series,
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_tags_when_they_differ() {
        let r = |s: &str| ImageRef::parse(s).unwrap();
        assert_eq!(
            labels(&[r("oci:a"), r("oci:a:v2")]),
            ["latest".to_string(), "v2".to_string()]
        );
        assert_eq!(
            labels(&[r("oci:a"), r("oci:b")]),
            ["oci:a".to_string(), "oci:b".to_string()]
        );
    }
}
