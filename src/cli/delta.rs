//! `chunkah delta OLD NEW -o DEST`: a binary delta from OLD to NEW,
//! published beside NEW.

use std::io::{self, Write};

use anyhow::Result;
use chunkah::delta::make::DeltaConfig;
use chunkah::jobs::{delta, DeltaJob, Event};
use chunkah::store::ImageRef;
use clap::Args;

use super::diff::human;

#[derive(Debug, Args)]
pub struct DeltaArgs {
    /// The image clients hold: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or
    /// `docker://HOST/REPO:TAG` (read whole).
    #[arg(value_name = "OLD", value_parser = ImageRef::parse)]
    old: ImageRef,
    /// The image they want (its layers need chunk indexes:
    /// `pack --compression zstd`, the default).
    #[arg(value_name = "NEW", value_parser = ImageRef::parse)]
    new: ImageRef,
    /// Where the delta is published, as an artifact whose subject is NEW
    /// (clients find it through the referrers tag `sha256-<hex>`; a tag
    /// given here is not used): `oci:DIR`, `oci-archive:FILE` or
    /// `docker://HOST/REPO:TAG` [default: NEW's layout, archive or
    /// repository].
    #[arg(short = 'o', long = "output", value_name = "DEST", value_parser = ImageRef::parse)]
    dest: Option<ImageRef>,
    /// zstd level of the delta's parts.
    #[arg(long, default_value_t = DeltaConfig::default().level, value_name = "N",
          value_parser = clap::value_parser!(i32).range(1..=22))]
    level: i32,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
    /// No progress display.
    #[arg(short, long)]
    quiet: bool,
    /// The architecture image indexes are read for (amd64, arm64;
    /// x86_64, aarch64 ... are read as such); default this machine's.
    #[arg(long, value_name = "ARCH", value_parser = super::base_config::parse_arch)]
    arch: Option<String>,
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

pub fn run(args: DeltaArgs) -> Result<()> {
    let job = DeltaJob {
        dest: args.dest.unwrap_or_else(|| args.new.clone()),
        old: args.old,
        new: args.new,
        config: DeltaConfig { level: args.level },
    };
    let ctx = super::job_context(
        args.registry.store()?,
        args.threads.map(usize::from),
        args.arch.as_deref(),
    );
    let bar = super::progress::Bar::new(args.quiet);
    bar.phase("reading the images");
    let started = std::sync::atomic::AtomicBool::new(false);
    let progress = |e: &Event| {
        if let Event::DeltaParts { done, total } = *e {
            if !started.swap(true, std::sync::atomic::Ordering::Relaxed) {
                bar.start_items("compressing delta parts", total);
            }
            bar.set_position(done);
        }
    };
    let report = delta(&job, &ctx.with_events(&progress));
    bar.finish();
    let report = report?;
    let mut out = io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&report).expect("a report serialises");
        writeln!(out, "{json}")?;
    } else {
        let s = &report.stats;
        writeln!(
            out,
            "{} delta {} from {}: {} in {} parts ({} files by path, {} by version, {} by name, {} solid) for frames of {} the chunk level fetches ({} of them covered)",
            report.reference,
            report.manifest,
            report.base,
            human(report.size),
            report.parts,
            s.by_path,
            s.by_version,
            s.by_name,
            s.solid_parts,
            human(s.missing_bytes),
            human(s.covered_bytes),
        )?;
    }
    Ok(())
}
