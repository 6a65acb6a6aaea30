//! Byte ranges of a blob, many in one request (`multipart/byteranges`),
//! with the fallbacks registries need.

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

impl Client {
    /// The `[start, end)` `ranges` (sorted, not overlapping, within `size`)
    /// of the blob `digest`, asking for many in one request
    /// (`Range: bytes=a-b,c-d`), at most
    /// [`ClientConfig::max_ranges_per_request`] a request.
    ///
    /// A `multipart/byteranges` answer and a single range are taken as they
    /// come; a whole blob (200) is checked against its digest and serves
    /// every range; a 416 or an unusable multipart answer makes the client
    /// ask for each range alone. [`Stats`] tells which happened.
    pub fn get_ranges(
        &self,
        digest: &Digest,
        size: u64,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<Vec<u8>>> {
        let url = self.blob_url(digest);
        let mut previous_end = 0;
        for &(start, end) in ranges {
            if start >= end || end > size || start < previous_end {
                return Err(url_error(
                    &url,
                    format!(
                        "cannot read bytes {start}..{end} of a {size}-byte blob \
                         (ranges must be non-empty, sorted, disjoint and inside the blob)"
                    ),
                ));
            }
            previous_end = end;
        }
        let mut out = vec![None; ranges.len()];
        let mut whole = None;
        let indices: Vec<usize> = (0..ranges.len()).collect();
        for batch in indices.chunks(self.config.max_ranges_per_request) {
            self.fill(&url, digest, size, ranges, batch, &mut out, &mut whole)?;
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every range filled"))
            .collect())
    }

    /// Fills `out[i]` for `i` in `batch`: from `whole` if the whole blob came
    /// already, else with one request, then one request per range missing.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        url: &str,
        digest: &Digest,
        size: u64,
        ranges: &[(u64, u64)],
        batch: &[usize],
        out: &mut [Option<Vec<u8>>],
        whole: &mut Option<Vec<u8>>,
    ) -> Result<()> {
        if let Some(w) = whole {
            for &i in batch {
                let (s, e) = ranges[i];
                out[i] = Some(w[s as usize..e as usize].to_vec());
            }
            return Ok(());
        }
        let wanted: Vec<(u64, u64)> = batch.iter().map(|&i| ranges[i]).collect();
        match self.fetch_ranges(url, digest, size, &wanted)? {
            Batch::Whole(w) => {
                *whole = Some(w);
                self.fill(url, digest, size, ranges, batch, out, whole)
            }
            Batch::Parts(parts) => {
                let mut missing = Vec::new();
                for (&i, part) in batch.iter().zip(parts) {
                    match part {
                        Some(p) => out[i] = Some(p),
                        None => missing.push(i),
                    }
                }
                if missing.is_empty() {
                    return Ok(());
                }
                if batch.len() == 1 {
                    let (s, e) = ranges[batch[0]];
                    return Err(url_error(
                        url,
                        format!("asked for bytes {s}..{e} and the answer does not hold them"),
                    ));
                }
                bump(&self.counters.range_fallbacks, 1);
                for i in missing {
                    self.fill(url, digest, size, ranges, &[i], out, whole)?;
                }
                Ok(())
            }
            Batch::Refused => {
                bump(&self.counters.range_fallbacks, 1);
                for &i in batch {
                    self.fill(url, digest, size, ranges, &[i], out, whole)?;
                }
                Ok(())
            }
        }
    }

    /// One request for `ranges` of the blob.
    fn fetch_ranges(
        &self,
        url: &str,
        digest: &Digest,
        size: u64,
        ranges: &[(u64, u64)],
    ) -> Result<Batch> {
        let spec: Vec<String> = ranges
            .iter()
            .map(|(s, e)| format!("{s}-{}", e - 1))
            .collect();
        let spec = format!("bytes={}", spec.join(","));
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
            bump(&self.counters.full_blob_fallbacks, 1);
            let body = self.read_body(resp, size, url)?;
            if body.len() as u64 != size || Digest::of(&body) != *digest {
                return Err(url_error(
                    url,
                    format!(
                        "the whole blob was sent for {spec} and it does not match its \
                         digest and size ({} bytes)",
                        body.len()
                    ),
                ));
            }
            return Ok(Batch::Whole(body));
        }
        let wrong_total = |total: Option<u64>| {
            url_error(
                url,
                format!(
                    "the registry says the blob is {} bytes, expected {size}",
                    total.map_or("an unknown number of".into(), |t| t.to_string())
                ),
            )
        };
        let covered = |start: u64, end: u64, data: &[u8]| -> Vec<Option<Vec<u8>>> {
            ranges
                .iter()
                .map(|&(s, e)| {
                    (start <= s && e <= end)
                        .then(|| data[(s - start) as usize..(e - start) as usize].to_vec())
                })
                .collect()
        };
        let content_type = header(&resp, "content-type").unwrap_or("").to_string();
        if let Some(boundary) = byteranges_boundary(&content_type) {
            bump(&self.counters.multipart_responses, 1);
            let wanted: u64 = ranges.iter().map(|(s, e)| e - s).sum();
            // Data, plus headers of each part (Go writes ~130 bytes a part).
            let limit = wanted + 1024 * ranges.len() as u64 + 4096;
            let body = match self.read_body(resp, limit, url) {
                Ok(b) => b,
                Err(_) => return Ok(Batch::Refused),
            };
            let parts = match parse_byteranges(&body, &boundary, ranges.len()) {
                Ok(p) => p,
                Err(_) => return Ok(Batch::Refused),
            };
            let mut out = vec![None; ranges.len()];
            for part in parts {
                if part.range.total.is_some_and(|t| t != size) {
                    return Err(wrong_total(part.range.total));
                }
                let data = &body[part.data];
                for (slot, found) in
                    out.iter_mut()
                        .zip(covered(part.range.start, part.range.end, data))
                {
                    if slot.is_none() {
                        *slot = found;
                    }
                }
            }
            return Ok(Batch::Parts(out));
        }
        bump(&self.counters.single_range_responses, 1);
        let range = header(&resp, "content-range")
            .and_then(parse_content_range)
            .ok_or_else(|| url_error(url, "a 206 answer without a valid Content-Range"))?;
        if range.total.is_some_and(|t| t != size) {
            return Err(wrong_total(range.total));
        }
        let span = ranges[ranges.len() - 1].1 - ranges[0].0;
        if range.end - range.start > span {
            return Ok(Batch::Refused);
        }
        let body = self.read_body(resp, range.end - range.start, url)?;
        if body.len() as u64 != range.end - range.start {
            return Err(url_error(
                url,
                format!(
                    "the answer is {} bytes, its Content-Range says {}",
                    body.len(),
                    range.end - range.start
                ),
            ));
        }
        Ok(Batch::Parts(covered(range.start, range.end, &body)))
    }
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
        for bad in [
            vec![(0, 0)],
            vec![(5, 3)],
            vec![(0, 11)],
            vec![(4, 6), (0, 2)],
            vec![(0, 3), (2, 4)],
        ] {
            let e = client.get_ranges(&d, 10, &bad).unwrap_err();
            assert!(e.to_string().contains("cannot read bytes"), "{e}");
        }
        assert_eq!(client.stats().requests, 0);
    }
}
