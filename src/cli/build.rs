//! `chunkah build`: coreos/chunkah's command line (v0.6) over the same
//! library path as `pack`, so its users' scripts keep working.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{
    pack, pack_archive, ArchiveJob, ArchiveTarget, Dialect, Event, Input, PackJob, PackOptions,
    PackReport, MAX_LAYERS,
};
use chunkah::layer::Compression;
use chunkah::store::{unknown_transport, ImageRef, Transport};
use chunkah::walk::Prune;
use clap::Args;

use super::base_config::{normalize_architecture, parse_arch, BaseConfig, MapEdit};
use super::pack::{compression, CompressionArg};

/// Build an OCI image (by default an OCI archive on stdout) from a root
/// file system: coreos/chunkah's `build`, flag for flag.
///
/// Beyond it: devices, named pipes and non-UTF-8 names are kept (not
/// refused), dpkg and apk databases are read as well as rpm and pacman,
/// files no package owns are grouped by content instead of one catch-all,
/// `--prior` keeps the previous version's grouping, and `--compression
/// zstd` writes seekable layers with chunk indexes (for `chunkah diff` and
/// partial pulls). Without SOURCE_DATE_EPOCH or a config's creation time,
/// the newest mtime of the tree is the creation time, so two builds of one
/// tree are identical.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct BuildArgs {
    /// Path to the rootfs to build from.
    #[arg(
        long,
        env = "CHUNKAH_ROOTFS",
        hide_env_values = true,
        value_name = "ROOTFS"
    )]
    rootfs: PathBuf,
    /// Where the image goes: `oci:DIR` (a layout; its other images are
    /// kept), `oci-archive:FILE` or a bare FILE (an archive), or
    /// `docker://HOST/REPO:TAG` (pushed). Without it, the OCI archive is
    /// written to stdout (which must not be a terminal).
    #[arg(short = 'o', long, value_name = "[oci:|oci-archive:]PATH")]
    output: Option<String>,
    /// At most this many layers (1..=500).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=MAX_LAYERS as i64))]
    max_layers: u16,
    /// Read the image config from a JSON file: `podman inspect` / `docker
    /// inspect` output, an inspect object, an OCI image config, or its
    /// `config` object alone (Env, Entrypoint, Cmd, Labels, ...).
    #[arg(long, value_name = "PATH", conflicts_with = "config_str")]
    config: Option<PathBuf>,
    /// The same as --config, the JSON given as a string.
    #[arg(
        long,
        env = "CHUNKAH_CONFIG_STR",
        hide_env_values = true,
        value_name = "JSON"
    )]
    config_str: Option<String>,
    /// Add or remove a label: KEY=VALUE sets, KEY- removes, - clears all
    /// (the config's and earlier ones); applied in order.
    #[arg(long = "label", value_name = "KEY=VALUE|KEY-|-", value_parser = MapEdit::parse, allow_hyphen_values = true)]
    labels: Vec<MapEdit>,
    /// Add (KEY=VALUE) or remove (KEY-, - for all) a manifest annotation.
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = MapEdit::parse, allow_hyphen_values = true)]
    annotations: Vec<MapEdit>,
    /// The image's creation time and the newest mtime of its files
    /// (seconds since the epoch); else the config's creation time.
    #[arg(
        long,
        env = "SOURCE_DATE_EPOCH",
        hide_env_values = true,
        value_name = "EPOCH"
    )]
    source_date_epoch: Option<u64>,
    /// Compress layers (and an archive as a whole) with gzip.
    #[arg(long, conflicts_with = "compression")]
    compressed: bool,
    /// Compression level: gzip 0..=9 (default 6), zstd 1..=22 with
    /// --compression zstd (default 3).
    #[arg(long, value_name = "LEVEL")]
    compression_level: Option<i32>,
    /// Layer compression, beyond --compressed: zstd (seekable, with chunk
    /// indexes), zstd-stream, gzip or none (the default).
    #[arg(long, value_enum, value_name = "KIND")]
    compression: Option<CompressionArg>,
    /// Target architecture (x86_64, aarch64 ... are read as amd64, arm64);
    /// else the config's, else this machine's.
    #[arg(long, value_name = "ARCH", value_parser = parse_arch)]
    arch: Option<String>,
    /// Leave out devices and named pipes (kept by default; sockets are
    /// always left out).
    #[arg(long)]
    skip_special_files: bool,
    /// Leave out /PATH and what is below it; /PATH/ keeps the directory
    /// itself and leaves out its contents (repeatable).
    #[arg(long, value_name = "PATH", value_parser = parse_prune)]
    prune: Vec<Prune>,
    /// Name the image (the `org.opencontainers.image.ref.name` that
    /// `podman load` tags it with; the tag in an `oci:` layout).
    #[arg(short = 't', long, value_name = "NAME")]
    tag: Option<String>,
    /// Worker threads (0: one per core).
    #[arg(short = 'T', long, env = "CHUNKAH_THREADS", default_value_t = 0)]
    threads: usize,
    /// The previous version: keep its grouping of components into layers.
    #[arg(long, value_name = "IMAGE", value_parser = ImageRef::parse)]
    prior: Option<ImageRef>,
    /// Publish an SBOM of the tree beside the image (repeatable: both
    /// formats): in the layout or archive, as an OCI referrer of the image.
    #[arg(long, value_name = "FORMAT", value_enum)]
    sbom: Vec<super::sbom::Format>,
    #[command(flatten)]
    grouping: super::grouping_args::GroupingArgs,
    /// Write the components (names, entry counts, sizes, stability, paths)
    /// to this file as JSON, as coreos/chunkah does.
    #[arg(long, value_name = "PATH", hide = true)]
    write_manifest_to: Option<PathBuf>,
    /// Write the peak memory use (bytes) to this file at the end.
    #[arg(long, value_name = "PATH", hide = true)]
    write_peak_mem_to: Option<PathBuf>,
}

