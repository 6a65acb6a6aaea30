//! What a client holding OLD downloads to get NEW, at every level, read from
//! manifests, configs and chunk indexes only.
//!
//! `cargo run --release --example diff_images -- OLD NEW`
//!
//! OLD and NEW are image references (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker://HOST/REPO:TAG`), or both `dir:PATH` trees.

use chunkah::jobs::RequestOptions;
use chunkah::jobs::{diff, DiffJob, Input, JobContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(old), Some(new)) = (args.next(), args.next()) else {
        return Err("usage: diff_images OLD NEW".into());
    };
    let job = DiffJob {
        old: Input::parse(&old)?,
        new: Input::parse(&new)?,
        options: RequestOptions {
            ranges_per_request: 8,
            ..RequestOptions::default()
        },
        source_date_epoch: None,
        packages: false,
    };
    let report = diff(&job, &JobContext::default())?;
    let l = &report.levels;
    for (name, level) in [
        ("image", l.image),
        ("layer", l.layer),
        ("file", l.file),
        ("chunk", l.chunk),
    ] {
        println!("{name:6} {:>12} {} bytes", level.bytes, report.unit);
    }
    if let Some(plan) = &report.plan {
        let ranges: usize = plan
            .blobs
            .iter()
            .map(|b| match &b.action {
                chunkah::update::BlobAction::Rebuild { ranges, .. } => ranges.len(),
                _ => 0,
            })
            .sum();
        println!("{} blobs, {ranges} byte ranges to fetch", plan.blobs.len());
    }
    Ok(())
}
