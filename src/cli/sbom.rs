//! `chunkah sbom SOURCE`: the packages of a root file system as an SPDX
//! 2.3 or CycloneDX 1.6 JSON document.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{sbom, Input, SbomFormat, SbomJob};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// SPDX 2.3 JSON.
    SpdxJson,
    /// CycloneDX 1.6 JSON.
    CyclonedxJson,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The root file system: `dir:PATH`, `tar:FILE`, a directory or tarball,
    /// or an image (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
    /// `docker://HOST/REPO:TAG`: its layers applied, its manifest the
    /// document's subject).
    #[arg(value_name = "SOURCE", value_parser = Input::parse)]
    source: Input,
    /// The document's format.
    #[arg(long, value_enum, default_value = "spdx-json")]
    format: Format,
    /// Write the document to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Date the document at this time (seconds since the epoch; default
    /// SOURCE_DATE_EPOCH, else the newest packaged file's mtime).
    #[arg(long, value_name = "SECONDS")]
    source_date_epoch: Option<i64>,
    /// With -o: print what was written as JSON on stdout.
    #[arg(long, requires = "output")]
    json: bool,
    /// Worker threads hashing files (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// The architecture image indexes are read for (amd64, arm64;
    /// x86_64, aarch64 ... are read as such); default this machine's.
    #[arg(long, value_name = "ARCH", value_parser = super::base_config::parse_arch)]
    arch: Option<String>,
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

pub fn run(args: SbomArgs) -> Result<()> {
    let job = SbomJob {
        input: args.source,
        format: match args.format {
            Format::SpdxJson => SbomFormat::SpdxJson,
            Format::CyclonedxJson => SbomFormat::CycloneDxJson,
        },
        source_date_epoch: super::source_date_epoch(args.source_date_epoch)?,
    };
    let ctx = super::job_context(
        args.registry.store()?,
        args.threads.map(usize::from),
        args.arch.as_deref(),
    );
    let doc = sbom(&job, &ctx)?;
    let mut out = io::stdout().lock();
    let Some(file) = &args.output else {
        out.write_all(doc.text.as_bytes())?;
        return Ok(());
    };
    chunkah::io::write_atomic(file, doc.text.as_bytes())
        .with_context(|| format!("writing the SBOM to {}", file.display()))?;
    if args.json {
        let mut report = serde_json::to_value(&doc).expect("a report serialises");
        report["output"] = serde_json::json!(file);
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(
            out,
            "{}: {} packages, {} files ({})",
            file.display(),
            doc.packages,
            doc.files,
            doc.media_type
        )?;
    }
    Ok(())
}