fn parse_prune(s: &str) -> Result<Prune, String> {
    Prune::parse(s).map_err(|e| match e {
        chunkah::Error::Config(why) => why,
        e => e.to_string(),
    })
}

/// What the flags say about where the image goes.
enum Output {
    /// An archive on stdout.
    Stdout,
    /// An archive in a file.
    Archive(PathBuf),
    Image(ImageRef),
}

fn output(flag: Option<&str>, tag: Option<&str>) -> Result<Output> {
    let usage = |why: String| chunkah::Error::Config(format!("--output: {why}"));
    let Some(o) = flag else {
        if std::io::stdout().is_terminal() {
            return Err(usage(
                "no --output and stdout is a terminal: redirect it or give -o FILE".into(),
            )
            .into());
        }
        return Ok(Output::Stdout);
    };
    let nonempty = |p: &str| {
        if p.is_empty() {
            Err(usage(format!("{o:?}: the path is empty")))
        } else {
            Ok(PathBuf::from(p))
        }
    };
    // coreos/chunkah's forms: the whole rest of `oci:` is the directory
    // (no tag: --tag gives it), a bare path is an archive.
    match Transport::split(o) {
        Some((Transport::Oci, dir)) => Ok(Output::Image(ImageRef::Layout {
            dir: nonempty(dir)?,
            tag: Some(tag.unwrap_or(chunkah::oci::DEFAULT_TAG).to_string()),
        })),
        Some((Transport::OciArchive, file)) => Ok(Output::Archive(nonempty(file)?)),
        Some((Transport::Docker, _)) => Ok(Output::Image(ImageRef::parse(o)?)),
        Some((t @ (Transport::Dir | Transport::Tar), _)) => Err(usage(format!(
            "{o:?}: {} names a root file system, not an output (expected {})",
            t.prefix(),
            Transport::expected(&Transport::IMAGES)
        ))
        .into()),
        None => match unknown_transport(o) {
            Some(transport) => Err(usage(format!(
                "{o:?}: unknown transport {transport:?} (expected {})",
                Transport::expected(&Transport::IMAGES)
            ))
            .into()),
            None => Ok(Output::Archive(nonempty(o)?)),
        },
    }
}

/// The image's config: --config's file, else --config-str, else empty.
fn base_config(args: &BuildArgs) -> Result<BaseConfig> {
    Ok(match (&args.config, &args.config_str) {
        (Some(file), _) => {
            let bytes = std::fs::read(file)
                .with_context(|| format!("reading --config {}", file.display()))?;
            BaseConfig::parse(&bytes, &format!("--config {}", file.display()))?
        }
        (None, Some(json)) => BaseConfig::parse(json.as_bytes(), "--config-str")?,
        (None, None) => BaseConfig::default(),
    })
}

/// What the flags and the base config say the library is to pack, and the
/// architecture they name (if any).
fn pack_options(args: &BuildArgs) -> Result<(PackOptions, Option<String>)> {
    let base = base_config(args)?;
    let mut runtime = base.runtime;
    MapEdit::apply_all(&mut runtime.labels, &args.labels);
    let mut annotations = base.annotations;
    MapEdit::apply_all(&mut annotations, &args.annotations);
    let architecture = args
        .arch
        .as_deref()
        .or(base.architecture.as_deref())
        .map(|a| normalize_architecture(a).to_string());
    let (kind, level) = match (args.compressed, args.compression) {
        (true, _) => (CompressionArg::Gzip, args.compression_level),
        (false, Some(kind)) => (kind, args.compression_level),
        // As coreos/chunkah: a level without --compressed is ignored.
        (false, None) => (CompressionArg::None, None),
    };
    let source_date_epoch = match args.source_date_epoch {
        Some(e) => Some(i64::try_from(e).context("--source-date-epoch is too large")?),
        None => base.created,
    };
    let mut options = PackOptions {
        runtime: Some(runtime),
        annotations,
        max_layers: args.max_layers.into(),
        compression: compression(kind, level)?,
        source_date_epoch,
        prune: args.prune.clone(),
        skip_special_files: args.skip_special_files,
        prior: args.prior.clone(),
        sbom: args.sbom.iter().map(|&f| f.into()).collect(),
        dialect: Dialect::Coreos,
        ..PackOptions::default()
    };
    args.grouping.apply(&mut options)?;
    Ok((options, architecture))
}

