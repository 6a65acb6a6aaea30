//! Packs a root file system into an OCI image layout the way an image
//! builder embedding chunkah would, reporting progress through a callback.
//!
//! `cargo run --release --example pack_rootfs -- ROOTFS LAYOUT_DIR [TAG]`

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chunkah::component::read_package_databases;
use chunkah::oci::layout::LayoutWriter;
use chunkah::pack::{pack_dir, PackOptions, Progress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(rootfs), Some(layout_dir)) = (args.next(), args.next()) else {
        return Err("usage: pack_rootfs ROOTFS LAYOUT_DIR [TAG]".into());
    };
    let tag = args
        .next()
        .map_or("latest".to_string(), |t| t.to_string_lossy().into_owned());
    let rootfs = PathBuf::from(rootfs);

    // Which package owns each file decides its layer.
    let owners = read_package_databases(&rootfs)?;
    let layout = LayoutWriter::open(&PathBuf::from(layout_dir))?;
    let options = PackOptions {
        max_layers: 32,
        source_date_epoch: Some(1_700_000_000),
        ..PackOptions::default()
    };
    let total = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let progress = |p: Progress| match p {
        Progress::Walked { entries, bytes } => {
            total.store(bytes, Ordering::Relaxed);
            eprintln!("walked {entries} entries, {bytes} bytes");
        }
        Progress::Planned { layers } => eprintln!("planned {layers} layers"),
        Progress::LayerWritten { bytes } => {
            let d = done.fetch_add(bytes, Ordering::Relaxed) + bytes;
            eprintln!(
                "{:5.1}% written",
                100.0 * d as f64 / total.load(Ordering::Relaxed).max(1) as f64
            );
        }
    };
    let report = pack_dir(
        &rootfs,
        |path| owners.owner(path).map(str::to_string),
        &layout,
        &tag,
        &options,
        &progress,
    )?;
    println!(
        "{} {} layers, {} bytes",
        report.manifest,
        report.layers.len(),
        report.total_size
    );
    Ok(())
}
