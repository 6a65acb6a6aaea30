//! `chunkah sbom SOURCE`: the packages of a root file system as an SPDX
//! 2.3 or CycloneDX 1.6 JSON document.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{attach_sbom, sbom, Input, SbomDocument, SbomFormat, SbomJob};
use chunkah::{ImageRef, Transport};
use clap::{Args, ValueEnum};

/// Where the document goes.
#[derive(Clone, Debug)]
enum Output {
    /// A file, written atomically.
    File(PathBuf),
    /// Beside the image, as a referrer in this layout, archive or
    /// repository.
    Image(ImageRef),
}

fn parse_output(s: &str) -> Result<Output, String> {
    match Transport::split(s) {
        Some((Transport::Oci | Transport::OciArchive | Transport::Docker, _)) => ImageRef::parse(s)
            .map(Output::Image)
            .map_err(|e| e.to_string()),
        Some((t @ (Transport::Dir | Transport::Tar), _)) => Err(format!(
            "{s:?}: an SBOM goes to a FILE or beside an image ({}), not to {}",
            Transport::expected(&[Transport::Oci, Transport::OciArchive, Transport::Docker]),
            t.form()
        )),
        None => Ok(Output::File(PathBuf::from(s))),
    }
}

/// An SBOM format, as `--format` and `--sbom` take it.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// SPDX 2.3 JSON.
    SpdxJson,
    /// CycloneDX 1.6 JSON.
    CyclonedxJson,
}

impl From<Format> for SbomFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::SpdxJson => SbomFormat::SpdxJson,
            Format::CyclonedxJson => SbomFormat::CycloneDxJson,
        }
    }
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
    /// Write the document to FILE (atomically) instead of stdout; or, given
    /// an image destination (`oci:DIR`, `oci-archive:FILE`,
    /// `docker://HOST/REPO:TAG`: the image's own, typically), publish it beside
    /// the image SOURCE names, as an OCI referrer listed with its deltas.
    #[arg(short = 'o', long = "output", value_name = "FILE|DEST", value_parser = parse_output)]
    output: Option<Output>,
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
    if matches!(args.output, Some(Output::Image(_))) && !matches!(args.source, Input::Image(_)) {
        // Said before the tree is read.
        return Err(chunkah::Error::Config(format!(
            "an SBOM is published beside an image: {} is not one (oci:, oci-archive:, docker://)",
            args.source
        ))
        .into());
    }
    let job = SbomJob {
        input: args.source,
        format: args.format.into(),
        source_date_epoch: super::source_date_epoch(args.source_date_epoch)?,
    };
    let ctx = super::job_context(
        args.registry.store()?,
        args.threads.map(usize::from),
        args.arch.as_deref(),
    );
    let doc = sbom(&job, &ctx)?;
    for w in &doc.warnings {
        eprintln!("chunkah: warning: {w}");
    }
    let mut out = io::stdout().lock();
    match &args.output {
        None => out.write_all(doc.text.as_bytes())?,
        Some(Output::File(file)) => {
            chunkah::io::write_atomic(file, doc.text.as_bytes())
                .with_context(|| format!("writing the SBOM to {}", file.display()))?;
            let mut report = serde_json::to_value(&doc).expect("a report serialises");
            report["output"] = serde_json::json!(file);
            written(
                &mut out,
                args.json,
                &doc,
                &file.display().to_string(),
                report,
            )?;
        }
        Some(Output::Image(dest)) => {
            let attached = attach_sbom(&doc, dest, &ctx)?;
            let mut report = serde_json::to_value(&doc).expect("a report serialises");
            report["referrer"] = serde_json::to_value(&attached).expect("a report serialises");
            let at = format!("{} (manifest {})", attached.reference, attached.manifest);
            written(&mut out, args.json, &doc, &at, report)?;
        }
    }
    Ok(())
}

/// Says what was written where: `report` as JSON, or one line.
fn written(
    out: &mut impl Write,
    json: bool,
    doc: &SbomDocument,
    at: &str,
    report: serde_json::Value,
) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(
            out,
            "{at}: {} packages, {} files ({})",
            doc.packages, doc.files, doc.media_type
        )?;
    }
    Ok(())
}
