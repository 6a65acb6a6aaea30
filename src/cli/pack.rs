//! `chunkah pack`: a root file system becomes an OCI image.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chunkah::component::{read_package_databases, read_package_databases_in_tar};
use chunkah::layer::Compression;
use chunkah::layer::Source;
use chunkah::oci::layout::{read_manifest, LayoutWriter};
use chunkah::oci::types::RuntimeConfig;
use chunkah::oci::ImageRef;
use chunkah::pack::{pack_dir, pack_tree, prior_components, PackOptions, Progress};
use chunkah::walk::walk_tar;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressionArg {
    /// zstd (default level 3).
    Zstd,
    /// gzip (default level 6).
    Gzip,
    /// Plain tar.
    None,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The root file system: `dir:PATH` (or a bare directory path), or
    /// `tar:FILE`, an uncompressed tarball as `podman export` writes.
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Where the image goes: `oci:DIR[:TAG]` (tag `latest` by default).
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    dest: String,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "zstd")]
    compression: CompressionArg,
    /// Compression level (zstd 1..=22, gzip 0..=9).
    #[arg(long)]
    compression_level: Option<i32>,
    /// At most this many layers (1..=500).
    #[arg(long, default_value_t = 64)]
    max_layers: usize,
    /// The previous version (`oci:DIR[:TAG]`): keep its grouping of components
    /// into layers, so unchanged components land in byte-identical layers.
    #[arg(long, value_name = "IMAGE")]
    prior: Option<String>,
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
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// A manifest annotation, KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print a JSON summary (layers, sizes, components) on stdout.
    #[arg(long)]
    json: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

fn key_values(what: &str, items: &[String]) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{what} {kv:?} is not KEY=VALUE"),
        })
        .collect()
}

enum SourceArg {
    Dir(PathBuf),
    Tar(PathBuf),
}

pub fn run(args: PackArgs) -> Result<()> {
    let source = match args.source.split_once(':') {
        Some(("tar", file)) => SourceArg::Tar(PathBuf::from(file)),
        Some(("dir", dir)) => SourceArg::Dir(PathBuf::from(dir)),
        Some((scheme @ ("oci" | "oci-archive" | "docker"), _)) => {
            bail!(
                "source {:?}: {scheme}: sources are not supported yet (use dir:PATH or tar:FILE)",
                args.source
            )
        }
        _ => SourceArg::Dir(PathBuf::from(&args.source)),
    };
    let ImageRef::Layout { dir, tag } = ImageRef::parse(&args.dest)?;
    if !(1..=500).contains(&args.max_layers) {
        bail!(
            "--max-layers must be within 1..=500 (got {})",
            args.max_layers
        );
    }
    if args.max_layers > 127 && !args.quiet {
        eprintln!("chunkah: warning: more than 127 layers break some older clients");
    }
    let compression = match (args.compression, args.compression_level) {
        (CompressionArg::Zstd, None) => Compression::Zstd(3),
        (CompressionArg::Zstd, Some(l)) if (1..=22).contains(&l) => Compression::Zstd(l),
        (CompressionArg::Gzip, None) => Compression::Gzip(6),
        (CompressionArg::Gzip, Some(l)) if (0..=9).contains(&l) => Compression::Gzip(l as u32),
        (CompressionArg::None, None) => Compression::None,
        (c, Some(l)) => bail!("compression level {l} is out of range for {c:?}"),
    };
    let source_date_epoch = match args.source_date_epoch {
        Some(e) => Some(e),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => Some(
                v.trim()
                    .parse()
                    .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number"))?,
            ),
            Err(_) => None,
        },
    };
    let prior = match &args.prior {
        None => None,
        Some(r) => {
            let ImageRef::Layout {
                dir: pdir,
                tag: ptag,
            } = ImageRef::parse(r)?;
            let manifest = read_manifest(&pdir, &ptag)
                .with_context(|| format!("reading the prior image {r}"))?;
            Some(prior_components(&manifest).with_context(|| {
                format!("the prior image {r} was not made by chunkah pack (its layers lack component annotations)")
            })?)
        }
    };
    let runtime = match &args.config {
        None => RuntimeConfig::default(),
        Some(file) => {
            let text = std::fs::read(file)
                .with_context(|| format!("reading --config {}", file.display()))?;
            let value: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("--config {} is not JSON", file.display()))?;
            let runtime = match value.get("config") {
                Some(inner) if inner.is_object() => inner.clone(),
                _ => value,
            };
            serde_json::from_value(runtime).with_context(|| {
                format!(
                    "--config {} is not an image runtime configuration",
                    file.display()
                )
            })?
        }
    };
    let options = PackOptions {
        runtime,
        prior,
        cancel: super::cancel_on_signals(),
        max_layers: args.max_layers,
        compression,
        source_date_epoch,
        labels: key_values("label", &args.labels)?,
        annotations: key_values("annotation", &args.annotations)?,
        ..PackOptions::default()
    };
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;

    let layout = LayoutWriter::open(&dir).with_context(|| format!("opening {}", dir.display()))?;

    // A progress bar on a terminal, in content bytes written.
    let bar = if !args.quiet && io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message("walking");
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress = |p: Progress| match p {
        Progress::Walked { bytes, .. } => bar.set_length(bytes),
        Progress::Planned { layers } => bar.set_message(format!("packing {layers} layers")),
        Progress::LayerWritten { bytes } => bar.inc(bytes),
    };
    let report = match &source {
        SourceArg::Dir(root) => {
            let meta = std::fs::metadata(root)
                .with_context(|| format!("reading source {}", root.display()))?;
            if !meta.is_dir() {
                bail!("source {} is not a directory", root.display());
            }
            let ownership = read_package_databases(root)
                .with_context(|| format!("reading the package databases of {}", root.display()))?;
            pool.install(|| {
                pack_dir(
                    root,
                    |p| ownership.owner(p).map(str::to_string),
                    &layout,
                    &tag,
                    &options,
                    &progress,
                )
            })
            .with_context(|| format!("packing {}", root.display()))?
        }
        SourceArg::Tar(file) => {
            let (tree, content) = walk_tar(file)
                .with_context(|| format!("reading source tarball {}", file.display()))?;
            let ownership = read_package_databases_in_tar(&tree, &content)
                .with_context(|| format!("reading the package databases in {}", file.display()))?;
            pool.install(|| {
                pack_tree(
                    tree,
                    Source::Tar(&content),
                    |p| ownership.owner(p).map(str::to_string),
                    &layout,
                    &tag,
                    &options,
                    &progress,
                )
            })
            .with_context(|| format!("packing {}", file.display()))?
        }
    };
    bar.finish_and_clear();
    if !args.quiet {
        for w in &report.warnings {
            eprintln!("chunkah: warning: {w}");
        }
    }
    let mut out = io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&report).expect("a report serialises");
        writeln!(out, "{json}")?;
    } else if !args.quiet {
        writeln!(
            out,
            "{}:{} {} ({} layers, {} components, {} bytes)",
            dir.display(),
            tag,
            report.manifest,
            report.layers.len(),
            report.components,
            report.total_size
        )?;
    }
    Ok(())
}
