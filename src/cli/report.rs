//! `chunkah report IMAGE1 IMAGE2 ...`: update bandwidth at every level, step
//! by step, as a table, JSON or an SVG chart.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::delta::{self, Levels};
use clap::Args;
use serde::Serialize;

use super::diff::{human, view};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The versions, oldest first: `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`.
    #[arg(value_name = "IMAGE", num_args = 2.., required = true)]
    images: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Write a bar chart of the steps to FILE (SVG).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    #[command(flatten)]
    plan_args: super::plan_args::PlanArgs,
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Step {
    old: String,
    new: String,
    levels: Levels,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    schema_version: u32,
    steps: Vec<Step>,
}

/// The short name of a reference for tables and charts: its tag, or all of it.
fn short(reference: &str) -> String {
    let tail = reference.rsplit('/').next().unwrap_or(reference);
    match tail.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => reference.to_string(),
    }
}

pub fn run(args: ReportArgs) -> Result<()> {
    let options = args.plan_args.options()?;
    let views = args
        .images
        .iter()
        .map(|r| view(r, &args.registry).map(|(v, _)| v))
        .collect::<Result<Vec<_>>>()?;
    let steps: Vec<Step> = views
        .windows(2)
        .zip(args.images.windows(2))
        .map(|(v, names)| Step {
            old: names[0].clone(),
            new: names[1].clone(),
            levels: delta::plan(&v[0], &v[1], options).levels,
        })
        .collect();
    if let Some(file) = &args.svg {
        chunkah::oci::layout::write_atomic(file, svg(&steps).as_bytes())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let mut out = io::stdout().lock();
    if args.json {
        let report = Report {
            schema_version: 1,
            steps,
        };
        let json = serde_json::to_string_pretty(&report).expect("a report serialises");
        writeln!(out, "{json}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>9} {:>12}",
        "step", "image", "layer", "file", "chunk", "requests", "chunk/layer"
    )?;
    for s in &steps {
        let l = &s.levels;
        writeln!(
            out,
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>9} {:>11.1}%",
            format!("{} -> {}", short(&s.old), short(&s.new)),
            human(l.image.bytes),
            human(l.layer.bytes),
            human(l.file.bytes),
            human(l.chunk.bytes),
            l.chunk.requests.unwrap_or(0),
            100.0 * l.chunk.bytes as f64 / l.layer.bytes.max(1) as f64
        )?;
    }
    Ok(())
}

/// A grouped bar chart: for each step, the bytes at each level.
fn svg(steps: &[Step]) -> String {
    const LEVELS: [(&str, &str); 4] = [
        ("image", "#b0b0b0"),
        ("layer", "#e4794a"),
        ("file", "#e8b64c"),
        ("chunk", "#3a78c2"),
    ];
    let (bar, gap, left, top, height) = (26.0, 30.0, 70.0, 50.0, 260.0);
    let group = bar * 4.0 + gap;
    let width = left + group * steps.len() as f64 + 20.0;
    let max = steps
        .iter()
        .map(|s| s.levels.image.bytes)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#,
        w = width,
        h = top + height + 60.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">Download per update step, by level (MB)</text>"#
    );
    for (i, (name, color)) in LEVELS.iter().enumerate() {
        let x = left + i as f64 * 80.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="30" width="10" height="10" fill="{color}"/><text x="{}" y="39">{name}</text>"#,
            x + 14.0
        );
    }
    let base = top + height;
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{base}" x2="{}" y2="{base}" stroke="#333"/>"##,
        width - 10.0
    );
    for tick in 0..=4 {
        let v = max * tick as f64 / 4.0;
        let y = base - height * tick as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{:.1}</text><line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            left - 6.0,
            y + 4.0,
            v / 1e6,
            width - 10.0
        );
    }
    for (i, step) in steps.iter().enumerate() {
        let x0 = left + gap / 2.0 + i as f64 * group;
        let l = &step.levels;
        for (j, (level, (name, color))) in [l.image, l.layer, l.file, l.chunk]
            .iter()
            .zip(LEVELS)
            .enumerate()
        {
            let h = height * level.bytes as f64 / max;
            let x = x0 + j as f64 * bar;
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{}" width="{}" height="{h}" fill="{color}"><title>{name}: {}</title></rect>"#,
                base - h,
                bar - 2.0,
                human(level.bytes)
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="9">{:.1}</text>"#,
                x + bar / 2.0 - 1.0,
                base - h - 3.0,
                level.bytes as f64 / 1e6
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{} → {}</text>"#,
            x0 + bar * 2.0,
            base + 18.0,
            xml(&short(&step.old)),
            xml(&short(&step.new))
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
