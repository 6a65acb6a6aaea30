//! `chunkah apply --from OLD --source NEW -o DEST`: rebuild NEW from OLD
//! and the byte ranges of NEW the plan asks for.

use std::io::{self, Write};

use anyhow::{bail, Context, Result};
use chunkah::delta::{apply, ApplyOptions};
use chunkah::oci::layout::LayoutWriter;
use chunkah::oci::read::ImageReader;
use chunkah::oci::types::host_architecture;
use chunkah::oci::ImageRef;
use clap::Args;

use super::diff::human;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The image held locally: `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`
    /// (a `docker://` image works too, its layers whose frames are reused
    /// then downloaded whole).
    #[arg(long = "from", value_name = "OLD")]
    from: String,
    /// Where NEW's bytes are read: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`
    /// or `docker://HOST[:PORT]/REPO:TAG` (only the planned ranges are fetched).
    #[arg(long, value_name = "NEW")]
    source: String,
    /// Where the rebuilt image goes: `oci:DIR[:TAG]` (may be OLD's layout).
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    dest: String,
    #[command(flatten)]
    plan_args: super::plan_args::PlanArgs,
    /// At most this many requests to the source at a time.
    #[arg(long, default_value_t = 4, value_name = "N")]
    parallel: usize,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

pub fn run(args: ApplyArgs) -> Result<()> {
    if args.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    let ImageRef::Layout { dir, tag } = ImageRef::parse(&args.dest)? else {
        bail!("apply writes to an oci:DIR[:TAG] layout");
    };
    let old_ref = ImageRef::parse(&args.from)?;
    let old = ImageReader::open_with(&old_ref, &args.registry.config(&old_ref)?)
        .with_context(|| format!("opening {}", args.from))?;
    let old_image = old
        .image(host_architecture())
        .with_context(|| format!("reading {}", args.from))?;
    let source_ref = ImageRef::parse(&args.source)?;
    let source = ImageReader::open_with(&source_ref, &args.registry.config(&source_ref)?)
        .with_context(|| format!("opening {}", args.source))?;
    let created = super::NewDir::guard(&dir);
    let layout = LayoutWriter::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let report = apply(
        &old,
        &old_image,
        &source,
        host_architecture(),
        &layout,
        tag.as_deref().unwrap_or(chunkah::oci::DEFAULT_TAG),
        ApplyOptions {
            plan: args.plan_args.options()?,
            parallel: args.parallel,
        },
    )
    .with_context(|| format!("rebuilding {} from {}", args.source, args.from))?;
    created.keep();
    let mut out = io::stdout().lock();
    if args.json {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a chunkah::delta::ApplyReport,
            /// What went over the network, for a registry source.
            #[serde(skip_serializing_if = "Option::is_none")]
            wire: Option<chunkah::registry::Stats>,
        }
        let json = serde_json::to_string_pretty(&Out {
            report: &report,
            wire: source.registry_stats(),
        })
        .expect("a report serialises");
        writeln!(out, "{json}")?;
    } else {
        writeln!(
            out,
            "{} {} ({} read in {} requests; the image is {})",
            args.dest,
            report.manifest,
            human(report.bytes_read),
            report.requests,
            human(report.plan.levels.image.bytes)
        )?;
    }
    Ok(())
}
