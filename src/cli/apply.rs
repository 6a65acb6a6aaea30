//! `chunkah apply --from OLD --source NEW -o DEST`: rebuild NEW from OLD
//! and the byte ranges of NEW the plan asks for.

use std::io::{self, Write};

use anyhow::Result;
use chunkah::jobs::{apply, ApplyJob};
use chunkah::store::ImageRef;
use chunkah::update::ApplyOptions;
use clap::Args;

use super::diff::human;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The image held locally: `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`
    /// (a `docker://` image works too, its layers whose frames are reused
    /// then downloaded whole).
    #[arg(long = "from", value_name = "OLD", value_parser = ImageRef::parse)]
    from: ImageRef,
    /// Where NEW's bytes are read: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`
    /// or `docker://HOST[:PORT]/REPO:TAG` (only the planned ranges are fetched).
    #[arg(long, value_name = "NEW", value_parser = ImageRef::parse)]
    source: ImageRef,
    /// Where the rebuilt image goes: `oci:DIR[:TAG]` (may be OLD's layout).
    #[arg(short = 'o', long = "output", value_name = "DEST", value_parser = ImageRef::parse)]
    dest: ImageRef,
    #[command(flatten)]
    plan_args: super::plan_args::PlanArgs,
    /// At most this many requests to the source at a time.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    parallel: u16,
    /// Do not look for a binary delta beside NEW: ranges only.
    #[arg(long)]
    no_delta: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
    /// The architecture image indexes are read for (amd64, arm64;
    /// x86_64, aarch64 ... are read as such); default this machine's.
    #[arg(long, value_name = "ARCH", value_parser = super::base_config::parse_arch)]
    arch: Option<String>,
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

pub fn run(args: ApplyArgs) -> Result<()> {
    let job = ApplyJob {
        from: args.from,
        source: args.source,
        dest: args.dest,
        options: ApplyOptions {
            requests: args.plan_args.options(),
            parallel: args.parallel.into(),
            delta: !args.no_delta,
        },
    };
    let ctx = super::job_context(args.registry.store()?, None, args.arch.as_deref());
    let outcome = apply(&job, &ctx)?;
    for f in &outcome.report.fallbacks {
        let what = f
            .part
            .map_or_else(|| "the delta".to_string(), |p| format!("delta part {p}"));
        eprintln!(
            "chunkah: warning: {what} not used, {} frames fetched by ranges instead: {}",
            f.frames,
            super::escape_controls(&f.reason)
        );
    }
    let mut out = io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&outcome).expect("a report serialises");
        writeln!(out, "{json}")?;
    } else {
        let r = &outcome.report;
        writeln!(
            out,
            "{} {} ({} read in {} requests; the image is {})",
            outcome.reference,
            r.manifest,
            human(r.bytes_read),
            r.requests,
            human(r.plan.levels.image.bytes)
        )?;
        if let Some(d) = &r.delta {
            writeln!(
                out,
                "delta {}: {} of {} parts rebuilt {} frames, {} chunk indexes from index parts, {} read",
                d.manifest,
                d.parts_used,
                d.parts,
                d.frames,
                d.index_parts,
                human(d.bytes_read)
            )?;
        }
    }
    Ok(())
}
