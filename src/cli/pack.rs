//! `chunkah pack`: a root file system becomes an OCI image.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{pack, Event, Input, PackJob, PackOptions, MAX_LAYERS};
use chunkah::layer::Compression;
use chunkah::oci::types::RuntimeConfig;
use chunkah::store::ImageRef;
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum CompressionArg {
    /// zstd (default level 3): every content chunk a frame of its own, with
    /// a chunk index, so clients can fetch chunks by byte range.
    Zstd,
    /// zstd as one stream, without a chunk index: about a quarter smaller,
    /// but clients cannot fetch chunks by range.
    ZstdStream,
    /// gzip (default level 6).
    Gzip,
    /// Plain tar.
    None,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The root file system: `dir:PATH` (or a bare directory path),
    /// `tar:FILE` (or a bare file path: a tarball as `podman export` writes,
    /// plain, gzip or zstd), or an image to rechunk, `oci:DIR[:TAG]`,
    /// `oci-archive:FILE[:TAG]` or `docker://HOST[:PORT]/REPO:TAG` (its
    /// layers applied in order, its config kept; a registry's layers are
    /// downloaded into `$TMPDIR`).
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Where the image goes: `oci:DIR[:TAG]` (a layout; its other images are
    /// kept), `oci-archive:FILE[:TAG]` (tag `latest` by default), or
    /// `docker://HOST[:PORT]/REPO:TAG` (pushed: blobs, then the manifest).
    #[arg(short = 'o', long = "output", value_name = "DEST", value_parser = ImageRef::parse)]
    dest: ImageRef,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "zstd")]
    compression: CompressionArg,
    /// Compression level (zstd 1..=22, gzip 0..=9).
    #[arg(long)]
    compression_level: Option<i32>,
    /// Average size of the content chunks of zstd layers, each a frame of
    /// its own (suffixes K, M); minimum a quarter, maximum four times. Files
    /// below half of it share frames with their neighbours.
    #[arg(long, default_value = "128K", value_parser = super::size::parse_size)]
    chunk_size: usize,
    /// At most this many layers (1..=500).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=MAX_LAYERS as i64))]
    max_layers: u16,
    /// The previous version (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or
    /// `docker://HOST[:PORT]/REPO:TAG`; its manifest and config are read): keep its
    /// grouping of components into layers, so unchanged components land in
    /// byte-identical layers.
    #[arg(long, value_name = "IMAGE", value_parser = ImageRef::parse)]
    prior: Option<ImageRef>,
    /// Publish a binary delta from this older version beside the image
    /// (repeatable: the last few releases), as `chunkah delta` does.
    #[arg(long = "delta-from", value_name = "IMAGE", value_parser = ImageRef::parse)]
    delta_from: Vec<ImageRef>,
    /// Publish an SBOM of the packed tree beside the image, as an OCI
    /// referrer listed with its deltas (repeatable: both formats), as
    /// `chunkah sbom IMAGE -o DEST` does.
    #[arg(long, value_name = "FORMAT", value_enum)]
    sbom: Vec<super::sbom::Format>,
    /// Clamp mtimes to this time (seconds since the epoch) and use it as the
    /// creation time [env: SOURCE_DATE_EPOCH].
    #[arg(long)]
    source_date_epoch: Option<i64>,
    /// A JSON file with the image's runtime configuration (Env, Entrypoint,
    /// Cmd, User, WorkingDir, ExposedPorts, Volumes, StopSignal, Labels): either
    /// that object itself or an OCI image config holding it under "config".
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A config label, KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
    labels: Vec<(String, String)>,
    /// A manifest annotation, KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = key_value)]
    annotations: Vec<(String, String)>,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Print a JSON summary (layers, sizes, components) on stdout.
    #[arg(long)]
    json: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// The architecture image indexes are read for and a tree is packed as (amd64, arm64;
    /// x86_64, aarch64 ... are read as such); default this machine's.
    #[arg(long, value_name = "ARCH", value_parser = super::base_config::parse_arch)]
    arch: Option<String>,
    #[command(flatten)]
    grouping: super::grouping_args::GroupingArgs,
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

