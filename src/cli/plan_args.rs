//! How byte ranges become requests: the flags `diff`, `apply` and `report`
//! share.

use chunkah::update::RequestOptions;
use clap::Args;

use super::size::parse_size;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Fetch ranges at most this far apart as one (suffixes K, M).
    #[arg(long, default_value = "4K", value_parser = parse_size)]
    gap: usize,
    /// At most this many requests (ranges are merged further to fit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_requests: Option<u64>,
    /// Ask for up to N ranges of a blob in one request (a multi-range
    /// request; registries answer `multipart/byteranges`).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    ranges_per_request: u64,
}

impl PlanArgs {
    /// The options (checked by the library).
    pub fn options(&self) -> RequestOptions {
        RequestOptions {
            gap: self.gap as u64,
            max_requests: self.max_requests.map(|n| n as usize),
            ranges_per_request: self.ranges_per_request as usize,
        }
    }
}
