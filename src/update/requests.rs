//! How byte ranges become requests: merged across small gaps, at most so
//! many ranges in one multi-range request and so many bytes held at a time.

use std::ops::Range;

use crate::error::Result;

/// How byte ranges become requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestOptions {
    /// Ranges of one blob at most this many bytes apart are fetched as one.
    pub gap: u64,
    /// At most this many requests in all (ranges are merged further, the
    /// smallest gaps first, to stay under it); `None`: no limit.
    pub max_requests: Option<usize>,
    /// Ranges of one blob asked for in one request (a multi-range request,
    /// answered as `multipart/byteranges`); 1: one range per request.
    pub ranges_per_request: usize,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            gap: 4096,
            max_requests: None,
            ranges_per_request: 1,
        }
    }
}

impl RequestOptions {
    /// An [`crate::Error::Config`] if `max_requests` or
    /// `ranges_per_request` is 0.
    pub fn validate(&self) -> Result<()> {
        if self.max_requests == Some(0) {
            return Err(crate::Error::Config(
                "max_requests must be at least 1".into(),
            ));
        }
        if self.ranges_per_request == 0 {
            return Err(crate::Error::Config(
                "ranges_per_request must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Requests for `ranges` ranges of one blob.
    pub fn requests_for(&self, ranges: usize) -> usize {
        ranges.div_ceil(self.ranges_per_request.max(1))
    }
}

/// Bytes of planned ranges a client holds in memory at a time, at most: a
/// longer range is read in pieces of this size, each its own request, and
/// ranges share a request only up to it.
pub const FETCH_WINDOW: u64 = 32 << 20;

/// `ranges` with each range above `max` bytes cut into pieces of `max`.
pub fn split_ranges(ranges: &[Range<u64>], max: u64) -> Vec<Range<u64>> {
    let max = max.max(1);
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let mut at = r.start;
        while r.end - at > max {
            out.push(at..at + max);
            at += max;
        }
        out.push(at..r.end);
    }
    out
}

/// The bytes `ranges` hold together.
pub fn total_len(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// Serialises byte ranges as `[[start, end], …]`: the JSON form of the
/// plan and of the plan file.
pub(crate) fn serialize_pairs<S: serde::Serializer>(
    ranges: &[Range<u64>],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_seq(ranges.iter().map(|r| [r.start, r.end]))
}

/// `ranges` grouped into requests, in order: at most `per_request` ranges
/// and `max_bytes` bytes in each (a range above `max_bytes` alone).
pub fn request_groups(
    ranges: &[Range<u64>],
    per_request: usize,
    max_bytes: u64,
) -> Vec<Range<usize>> {
    bounded_runs(
        ranges.iter().map(|r| r.end - r.start),
        per_request,
        max_bytes,
    )
}

/// Consecutive items, by their `costs`, cut into runs of at most
/// `max_count` items costing at most `max_bytes` together (an item above
/// `max_bytes` alone); the runs in order, as index ranges.
pub fn bounded_runs(
    costs: impl IntoIterator<Item = u64>,
    max_count: usize,
    max_bytes: u64,
) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut used = 0;
    for (i, cost) in costs.into_iter().enumerate() {
        match runs.last_mut() {
            Some(r) if r.len() < max_count.max(1) && used + cost <= max_bytes => {
                r.end = i + 1;
                used += cost;
            }
            _ => {
                runs.push(i..i + 1);
                used = cost;
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::{request_groups, split_ranges, RequestOptions};

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn long_ranges_are_cut_into_pieces_and_requests_bounded_in_bytes() {
        assert_eq!(
            split_ranges(&[0..10, 20..45], 10),
            vec![0..10, 20..30, 30..40, 40..45]
        );
        assert_eq!(split_ranges(&[5..6], 0), vec![5..6]);
        let r = [0..4, 10..14, 20..24, 30..50, 60..61];
        // By count alone.
        assert_eq!(request_groups(&r, 2, u64::MAX), vec![0..2, 2..4, 4..5]);
        // By bytes: the 20-byte range alone, above the bound.
        assert_eq!(request_groups(&r, 10, 8), vec![0..2, 2..3, 3..4, 4..5]);
        assert!(request_groups(&[], 3, 8).is_empty());
    }

    #[test]
    fn ranges_serialise_as_start_end_pairs() {
        #[derive(serde::Serialize)]
        struct Plan {
            #[serde(serialize_with = "super::serialize_pairs")]
            ranges: Vec<std::ops::Range<u64>>,
        }
        let plan = Plan {
            ranges: vec![0..10, 20..45],
        };
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"ranges":[[0,10],[20,45]]}"#
        );
    }

    #[test]
    fn ranges_per_request_divides_rounding_up() {
        let per = |n| RequestOptions {
            ranges_per_request: n,
            ..RequestOptions::default()
        };
        assert_eq!(RequestOptions::default().requests_for(7), 7);
        assert_eq!(per(8).requests_for(0), 0);
        assert_eq!(per(8).requests_for(8), 1);
        assert_eq!(per(8).requests_for(9), 2);
        assert_eq!(per(0).requests_for(3), 3);
    }
}