pub fn run(args: BuildArgs, verbose: u8) -> Result<()> {
    let log = Log::new(verbose);
    let output = output(args.output.as_deref(), args.tag.as_deref())?;
    if !args.prune.iter().any(|p| p.path.starts_with("sysroot"))
        && args.rootfs.join("sysroot/ostree").exists()
    {
        log.warn(
            "the rootfs holds sysroot/ostree, an OSTree object store that chunks poorly: \
             add --prune /sysroot/ (see the README's bootc section)",
        );
    }
    let (options, architecture) = pack_options(&args)?;
    let compression = options.compression;
    let store = chunkah::store::StoreConfig {
        scratch_dir: Some(std::env::temp_dir()),
        ..Default::default()
    };
    let threads = (args.threads > 0).then_some(args.threads);
    let progress = |p: &Event| log.progress(p);
    let ctx = super::job_context(store, threads, architecture.as_deref());
    let ctx = ctx.with_events(&progress);
    log.info(&format!("starting build of {}", args.rootfs.display()));
    let source = Input::Dir(args.rootfs.clone());
    let archive = |target: ArchiveTarget<'_>| {
        let job = ArchiveJob {
            source: source.clone(),
            name: args.tag.clone(),
            // As coreos/chunkah: --compressed wraps the archive too.
            gzip: match compression {
                Compression::Gzip(level) if args.compressed => Some(level),
                _ => None,
            },
            options: options.clone(),
        };
        pack_archive(&job, target, &ctx)
    };
    let report = match output {
        Output::Stdout => {
            let mut out = std::io::stdout().lock();
            archive(ArchiveTarget::Stream {
                out: &mut out,
                name: "stdout".into(),
            })?
        }
        Output::Archive(file) => archive(ArchiveTarget::File(file))?,
        Output::Image(dest) => pack(
            &PackJob {
                source,
                dest,
                options,
            },
            &ctx,
        )?,
    };
    log.done(&report);
    if let (Some(file), Some(doc)) = (&args.write_manifest_to, &report.component_manifest) {
        chunkah::io::write_atomic(file, doc.as_bytes())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if let Some(file) = &args.write_peak_mem_to {
        std::fs::write(file, format!("{}\n", peak_memory()?))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// The peak resident memory of this process, in bytes (VmHWM).
fn peak_memory() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .context("no VmHWM in /proc/self/status")
}

/// Messages on stderr, as coreos/chunkah logs them: warnings always, what
/// is done by default, more with -v and -vv (or RUST_LOG=debug/trace;
/// RUST_LOG=warn or error for warnings only).
struct Log {
    level: u8,
}

impl Log {
    fn new(verbose: u8) -> Self {
        let from_env = std::env::var("RUST_LOG").ok().and_then(|v| {
            let v = v.to_ascii_lowercase();
            let last = v.rsplit([',', '=']).next().unwrap_or("").to_string();
            match last.as_str() {
                "off" | "error" | "warn" => Some(0),
                "info" => Some(1),
                "debug" => Some(2),
                "trace" => Some(3),
                _ => None,
            }
        });
        let level = match verbose {
            0 => from_env.unwrap_or(1),
            v => 1 + v.min(2),
        };
        Log { level }
    }

    fn say(&self, level: u8, what: &str, text: &str) {
        if self.level >= level {
            eprintln!("chunkah: {what}{}", super::escape_controls(text));
        }
    }

    fn warn(&self, text: &str) {
        self.say(0, "warning: ", text);
    }

    fn info(&self, text: &str) {
        self.say(1, "", text);
    }

    fn progress(&self, p: &Event) {
        match p {
            Event::Walked { entries, bytes } => {
                self.info(&format!("scan complete: {entries} entries, {bytes} bytes"))
            }
            Event::Planned { layers } => self.info(&format!("packing {layers} layers")),
            Event::LayerWritten { bytes } => {
                self.say(2, "", &format!("layer written ({bytes} bytes of content)"))
            }
            Event::Publishing => self.info("writing the image"),
            _ => {}
        }
    }

    fn done(&self, report: &PackReport) {
        for w in &report.warnings {
            self.warn(w);
        }
        if self.level >= 3 {
            for l in &report.layers {
                self.say(
                    3,
                    "",
                    &format!("layer {} {}", l.digest, l.components.join(" ")),
                );
            }
        }
        self.info(&format!(
            "build complete: {} {} ({} layers, {} bytes)",
            report.reference,
            report.manifest,
            report.layers.len(),
            report.total_size
        ));
    }
}
