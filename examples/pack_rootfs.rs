//! Packs a root file system into an OCI image the way an image builder
//! embedding chunkah would, reporting progress through a callback.
//!
//! `cargo run --release --example pack_rootfs -- SOURCE DEST`
//!
//! SOURCE is a directory (`dir:PATH`), a tarball (`tar:FILE`) or an image
//! (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker://HOST/REPO:TAG`);
//! DEST an image reference (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker://HOST/REPO:TAG`).

use std::sync::atomic::{AtomicU64, Ordering};

use chunkah::jobs::{pack, Event, Input, JobContext, PackJob, PackOptions};
use chunkah::{ImageRef, StoreConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(source), Some(dest)) = (args.next(), args.next()) else {
        return Err("usage: pack_rootfs SOURCE DEST".into());
    };
    let job = PackJob {
        source: Input::parse(&source)?,
        dest: ImageRef::parse(&dest)?,
        options: PackOptions {
            max_layers: 32,
            source_date_epoch: Some(1_700_000_000),
            ..PackOptions::default()
        },
    };
    let total = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let progress = |e: &Event| match *e {
        Event::Walked { entries, bytes } => {
            total.store(bytes, Ordering::Relaxed);
            eprintln!("walked {entries} entries, {bytes} bytes");
        }
        Event::Planned { layers } => eprintln!("planned {layers} layers"),
        Event::LayerWritten { bytes } => {
            let d = done.fetch_add(bytes, Ordering::Relaxed) + bytes;
            eprintln!(
                "{:5.1}% written",
                100.0 * d as f64 / total.load(Ordering::Relaxed).max(1) as f64
            );
        }
        _ => {}
    };
    let ctx = JobContext {
        // Compressed tarballs and layers are decompressed into nameless
        // files here; a registry image is laid out here before the push.
        store: StoreConfig {
            scratch_dir: Some(std::env::temp_dir()),
            ..StoreConfig::default()
        },
        ..JobContext::default()
    };
    let report = pack(&job, &ctx.with_events(&progress))?;
    println!(
        "{} {} {} layers, {} bytes",
        report.reference,
        report.manifest,
        report.layers.len(),
        report.total_size
    );
    Ok(())
}
