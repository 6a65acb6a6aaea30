//! Byte ranges of a blob, many in one request (`multipart/byteranges`),
//! with the fallbacks registries need.

use std::ops::Range;

use ureq::http::Response;
use ureq::Body;

use super::client::*;
use super::multipart::{byteranges_boundary, parse_byteranges, parse_content_range};
use super::transport::*;
use crate::digest::Digest;
use crate::error::Result;

/// What a request for some ranges of a blob got.
enum Batch {
    /// Each range's bytes, or `None` where the answer did not cover it.
    Parts(Vec<Option<Vec<u8>>>),
    /// The whole blob (a 200).
    Whole(Vec<u8>),
    /// The request was refused (416) or the answer could not be used.
    Refused,
}

/// The blob whose ranges are read: what every request for them names.
struct RangedBlob<'a> {
    url: &'a str,
    digest: &'a Digest,
    size: u64,
}

/// The ranges of one [`Client::get_ranges`] call and what came for them.
struct RangeRead<'a> {
    ranges: &'a [Range<u64>],
    /// Each range's bytes, once they came.
    out: Vec<Option<Vec<u8>>>,
    /// The whole blob, if a registry sent it: it serves every range.
    whole: Option<Vec<u8>>,
}

impl Client {
    /// The `ranges` (sorted, not overlapping, within `size`) of the blob
    /// `digest`, asking for many in one request (`Range: bytes=a-b,c-d`),
    /// at most [`ClientConfig::max_ranges_per_request`] a request.
    ///
    /// A `multipart/byteranges` answer and a single range are taken as they
    /// come; a whole blob (200) is checked against its digest and serves
    /// every range; a 416 or an unusable multipart answer makes the client
    /// ask for each range alone. [`Stats`] tells which happened.
    pub fn get_ranges(
        &self,
        digest: &Digest,
        size: u64,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Vec<u8>>> {
        let url = self.blob_url(digest);
        check_ranges(&url, size, ranges)?;
        let blob = RangedBlob {
            url: &url,
            digest,
            size,
        };
        let mut read = RangeRead {
            ranges,
            out: vec![None; ranges.len()],
            whole: None,
        };
        let indices: Vec<usize> = (0..ranges.len()).collect();
        for batch in indices.chunks(self.config.max_ranges_per_request) {
            self.fill(&blob, &mut read, batch)?;
        }
        Ok(read
            .out
            .into_iter()
            .map(|r| r.expect("every range filled"))
            .collect())
    }

    /// Fills `read.out[i]` for `i` in `batch`: from the whole blob if it
    /// came already, else with one request, then one request per range
    /// missing.
    fn fill(&self, blob: &RangedBlob<'_>, read: &mut RangeRead<'_>, batch: &[usize]) -> Result<()> {
        if let Some(w) = &read.whole {
            for &i in batch {
                let r = &read.ranges[i];
                read.out[i] = Some(w[r.start as usize..r.end as usize].to_vec());
            }
            return Ok(());
        }
        let wanted: Vec<Range<u64>> = batch.iter().map(|&i| read.ranges[i].clone()).collect();
        match self.fetch_ranges(blob, &wanted)? {
            Batch::Whole(w) => {
                read.whole = Some(w);
                self.fill(blob, read, batch)
            }
            Batch::Parts(parts) => {
                let mut missing = Vec::new();
                for (&i, part) in batch.iter().zip(parts) {
                    match part {
                        Some(p) => read.out[i] = Some(p),
                        None => missing.push(i),
                    }
                }
                if missing.is_empty() {
                    return Ok(());
                }
                if batch.len() == 1 {
                    let r = &read.ranges[batch[0]];
                    return Err(url_error(
                        blob.url,
                        format!(
                            "asked for bytes {}..{} and the answer does not hold them",
                            r.start, r.end
                        ),
                    ));
                }
                bump(&self.counters.range_fallbacks, 1);
                for i in missing {
                    self.fill(blob, read, &[i])?;
                }
                Ok(())
            }
            Batch::Refused => {
                bump(&self.counters.range_fallbacks, 1);
                for &i in batch {
                    self.fill(blob, read, &[i])?;
                }
                Ok(())
            }
        }
    }

    /// One request for `ranges` of the blob, its answer sorted out by kind:
    /// the whole blob, a multipart answer or a single range.
    fn fetch_ranges(&self, blob: &RangedBlob<'_>, ranges: &[Range<u64>]) -> Result<Batch> {
        let (url, size) = (blob.url, blob.size);
        let spec = range_header(ranges);
        let resp = self.send(&mut Request::new("GET", url.to_string()).header("Range", &spec))?;
        let status = resp.status().as_u16();
        if status == 416 && ranges.len() > 1 {
            drop(resp);
            return Ok(Batch::Refused);
        }
        let resp = self.expect(resp, "GET", url, &[200, 206]).map_err(|e| {
            if status == 416 {
                url_error(
                    url,
                    format!(
                        "416 Range Not Satisfiable for {spec}: the registry's blob is shorter \
                         than the {size} bytes expected"
                    ),
                )
            } else {
                e
            }
        })?;
        if status == 200 {
            return self.whole_blob_answer(resp, blob, &spec);
        }
        let content_type = header(&resp, "content-type").unwrap_or("").to_string();
        match byteranges_boundary(&content_type) {
            Some(boundary) => self.multipart_answer(resp, blob, ranges, &boundary),
            None => self.single_range_answer(resp, blob, ranges),
        }
    }

    /// A 200 to a range request: the whole blob, checked against its digest.
    fn whole_blob_answer(
        &self,
        resp: Response<Body>,
        blob: &RangedBlob<'_>,
        spec: &str,
    ) -> Result<Batch> {
        bump(&self.counters.full_blob_fallbacks, 1);
        let body = self.read_body(resp, blob.size, blob.url)?;
        if body.len() as u64 != blob.size || Digest::of(&body) != *blob.digest {
            return Err(url_error(
                blob.url,
                format!(
                    "the whole blob was sent for {spec} and it does not match its \
                     digest and size ({} bytes)",
                    body.len()
                ),
            ));
        }
        Ok(Batch::Whole(body))
    }

    /// A `multipart/byteranges` answer: each range from the part holding
    /// it; an answer that does not parse is [`Batch::Refused`].
    fn multipart_answer(
        &self,
        resp: Response<Body>,
        blob: &RangedBlob<'_>,
        ranges: &[Range<u64>],
        boundary: &str,
    ) -> Result<Batch> {
        bump(&self.counters.multipart_responses, 1);
        // Data, plus headers of each part (Go writes ~130 bytes a part).
        let limit = total_len(ranges) + 1024 * ranges.len() as u64 + 4096;
        let Ok(body) = self.read_body(resp, limit, blob.url) else {
            return Ok(Batch::Refused);
        };
        let Ok(parts) = parse_byteranges(&body, boundary, ranges.len()) else {
            return Ok(Batch::Refused);
        };
        let mut out = vec![None; ranges.len()];
        for part in parts {
            if part.range.total.is_some_and(|t| t != blob.size) {
                return Err(wrong_total(blob, part.range.total));
            }
            let data = &body[part.data];
            let held = covered(ranges, part.range.start..part.range.end, data);
            for (slot, found) in out.iter_mut().zip(held) {
                if slot.is_none() {
                    *slot = found;
                }
            }
        }
        Ok(Batch::Parts(out))
    }

    /// A 206 with one `Content-Range`: the ranges it covers; one larger
    /// than all that was asked is [`Batch::Refused`].
    fn single_range_answer(
        &self,
        resp: Response<Body>,
        blob: &RangedBlob<'_>,
        ranges: &[Range<u64>],
    ) -> Result<Batch> {
        bump(&self.counters.single_range_responses, 1);
        let range = header(&resp, "content-range")
            .and_then(parse_content_range)
            .ok_or_else(|| url_error(blob.url, "a 206 answer without a valid Content-Range"))?;
        if range.total.is_some_and(|t| t != blob.size) {
            return Err(wrong_total(blob, range.total));
        }
        let span = ranges[ranges.len() - 1].end - ranges[0].start;
        let len = range.end - range.start;
        if len > span {
            return Ok(Batch::Refused);
        }
        let body = self.read_body(resp, len, blob.url)?;
        if body.len() as u64 != len {
            return Err(url_error(
                blob.url,
                format!(
                    "the answer is {} bytes, its Content-Range says {len}",
                    body.len()
                ),
            ));
        }
        Ok(Batch::Parts(covered(ranges, range.start..range.end, &body)))
    }
}

/// An error unless `ranges` are non-empty, sorted, disjoint and inside a
/// blob of `size` bytes.
fn check_ranges(url: &str, size: u64, ranges: &[Range<u64>]) -> Result<()> {
    let mut previous_end = 0;
    for r in ranges {
        if r.start >= r.end || r.end > size || r.start < previous_end {
            return Err(url_error(
                url,
                format!(
                    "cannot read bytes {}..{} of a {size}-byte blob \
                     (ranges must be non-empty, sorted, disjoint and inside the blob)",
                    r.start, r.end
                ),
            ));
        }
        previous_end = r.end;
    }
    Ok(())
}

/// The `Range` header asking for `ranges`.
fn range_header(ranges: &[Range<u64>]) -> String {
    let spec: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.start, r.end - 1))
        .collect();
    format!("bytes={}", spec.join(","))
}

