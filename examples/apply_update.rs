//! Updates a local image: rebuilds NEW in OLD's layout from OLD's frames and
//! only the byte ranges of NEW it lacks, every frame, blob and diff_id
//! checked before the tag is set.
//!
//! `cargo run --release --example apply_update -- oci:DIR:OLDTAG NEW oci:DIR:NEWTAG`
//!
//! NEW is where NEW's bytes are read: `oci:`, `oci-archive:` or `docker://`.

use chunkah::jobs::ApplyOptions;
use chunkah::jobs::{apply, ApplyJob, JobContext};
use chunkah::{ImageRef, StoreConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(old), Some(new), Some(dest)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: apply_update OLD NEW DEST".into());
    };
    let job = ApplyJob {
        from: ImageRef::parse(&old)?,
        source: ImageRef::parse(&new)?,
        dest: ImageRef::parse(&dest)?,
        options: ApplyOptions::default(),
    };
    // Layers fetched whole are downloaded here.
    let ctx = JobContext {
        store: StoreConfig {
            scratch_dir: Some(std::env::temp_dir()),
            ..StoreConfig::default()
        },
        ..JobContext::default()
    };
    let outcome = apply(&job, &ctx)?;
    println!(
        "{} {}: {} bytes read in {} requests (the image is {} bytes)",
        outcome.reference,
        outcome.report.manifest,
        outcome.report.bytes_read,
        outcome.report.requests,
        outcome.report.plan.levels.image.bytes
    );
    Ok(())
}
