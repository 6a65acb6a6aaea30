//! The report job: update bandwidth at every level over a series of versions.

use serde::Serialize;

use super::diff::plan_images;
use super::packages::{
    image_package_report, sum_series, PackageReport, SeriesPackages, SidePackages,
};
use crate::error::{Error, Result};
use crate::store::ImageRef;

use super::context::{Event, JobContext};
use crate::update::{Levels, RequestOptions};

/// A series of image versions, oldest first.
#[derive(Clone, Debug)]
pub struct ReportJob {
    /// The versions, oldest first (at least two).
    pub images: Vec<ImageRef>,
    /// How byte ranges become requests.
    pub options: RequestOptions,
    /// Also split every step's bytes among the packages of its versions
    /// ([`Step::packages`], [`SeriesReport::packages`]); reads every layer
    /// of every version.
    pub packages: bool,
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
    /// Its packages added, removed or changed and their bytes (with
    /// [`ReportJob::packages`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<PackageReport>,
}

/// Every step of a series: what `chunkah report --json` prints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesReport {
    /// Format of this report.
    pub schema_version: u32,
    /// The steps, oldest first.
    pub steps: Vec<Step>,
    /// Every package's bytes summed over the steps (with
    /// [`ReportJob::packages`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<SeriesPackages>,
}

impl SeriesReport {
    /// The `schemaVersion` this build writes.
    pub const SCHEMA_VERSION: u32 = 2;
}

/// Runs a report job: plans every step from one version to the next.
pub fn report(job: &ReportJob, ctx: &JobContext<'_>) -> Result<SeriesReport> {
    ctx.validate()?;
    if job.images.len() < 2 {
        return Err(Error::Config(
            "a report needs at least two image versions".into(),
        ));
    }
    job.options.validate()?;
    let views = job
        .images
        .iter()
        .map(|r| ctx.open_image(r))
        .collect::<Result<Vec<_>>>()?;
    let sides = match job.packages {
        true => views
            .iter()
            .map(|v| SidePackages::of_image(v, ctx))
            .collect::<Result<Vec<_>>>()?,
        false => Vec::new(),
    };
    let total = views.len() - 1;
    let mut steps = Vec::with_capacity(total);
    for (at, (v, refs)) in views.windows(2).zip(job.images.windows(2)).enumerate() {
        ctx.check_cancel()?;
        let planned = plan_images(&v[0].view, &v[1].reader, &v[1].view, job.options);
        let packages = match sides.get(at..at + 2) {
            Some([old, new]) => Some(image_package_report(
                [&v[0], &v[1]],
                [old, new],
                &planned,
                job.options,
            )?),
            _ => None,
        };
        steps.push(Step {
            old: refs[0].to_string(),
            new: refs[1].to_string(),
            levels: planned.plan.levels,
            packages,
        });
        ctx.emit(Event::StepPlanned {
            done: steps.len(),
            total,
        });
    }
    let packages = job.packages.then(|| {
        let reports: Vec<&PackageReport> =
            steps.iter().filter_map(|s| s.packages.as_ref()).collect();
        sum_series(&reports, &sides)
    });
    Ok(SeriesReport {
        schema_version: SeriesReport::SCHEMA_VERSION,
        steps,
        packages,
    })
}
