//! Packs a tarball (as `podman export` writes it, plain, gzip or zstd) into
//! an OCI archive, keeping the archive's other images, with gzip layers for
//! clients that read no zstd.
//!
//! `cargo run --release --example pack_tarball -- ROOTFS.tar OUT.tar [TAG]`

use std::path::PathBuf;

use chunkah::jobs::Compression;
use chunkah::jobs::{pack, Input, JobContext, PackJob, PackOptions};
use chunkah::{ImageRef, StoreConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(tarball), Some(archive)) = (args.next(), args.next()) else {
        return Err("usage: pack_tarball ROOTFS.tar OUT.tar [TAG]".into());
    };
    let job = PackJob {
        source: Input::Tar(PathBuf::from(tarball)),
        dest: ImageRef::Archive {
            file: PathBuf::from(archive),
            tag: args.next(),
        },
        options: PackOptions {
            compression: Compression::Gzip(6),
            ..PackOptions::default()
        },
    };
    let ctx = JobContext {
        // A compressed tarball is decompressed into a nameless file here.
        store: StoreConfig {
            scratch_dir: Some(std::env::temp_dir()),
            ..StoreConfig::default()
        },
        ..JobContext::default()
    };
    let report = pack(&job, &ctx)?;
    println!("{} {}", report.reference, report.manifest);
    Ok(())
}
