//! `chunkah report IMAGE1 IMAGE2 ...`: update bandwidth at every level, step
//! by step, as a table, JSON or an SVG chart.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{report, ReportJob, Step};
use chunkah::store::ImageRef;
use clap::Args;

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
        chunkah::io::write_atomic(file, svg(&steps).as_bytes())
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
    Ok(())
}

/// A round step for `ticks` ticks up to at least `max`: 1, 2 or 5 times a
/// power of ten.
fn tick_step(max: f64, ticks: u32) -> f64 {
    let raw = (max / f64::from(ticks)).max(1.0);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

/// The unit charts use for values up to `max` bytes.
fn unit(max: f64) -> (&'static str, f64) {
    match max {
        m if m >= 1e9 => ("GB", 1e9),
        m if m >= 1e6 => ("MB", 1e6),
        m if m >= 1e3 => ("kB", 1e3),
        _ => ("B", 1.0),
    }
}

/// A grouped bar chart: for each step, the bytes at each level.
fn svg(steps: &[(String, &Step)]) -> String {
    const LEVELS: [(&str, &str); 5] = [
        ("image", "#b0b0b0"),
        ("layer", "#e4794a"),
        ("file", "#e8b64c"),
        ("chunk", "#3a78c2"),
        ("delta", "#3f9a5a"),
    ];
    // The delta level where any step has one.
    let levels = if steps.iter().any(|(_, s)| s.levels.delta.is_some()) {
        5
    } else {
        4
    };
    let bars = levels as f64;
    let label_chars = steps
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    // Each group is wide enough for its x label (about 6 px a character).
    let (bar, left, top, height) = (26.0, 80.0, 60.0, 260.0);
    let group = (bar * bars + 30.0f64).max(label_chars as f64 * 6.5 + 12.0);
    let width = (left + group * steps.len() as f64 + 20.0).max(460.0);
    let max_bytes = steps
        .iter()
        .map(|(_, s)| s.levels.image.bytes)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (unit_name, scale) = unit(max_bytes);
    let step = tick_step(max_bytes / scale, 4) * scale;
    let ticks = (max_bytes / step).ceil().max(1.0) as u32;
    let max = step * f64::from(ticks);
    let decimals = if step / scale >= 1.0 { 0 } else { 1 };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" font-family="sans-serif" font-size="11">"#,
        h = top + height + 50.0
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">Download per update step, by level ({unit_name})</text>"#
    );
    for (i, (name, color)) in LEVELS[..levels].iter().enumerate() {
        let x = 10.0 + i as f64 * 80.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="32" width="10" height="10" fill="{color}"/><text x="{}" y="41">{name}</text>"#,
            x + 14.0
        );
    }
    let base = top + height;
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{base}" x2="{}" y2="{base}" stroke="#333"/>"##,
        width - 10.0
    );
    for tick in 0..=ticks {
        let v = step * f64::from(tick);
        let y = base - height * v / max;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{:.decimals$}</text><line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            left - 6.0,
            y + 4.0,
            v / scale,
            width - 10.0
        );
    }
    for (i, (name, step)) in steps.iter().enumerate() {
        let x0 = left + (group - bar * bars) / 2.0 + i as f64 * group;
        let l = &step.levels;
        // A step without a delta has none: its bar is left empty.
        let delta = l.delta.unwrap_or_default();
        for (j, (level, (level_name, color))) in [l.image, l.layer, l.file, l.chunk, delta]
            .iter()
            .zip(LEVELS)
            .take(levels)
            .enumerate()
        {
            if j == 4 && l.delta.is_none() {
                continue;
            }
            let h = height * level.bytes as f64 / max;
            let x = x0 + j as f64 * bar;
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{}" width="{}" height="{h}" fill="{color}"><title>{level_name}: {}</title></rect>"#,
                base - h,
                bar - 2.0,
                human(level.bytes)
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="8">{}</text>"#,
                x + bar / 2.0 - 1.0,
                base - h - 3.0,
                xml(&human(level.bytes))
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x0 + bar * bars / 2.0,
            base + 18.0,
            xml(&name.replace(" -> ", " → "))
        );
    }
    s.push_str("</svg>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_distinct() {
        assert_eq!(tick_step(4.0, 4), 1.0);
        assert_eq!(tick_step(48.0, 4), 20.0);
        assert_eq!(tick_step(0.3, 4), 1.0);
        assert_eq!(unit(52_800_000.0), ("MB", 1e6));
        assert_eq!(unit(1_800.0), ("kB", 1e3));
    }

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
