//! `chunkah diff OLD NEW`: what a client holding OLD downloads to get NEW.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{diff, ByteUnit, DiffJob, Input};
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
