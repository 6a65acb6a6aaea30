//! `chunkah pack`: a root file system becomes an OCI image.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chunkah::component::{read_package_databases, read_package_databases_in_tar};
use chunkah::layer::Compression;
use chunkah::layer::Source;
use chunkah::oci::archive::{import_archive, write_archive};
use chunkah::oci::flatten::flatten;
use chunkah::oci::layout::LayoutWriter;
use chunkah::oci::read::ImageReader;
use chunkah::oci::types::{host_architecture, RuntimeConfig};
use chunkah::oci::ImageRef;
use chunkah::pack::{pack_dir, pack_tree, prior_components, PackOptions, Progress};
use chunkah::walk::walk_tar;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressionArg {
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
    /// `tar:FILE` (a tarball as `podman export` writes, plain, gzip or zstd),
    /// or an image to rechunk, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or
    /// `docker://HOST[:PORT]/REPO:TAG` (its layers applied in order, its
    /// config kept; a registry's layers are downloaded into `$TMPDIR`).
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Where the image goes: `oci:DIR[:TAG]` (a layout; its other images are
    /// kept), `oci-archive:FILE[:TAG]` (tag `latest` by default), or
    /// `docker://HOST[:PORT]/REPO:TAG` (pushed: blobs, then the manifest).
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    dest: String,
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
    #[arg(long, default_value_t = 64)]
    max_layers: usize,
    /// The previous version (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or
    /// `docker://HOST[:PORT]/REPO:TAG`; its manifest and config are read): keep its
    /// grouping of components into layers, so unchanged components land in
    /// byte-identical layers.
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
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
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
    Image(ImageRef),
}

/// A directory removed when dropped.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: PackArgs) -> Result<()> {
    let source = match args.source.split_once(':') {
        Some(("tar", file)) => SourceArg::Tar(PathBuf::from(file)),
        Some(("dir", dir)) => SourceArg::Dir(PathBuf::from(dir)),
        Some(("oci" | "oci-archive" | "docker", _)) => {
            SourceArg::Image(ImageRef::parse(&args.source)?)
        }
        _ => SourceArg::Dir(PathBuf::from(&args.source)),
    };
    let dest = ImageRef::parse(&args.dest)?;
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
        (CompressionArg::Zstd, None) => Compression::SeekableZstd(3),
        (CompressionArg::Zstd, Some(l)) if (1..=22).contains(&l) => Compression::SeekableZstd(l),
        (CompressionArg::ZstdStream, None) => Compression::Zstd(3),
        (CompressionArg::ZstdStream, Some(l)) if (1..=22).contains(&l) => Compression::Zstd(l),
        (CompressionArg::Gzip, None) => Compression::Gzip(6),
        (CompressionArg::Gzip, Some(l)) if (0..=9).contains(&l) => Compression::Gzip(l as u32),
        (CompressionArg::None, None) => Compression::None,
        (c, Some(l)) => bail!("compression level {l} is out of range for {c:?}"),
    };
    let source_date_epoch = super::source_date_epoch(args.source_date_epoch)?;
    let prior = match &args.prior {
        None => None,
        Some(r) => {
            let pref = ImageRef::parse(r)?;
            let image = ImageReader::open_with(&pref, &args.registry.config(&pref)?)
                .and_then(|reader| reader.image(host_architecture()))
                .with_context(|| format!("reading the prior image {r}"))?;
            Some(prior_components(&image.manifest).with_context(|| {
                format!("the prior image {r} was not made by chunkah pack (its layers lack component annotations)")
            })?)
        }
    };
    let runtime = match &args.config {
        None => None,
        Some(file) => {
            let text = std::fs::read(file)
                .with_context(|| format!("reading --config {}", file.display()))?;
            let value: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("--config {} is not JSON", file.display()))?;
            let runtime = match value.get("config") {
                Some(inner) if inner.is_object() => inner.clone(),
                _ => value,
            };
            Some(
                serde_json::from_value::<RuntimeConfig>(runtime).with_context(|| {
                    format!(
                        "--config {} is not an image runtime configuration",
                        file.display()
                    )
                })?,
            )
        }
    };
    let mut options = PackOptions {
        runtime: runtime.clone().unwrap_or_default(),
        prior,
        cancel: super::cancel_on_signals(),
        max_layers: args.max_layers,
        compression,
        source_date_epoch,
        labels: key_values("label", &args.labels)?,
        chunker: chunkah::chunker::ChunkerConfig::around(args.chunk_size)
            .context("--chunk-size")?,
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

    // An archive is packed into a scratch layout beside it (holding the
    // archive's other images), then written out whole.
    let (layout_dir, scratch) = match &dest {
        ImageRef::Layout { dir, .. } => (dir.clone(), None),
        ImageRef::Registry(_) => {
            // Packed into a scratch layout, then pushed.
            let dir = std::env::temp_dir().join(format!("chunkah-push-{}", std::process::id()));
            (dir.clone(), Some(ScratchDir(dir)))
        }
        ImageRef::Archive { file, .. } => {
            let parent = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => std::path::Path::new("."),
            };
            let name = file
                .file_name()
                .with_context(|| format!("{} is not a file name", file.display()))?;
            let dir = parent.join(format!(
                ".{}.chunkah-layout-{}",
                name.to_string_lossy(),
                std::process::id()
            ));
            (dir.clone(), Some(ScratchDir(dir)))
        }
    };
    let tag = dest.tag_or_default().to_string();
    let created = super::NewDir::guard(&layout_dir);
    let layout = LayoutWriter::open(&layout_dir)
        .with_context(|| format!("opening {}", layout_dir.display()))?;
    if let ImageRef::Archive { file, .. } = &dest {
        if file.exists() {
            import_archive(file, &layout, &tag)
                .with_context(|| format!("reading the images already in {}", file.display()))?;
        }
    }
    let scratch_dir = std::env::temp_dir();

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
    // A tree whose content is in tar streams (a tarball, an image's layers).
    let pack_tarred = |tree: chunkah::walk::Tree,
                       content: &chunkah::walk::TarContent,
                       name: &str,
                       options: &PackOptions| {
        let ownership = read_package_databases_in_tar(&tree, content)
            .with_context(|| format!("reading the package databases in {name}"))?;
        pool.install(|| {
            pack_tree(
                tree,
                Source::Tar(content),
                |p| ownership.owner(p).map(str::to_string),
                &layout,
                &tag,
                options,
                &progress,
            )
        })
        .with_context(|| format!("packing {name}"))
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
        SourceArg::Image(r) => {
            bar.set_message("reading layers");
            let reader = ImageReader::open_with(r, &args.registry.config(r)?)
                .with_context(|| format!("opening {r}"))?;
            let image = reader
                .image(host_architecture())
                .with_context(|| format!("reading {r}"))?;
            let (tree, content) = flatten(&reader, &image, &scratch_dir, &options.cancel)
                .with_context(|| format!("reading the layers of {r}"))?;
            if runtime.is_none() {
                options.runtime = image.config.config.clone();
            }
            let mut annotations = image.manifest.annotations.clone();
            annotations.append(&mut options.annotations);
            options.annotations = annotations;
            options.base_config = Some(image.config);
            pack_tarred(tree, &content, &r.to_string(), &options)?
        }
        SourceArg::Tar(file) => {
            let (tree, content) = walk_tar(file, &scratch_dir)
                .with_context(|| format!("reading source tarball {}", file.display()))?;
            pack_tarred(tree, &content, &file.display().to_string(), &options)?
        }
    };
    if let ImageRef::Archive { file, .. } = &dest {
        bar.set_message("writing the archive");
        write_archive(&layout_dir, file).with_context(|| format!("writing {}", file.display()))?;
        drop(scratch);
    } else if let ImageRef::Registry(r) = &dest {
        bar.set_message("pushing");
        let client = chunkah::registry::Client::for_ref(r, args.registry.config(&dest)?)?;
        let pushed = chunkah::registry::push_image(
            &ImageRef::Layout {
                dir: layout_dir.clone(),
                tag: Some(tag.clone()),
            },
            &client,
            &r.target,
        )
        .with_context(|| format!("pushing to {r}"))?;
        if !args.quiet && !args.json {
            eprintln!(
                "chunkah: pushed {} blobs ({} bytes), {} already there",
                pushed.uploaded, pushed.uploaded_bytes, pushed.skipped
            );
        }
        drop(scratch);
    }
    created.keep();
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
            "{} {} ({} layers, {} components, {} bytes)",
            match &dest {
                ImageRef::Registry(r) => ImageRef::Registry(r.clone()),
                ImageRef::Layout { dir, .. } => ImageRef::Layout {
                    dir: dir.clone(),
                    tag: Some(tag.clone()),
                },
                ImageRef::Archive { file, .. } => ImageRef::Archive {
                    file: file.clone(),
                    tag: Some(tag.clone()),
                },
            },
            report.manifest,
            report.layers.len(),
            report.components,
            report.total_size
        )?;
    }
    Ok(())
}