fn total_len(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// The registry gave the blob another size than expected.
fn wrong_total(blob: &RangedBlob<'_>, total: Option<u64>) -> crate::Error {
    url_error(
        blob.url,
        format!(
            "the registry says the blob is {} bytes, expected {}",
            total.map_or("an unknown number of".into(), |t| t.to_string()),
            blob.size
        ),
    )
}

/// The bytes of each of `ranges` that `data` (the blob's bytes `held`)
/// holds whole.
fn covered(ranges: &[Range<u64>], held: Range<u64>, data: &[u8]) -> Vec<Option<Vec<u8>>> {
    ranges
        .iter()
        .map(|r| {
            (held.start <= r.start && r.end <= held.end).then(|| {
                data[(r.start - held.start) as usize..(r.end - held.start) as usize].to_vec()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_ranges_before_any_request() {
        // Nothing listens on port 9 of localhost; no request is made anyway.
        let client = Client::new(
            "127.0.0.1:9",
            "a",
            ClientConfig {
                tls_verify: false,
                retries: 0,
                ..ClientConfig::default()
            },
        )
        .unwrap();
        let d = Digest::of(b"x");
        #[allow(clippy::reversed_empty_ranges, clippy::single_range_in_vec_init)]
        for bad in [
            vec![0..0],
            vec![5..3],
            vec![0..11],
            vec![4..6, 0..2],
            vec![0..3, 2..4],
        ] {
            let e = client.get_ranges(&d, 10, &bad).unwrap_err();
            assert!(e.to_string().contains("cannot read bytes"), "{e}");
        }
        assert_eq!(client.stats().requests, 0);
    }
}
