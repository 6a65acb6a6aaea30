//! `chunkah diff OLD NEW`: what a client holding OLD downloads to get NEW.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::delta::{self, DeltaPlan, ImageView};
use chunkah::oci::read::ImageReader;
use chunkah::oci::types::host_architecture;
use chunkah::oci::ImageRef;
use clap::Args;
use serde::Serialize;

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
    #[command(flatten)]
    registry: super::registry_args::RegistryArgs,
}

impl DiffArgs {
    /// Whether errors exit with 2 (as diff(1)).
    pub fn exit_code(&self) -> bool {
        self.exit_code
    }
}

/// The report `--json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    schema_version: u32,
    old: &'a str,
    new: &'a str,
    same: bool,
    /// `compressed` for images; `uncompressed` for `dir:` trees.
    unit: &'static str,
    levels: &'a delta::Levels,
    /// Bytes this diff read: from images, manifests, configs and indexes;
    /// from trees, their file content.
    bytes_read: u64,
}

/// The plan `--plan` writes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanFile<'a> {
    schema_version: u32,
    old: &'a str,
    new: &'a str,
    manifest: &'a chunkah::oci::types::Descriptor,
    blobs: &'a [delta::BlobPlan],
}

/// Opens an image reference and reads what planning needs; also returns the
/// bytes read.
pub fn view(
    reference: &str,
    registry: &super::registry_args::RegistryArgs,
) -> Result<(ImageView, u64)> {
    let r = ImageRef::parse(reference)?;
    let reader = ImageReader::open_with(&r, &registry.config(&r)?)
        .with_context(|| format!("opening {reference}"))?;
    let image = reader
        .image(host_architecture())
        .with_context(|| format!("reading {reference}"))?;
    let view = delta::load(&reader, &image)
        .with_context(|| format!("reading the chunk indexes of {reference}"))?;
    Ok((view, reader.bytes_read()))
}

/// The diff; returns the exit code.
pub fn run(args: DiffArgs) -> Result<u8> {
    let options = args.plan_args.options()?;
    match (args.old.strip_prefix("dir:"), args.new.strip_prefix("dir:")) {
        (Some(old), Some(new)) => return run_trees(&args, old.as_ref(), new.as_ref()),
        (None, None) => {}
        _ => anyhow::bail!("OLD and NEW must both be images or both dir: trees"),
    }
    let (old, old_read) = view(&args.old, &args.registry)?;
    let (new, new_read) = view(&args.new, &args.registry)?;
    let plan = delta::plan(&old, &new, options);
    if let Some(file) = &args.plan {
        let json = serde_json::to_vec_pretty(&PlanFile {
            schema_version: 1,
            old: &args.old,
            new: &args.new,
            manifest: &new.manifest,
            blobs: &plan.blobs,
        })
        .expect("a plan serialises");
        chunkah::oci::layout::write_atomic(file, &json)
            .with_context(|| format!("writing the plan to {}", file.display()))?;
    }
    let mut out = io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&Report {
            schema_version: 1,
            old: &args.old,
            new: &args.new,
            same: plan.same,
            unit: "compressed",
            levels: &plan.levels,
            bytes_read: old_read + new_read,
        })
        .expect("a report serialises");
        writeln!(out, "{json}")?;
    } else {
        write_table(&mut out, &plan)?;
    }
    Ok(if args.exit_code && !plan.same { 1 } else { 0 })
}

/// diff between two directory trees.
fn run_trees(args: &DiffArgs, old: &std::path::Path, new: &std::path::Path) -> Result<u8> {
    use chunkah::chunker::ChunkerConfig;
    use chunkah::component::read_package_databases;
    use chunkah::delta::tree::{plan_trees, tree_view};
    if args.plan.is_some() {
        anyhow::bail!("--plan needs images: dir: trees have no blobs to fetch from");
    }
    let read = |root: &std::path::Path, prior: Option<&[Vec<String>]>| {
        let owners = read_package_databases(root)
            .with_context(|| format!("reading the package databases of {}", root.display()))?;
        tree_view(
            root,
            ChunkerConfig::default(),
            |p| owners.owner(p).map(str::to_string),
            prior,
        )
        .with_context(|| format!("chunking {}", root.display()))
    };
    let old_view = read(old, None)?;
    let prior: Vec<Vec<String>> = old_view
        .layers
        .layers
        .iter()
        .map(|l| l.components.clone())
        .collect();
    let new_view = read(new, Some(&prior))?;
    let clamp = super::source_date_epoch(args.source_date_epoch)?;
    let levels = plan_trees(&old_view, &new_view, clamp);
    let content = |v: &chunkah::delta::tree::TreeView| -> u64 {
        v.chunks.iter().flatten().map(|c| c.chunk.length).sum()
    };
    let same = levels.chunk.bytes == 0 && levels.layer.bytes == 0;
    let mut out = io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&Report {
            schema_version: 1,
            old: &args.old,
            new: &args.new,
            same,
            unit: "uncompressed",
            levels: &levels,
            bytes_read: content(&old_view) + content(&new_view),
        })
        .expect("a report serialises");
        writeln!(out, "{json}")?;
    } else {
        write_table(
            &mut out,
            &DeltaPlan {
                levels,
                same,
                blobs: Vec::new(),
            },
        )?;
        writeln!(out, "(uncompressed bytes of file content)")?;
    }
    Ok(if args.exit_code && !same { 1 } else { 0 })
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

fn write_table(out: &mut impl Write, plan: &DeltaPlan) -> io::Result<()> {
    let l = &plan.levels;
    let image = l.image.bytes.max(1) as f64;
    writeln!(out, "level        bytes  requests  of image")?;
    for (name, level) in [
        ("image", &l.image),
        ("layer", &l.layer),
        ("file", &l.file),
        ("chunk", &l.chunk),
    ] {
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