/// `KEY=VALUE` with a non-empty key.
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// The runtime configuration in `file`: the object itself, or an image
/// config holding it under "config".
fn read_runtime(file: &std::path::Path) -> Result<RuntimeConfig> {
    let what = || format!("--config {}", file.display());
    let text = std::fs::read(file).with_context(|| format!("reading {}", what()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", what()))?;
    let runtime = match value.get("config") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => value,
    };
    serde_json::from_value(runtime)
        .with_context(|| format!("{} is not an image runtime configuration", what()))
}

/// The layer compression the flags ask for (levels are checked by the library).
pub(super) fn compression(kind: CompressionArg, level: Option<i32>) -> Result<Compression> {
    Ok(match (kind, level) {
        (CompressionArg::Zstd, l) => Compression::SeekableZstd(l.unwrap_or(3)),
        (CompressionArg::ZstdStream, l) => Compression::Zstd(l.unwrap_or(3)),
        (CompressionArg::Gzip, l) => Compression::Gzip(match l {
            None => 6,
            Some(l) => u32::try_from(l).map_err(|_| {
                chunkah::Error::Config(format!("gzip level {l} is out of range 0..=9"))
            })?,
        }),
        (CompressionArg::None, None) => Compression::None,
        (CompressionArg::None, Some(l)) => {
            return Err(chunkah::Error::Config(format!(
                "--compression-level {l} given for uncompressed layers"
            ))
            .into())
        }
    })
}

pub fn run(args: PackArgs) -> Result<()> {
    let source = Input::parse(&args.source)?;
    let compression = compression(args.compression, args.compression_level)?;
    let mut job = PackJob {
        source,
        dest: args.dest.clone(),
        options: PackOptions {
            runtime: args.config.as_deref().map(read_runtime).transpose()?,
            prior: args.prior.clone(),
            delta_from: args.delta_from.clone(),
            sbom: args.sbom.iter().map(|&f| f.into()).collect(),
            max_layers: args.max_layers.into(),
            compression,
            source_date_epoch: super::source_date_epoch(args.source_date_epoch)?,
            labels: args.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
            annotations: args.annotations.iter().cloned().collect(),
            chunker: chunkah::chunker::ChunkerConfig::around(args.chunk_size)
                .context("--chunk-size")?,
            ..PackOptions::default()
        },
    };
    args.grouping.apply(&mut job.options)?;
    let ctx = super::job_context(
        args.registry.store()?,
        args.threads.map(usize::from),
        args.arch.as_deref(),
    );
    let bar = super::progress::Bar::new(args.quiet);
    let progress = |e: &Event| match e {
        Event::Reading => bar.phase("reading the source"),
        Event::Walked { bytes, .. } => bar.start_bytes("packing", *bytes),
        Event::Planned { layers } => bar.message(format!("packing {layers} layers")),
        Event::LayerWritten { bytes } => bar.advance(*bytes),
        Event::Publishing => bar.phase(if args.dest.is_registry() {
            "pushing"
        } else {
            "publishing"
        }),
        Event::MakingDelta { base } => bar.phase(&format!("making the delta from {base}")),
        Event::PublishingSbom { format } => bar.phase(&format!("publishing the {format} SBOM")),
        _ => {}
    };
    let report = pack(&job, &ctx.with_events(&progress))?;
    bar.finish();
    if !args.quiet {
        for w in &report.warnings {
            eprintln!("chunkah: warning: {w}");
        }
        if let (Some(p), false) = (&report.pushed, args.json) {
            eprintln!(
                "chunkah: pushed {} blobs ({} bytes), {} already there",
                p.uploaded, p.uploaded_bytes, p.skipped
            );
        }
    }
    let mut out = io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&report).expect("a report serialises");
        writeln!(out, "{json}")?;
    } else if !args.quiet {
        writeln!(
            out,
            "{} {} ({} layers, {} components, {} bytes)",
            report.reference,
            report.manifest,
            report.layers.len(),
            report.components,
            report.total_size
        )?;
        for d in &report.deltas {
            writeln!(
                out,
                "{} delta {} from {} ({} bytes)",
                d.reference, d.manifest, d.base, d.size
            )?;
        }
        for b in &report.sboms {
            writeln!(
                out,
                "{} sbom {} {} ({} bytes)",
                b.reference,
                b.manifest,
                b.format.name(),
                b.size
            )?;
        }
    }
    Ok(())
}
