//! The report job: update bandwidth at every level over a series of versions.

use serde::Serialize;

use super::diff::plan_images;
use crate::error::{Error, Result};
use crate::oci::types::host_architecture;
use crate::store::{ImageRef, OpenImage, StoreConfig};
use crate::update::{Levels, RequestOptions};

/// A series of image versions, oldest first.
#[derive(Clone, Debug)]
pub struct ReportJob {
    /// The versions, oldest first (at least two).
    pub images: Vec<ImageRef>,
    /// How byte ranges become requests.
    pub options: RequestOptions,
    /// How registries are reached.
    pub store: StoreConfig,
}

/// One update step.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The version held.
    pub old: String,
    /// The version wanted.
    pub new: String,
    /// What the step costs at each level (`delta` where NEW lists a delta
    /// from OLD).
    pub levels: Levels,
}

/// Every step of a series: what `chunkah report --json` prints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesReport {
    /// Format of this report.
    pub schema_version: u32,
    /// The steps, oldest first.
    pub steps: Vec<Step>,
}

/// Runs a report job: plans every step from one version to the next.
pub fn report(job: &ReportJob) -> Result<SeriesReport> {
    if job.images.len() < 2 {
        return Err(Error::Config(
            "a report needs at least two image versions".into(),
        ));
    }
    job.options.validate()?;
    let views = job
        .images
        .iter()
        .map(|r| OpenImage::open(r, &job.store, host_architecture()))
        .collect::<Result<Vec<_>>>()?;
    let steps = views
        .windows(2)
        .zip(job.images.windows(2))
        .map(|(v, refs)| Step {
            old: refs[0].to_string(),
            new: refs[1].to_string(),
            levels: plan_images(&v[0].view, &v[1].reader, &v[1].view, job.options)
                .plan
                .levels,
        })
        .collect();
    Ok(SeriesReport {
        schema_version: 2,
        steps,
    })
}
