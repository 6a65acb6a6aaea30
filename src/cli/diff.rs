//! `chunkah diff OLD NEW`: what a client holding OLD downloads to get NEW.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{diff, ByteUnit, DiffJob, Input, LevelBytes, PackageReport, PackageStatus};
use chunkah::update::Levels;
use clap::Args;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The image the client holds: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`
    /// or `docker://HOST/REPO:TAG`;
    /// or a root file system `dir:PATH` (NEW must be one too), chunked on the
    /// fly, the levels then in uncompressed bytes.
    #[arg(value_name = "OLD")]
    old: String,
    /// The image it wants.
    #[arg(value_name = "NEW")]
    new: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also list each package added, removed or changed (old -> new
    /// version) and its bytes at the layer, chunk and delta levels (read
    /// from both sides' package databases: for images, every layer is read).
    #[arg(long)]
    packages: bool,
    /// Write every blob and byte range to fetch (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Exit 0 when NEW needs nothing OLD lacks, 1 when it does, 2 on error.
    #[arg(long)]
    exit_code: bool,
    #[command(flatten)]
    plan_args: super::plan_args::PlanArgs,
    /// dir: trees: clamp mtimes to this time, as `pack` would
    /// [env: SOURCE_DATE_EPOCH].
    #[arg(long)]
    source_date_epoch: Option<i64>,
    /// The architecture image indexes are read for (amd64, arm64;
    /// x86_64, aarch64 ... are read as such); default this machine's.
    #[arg(long, value_name = "ARCH", value_parser = super::base_config::parse_arch)]
    arch: Option<String>,
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

impl DiffArgs {
    /// Whether errors exit with 2 (as diff(1)).
    pub fn exit_code(&self) -> bool {
        self.exit_code
    }
}

/// The diff; returns the exit code.
pub fn run(args: DiffArgs) -> Result<u8> {
    let job = DiffJob {
        old: Input::parse(&args.old)?,
        new: Input::parse(&args.new)?,
        options: args.plan_args.options(),
        source_date_epoch: super::source_date_epoch(args.source_date_epoch)?,
        packages: args.packages,
    };
    let ctx = super::job_context(args.registry.store()?, None, args.arch.as_deref());
    if args.plan.is_some() && matches!(job.old, Input::Dir(_)) {
        return Err(chunkah::Error::Config(
            "--plan needs images: dir: trees have no blobs to fetch from".into(),
        )
        .into());
    }
    let report = diff(&job, &ctx)?;
    if let (Some(file), Some(plan)) = (&args.plan, &report.plan) {
        let json = serde_json::to_vec_pretty(plan).expect("a plan serialises");
        chunkah::io::write_atomic(file, &json)
            .with_context(|| format!("writing the plan to {}", file.display()))?;
    }
    let mut out = io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&report).expect("a report serialises");
        writeln!(out, "{json}")?;
    } else {
        write_table(&mut out, &report.levels)?;
        if let Some(p) = &report.packages {
            writeln!(out)?;
            write_packages(&mut out, p)?;
        }
        if let Some(why) = &report.delta_unusable {
            writeln!(
                out,
                "(a delta is published but cannot be used: {})",
                super::escape_controls(why)
            )?;
        }
        if report.unit == ByteUnit::Uncompressed {
            writeln!(out, "(uncompressed bytes of file content)")?;
        } else if report.same {
            writeln!(
                out,
                "(OLD holds everything NEW needs; the layer and chunk levels are NEW's manifest)"
            )?;
        }
    }
    Ok(if args.exit_code && !report.same { 1 } else { 0 })
}

/// A byte count for people: `52.7 MB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn write_table(out: &mut impl Write, l: &Levels) -> io::Result<()> {
    let image = l.image.bytes.max(1) as f64;
    writeln!(out, "level        bytes  requests  of image")?;
    for (name, level) in [
        ("image", Some(&l.image)),
        ("layer", Some(&l.layer)),
        ("file", Some(&l.file)),
        ("chunk", Some(&l.chunk)),
        ("delta", l.delta.as_ref()),
    ]
    .into_iter()
    .filter_map(|(n, l)| Some((n, l?)))
    {
        let requests = level.requests.map_or("-".to_string(), |r| r.to_string());
        write!(
            out,
            "{name:6} {:>11} {requests:>9} {:>8.1}%",
            human(level.bytes),
            100.0 * level.bytes as f64 / image
        )?;
        if let Some(i) = level.index_bytes {
            write!(out, "  (indexes {})", human(i))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The package table: a row per package, then the files no package owns
/// and the metadata; the rows add up to the levels above. Warnings go to
/// standard error.
pub fn write_packages(out: &mut impl Write, p: &PackageReport) -> io::Result<()> {
    let rows: Vec<[String; 3]> = p
        .packages
        .iter()
        .map(|c| {
            let status = match c.status {
                PackageStatus::Added => "added",
                PackageStatus::Removed => "removed",
                PackageStatus::Changed => "changed",
                PackageStatus::Same => "same",
            };
            let version = match (&c.old_version, &c.new_version) {
                (Some(o), Some(n)) if o != n => format!("{o} -> {n}"),
                (_, Some(v)) | (Some(v), None) => v.clone(),
                (None, None) => "-".into(),
            };
            [
                super::escape_controls(&c.name),
                status.to_string(),
                super::escape_controls(&version),
            ]
        })
        .collect();
    let mut others = vec![("(unowned files)", &p.unowned), ("(metadata)", &p.metadata)];
    if !p.not_indexed.is_zero() {
        others.push(("(layers without index)", &p.not_indexed));
    }
    let name_w = rows
        .iter()
        .map(|r| r[0].chars().count())
        .chain(others.iter().map(|o| o.0.len()))
        .max()
        .unwrap_or(0);
    let version_w = rows
        .iter()
        .map(|r| r[2].chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let delta = p.metadata.delta.is_some();
    let line = |out: &mut dyn Write, cells: [&str; 3], bytes: [String; 3]| {
        let [name, status, version] = cells;
        write!(
            out,
            "{name:<name_w$}  {status:<7}  {version:<version_w$} {:>9} {:>9}",
            bytes[0], bytes[1]
        )?;
        if delta {
            write!(out, " {:>9}", bytes[2])?;
        }
        writeln!(out)
    };
    let amounts = |b: &LevelBytes| {
        [
            human(b.layer),
            human(b.chunk),
            b.delta.map_or(String::new(), human),
        ]
    };
    line(
        out,
        ["package", "status", "version"],
        ["layer".into(), "chunk".into(), "delta".into()],
    )?;
    for (r, c) in rows.iter().zip(&p.packages) {
        line(out, [&r[0], &r[1], &r[2]], amounts(&c.bytes))?;
    }
    for (name, b) in others {
        line(out, [name, "", ""], amounts(b))?;
    }
    writeln!(
        out,
        "({} more packages unchanged, costing nothing)",
        p.unchanged
    )?;
    for w in &p.warnings {
        eprintln!("chunkah: warning: {}", super::escape_controls(w));
    }
    Ok(())
}
