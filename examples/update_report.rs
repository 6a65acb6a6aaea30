//! Update bandwidth over a series of versions, as JSON.
//!
//! `cargo run --release --example update_report -- IMAGE1 IMAGE2 ...`

use chunkah::jobs::{report, JobContext, ReportJob};
use chunkah::ImageRef;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let images = std::env::args()
        .skip(1)
        .map(|r| ImageRef::parse(&r))
        .collect::<Result<Vec<_>, _>>()?;
    let series = report(
        &ReportJob {
            images,
            options: Default::default(),
            packages: false,
        },
        &JobContext::default(),
    )?;
    println!("{}", serde_json::to_string_pretty(&series)?);
    Ok(())
}
