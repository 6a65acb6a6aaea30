//! How byte ranges become requests: the flags `diff`, `apply` and `report`
//! share.

use anyhow::{bail, Result};
use chunkah::delta::DeltaOptions;
use clap::Args;

use super::size::parse_size;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Fetch ranges at most this far apart as one (suffixes K, M).
    #[arg(long, default_value = "4K", value_parser = parse_size)]
    gap: usize,
    /// At most this many requests (ranges are merged further to fit).
    #[arg(long, value_name = "N")]
    max_requests: Option<usize>,
    /// Ask for up to N ranges of a blob in one request (a multi-range
    /// request; registries answer `multipart/byteranges`).
    #[arg(long, default_value_t = 1, value_name = "N")]
    ranges_per_request: usize,
}

impl PlanArgs {
    /// The options, checked.
    pub fn options(&self) -> Result<DeltaOptions> {
        if self.max_requests == Some(0) {
            bail!("--max-requests must be at least 1");
        }
        if self.ranges_per_request == 0 {
            bail!("--ranges-per-request must be at least 1");
        }
        Ok(DeltaOptions {
            gap: self.gap as u64,
            max_requests: self.max_requests,
            ranges_per_request: self.ranges_per_request,
        })
    }
}
