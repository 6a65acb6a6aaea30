//! `Content-Range` headers and `multipart/byteranges` bodies (RFC 9110
//! §14.4, §14.6), parsed from a body already read into memory (whose size
//! the caller bounds).
//!
//! Each part's length is taken from its `Content-Range`, never found by
//! searching for the boundary, so binary data that happens to contain the
//! boundary cannot split a part.

/// The largest part header section accepted, in bytes.
const MAX_PART_HEADER_BYTES: usize = 8 << 10;

/// `bytes START-LAST/TOTAL` (or `/*`): `[start, end)` and the total size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: Option<u64>,
}

/// Parses a `Content-Range` value of a satisfied range.
pub(crate) fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.trim().split_once('-')?;
    let start: u64 = parse_u64(first)?;
    let last: u64 = parse_u64(last)?;
    let total = match total.trim() {
        "*" => None,
        t => Some(parse_u64(t)?),
    };
    if last < start || total.is_some_and(|t| last >= t) {
        return None;
    }
    Some(ContentRange {
        start,
        end: last.checked_add(1)?,
        total,
    })
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The boundary of a `multipart/byteranges` content type, or `None` if the
/// content type is something else.
pub(crate) fn byteranges_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/byteranges") {
        return None;
    }
    for p in params {
        let Some((name, value)) = p.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("boundary") {
            let v = value.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            // RFC 2046: 1 to 70 characters.
            if v.is_empty() || v.len() > 70 || v.bytes().any(|b| b.is_ascii_control()) {
                return None;
            }
            return Some(v.to_string());
        }
    }
    None
}

/// One part of a multipart body: its range and where its bytes are in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub range: ContentRange,
    pub data: std::ops::Range<usize>,
}

/// Parses a `multipart/byteranges` body. At most `max_parts` parts.
pub(crate) fn parse_byteranges(
    body: &[u8],
    boundary: &str,
    max_parts: usize,
) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The preamble (normally empty) ends at the first delimiter.
    let mut pos = find(body, delimiter, 0).ok_or("no boundary in the body")?;
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        pos = skip_newline(body, pos).ok_or("no line end after a boundary")?;
        if parts.len() >= max_parts {
            return Err(format!("more than {max_parts} parts"));
        }
        // Part headers, up to an empty line.
        let mut range = None;
        loop {
            let line_end = find(body, b"\n", pos).ok_or("part headers are not terminated")?;
            if line_end - pos > MAX_PART_HEADER_BYTES {
                return Err("a part header line is too long".into());
            }
            let line = &body[pos..line_end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            pos = line_end + 1;
            if line.is_empty() {
                break;
            }
            let line = std::str::from_utf8(line).map_err(|_| "a part header is not UTF-8")?;
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad part header {line:?}"))?;
            if name.trim().eq_ignore_ascii_case("content-range") {
                range = Some(
                    parse_content_range(value)
                        .ok_or_else(|| format!("bad Content-Range {:?}", value.trim()))?,
                );
            }
        }
        let range = range.ok_or("a part has no Content-Range")?;
        let len = usize::try_from(range.end - range.start).map_err(|_| "part too long")?;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= body.len())
            .ok_or("a part is shorter than its Content-Range")?;
        parts.push(Part {
            range,
            data: pos..end,
        });
        pos = end;
        // A line end, then the next delimiter.
        pos = skip_newline(body, pos).ok_or("no line end after a part")?;
        if !body[pos..].starts_with(delimiter) {
            return Err("a part is longer than its Content-Range".into());
        }
    }
}

fn skip_newline(body: &[u8], pos: usize) -> Option<usize> {
    if body[pos..].starts_with(b"\r\n") {
        Some(pos + 2)
    } else if body[pos..].starts_with(b"\n") {
        Some(pos + 1)
    } else {
        None
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_ranges() {
        let cr = |s| parse_content_range(s);
        assert_eq!(
            cr("bytes 0-9/5000"),
            Some(ContentRange {
                start: 0,
                end: 10,
                total: Some(5000)
            })
        );
        assert_eq!(cr("bytes 4999-4999/*").map(|r| r.end), Some(5000));
        for bad in [
            "bytes 9-0/10",
            "bytes 0-10/10",
            "bytes */10",
            "items 0-1/2",
            "bytes 0-/5",
            "bytes -1-2/5",
            "bytes 0-99999999999999999999999/5",
        ] {
            assert_eq!(cr(bad), None, "{bad}");
        }
    }

    #[test]
    fn finds_the_boundary() {
        assert_eq!(
            byteranges_boundary("multipart/byteranges; boundary=abc"),
            Some("abc".into())
        );
        assert_eq!(
            byteranges_boundary("Multipart/ByteRanges;boundary=\"a b\""),
            Some("a b".into())
        );
        assert_eq!(byteranges_boundary("application/octet-stream"), None);
        assert_eq!(byteranges_boundary("multipart/byteranges"), None);
        assert_eq!(byteranges_boundary("multipart/byteranges; boundary="), None);
    }

    /// The body Go's `http.ServeContent` writes (what distribution sends).
    fn go_body(boundary: &str, parts: &[(u64, &[u8])], total: u64) -> Vec<u8> {
        let mut b = Vec::new();
        for (i, (start, data)) in parts.iter().enumerate() {
            if i > 0 {
                b.extend_from_slice(b"\r\n");
            }
            b.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Range: bytes {start}-{}/{total}\r\n\
                     Content-Type: application/octet-stream\r\n\r\n",
                    start + data.len() as u64 - 1
                )
                .as_bytes(),
            );
            b.extend_from_slice(data);
        }
        b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        b
    }

    #[test]
    fn parses_multipart_bodies() {
        // Data that contains the boundary itself must not split a part.
        let tricky: &[u8] = b"x\r\n--BOUND\r\ny";
        let body = go_body("BOUND", &[(0, b"0123456789"), (100, tricky)], 5000);
        let parts = parse_byteranges(&body, "BOUND", 10).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].range.start, parts[0].range.end), (0, 10));
        assert_eq!(&body[parts[0].data.clone()], b"0123456789");
        assert_eq!(parts[1].range.start, 100);
        assert_eq!(&body[parts[1].data.clone()], tricky);
        // Bare LF line ends and a preamble are accepted.
        let lf = b"preamble\n--B\nContent-Range: bytes 1-2/3\n\nab\n--B--\n";
        let parts = parse_byteranges(lf, "B", 10).unwrap();
        assert_eq!(&lf[parts[0].data.clone()], b"ab");

        assert!(parse_byteranges(&body, "BOUND", 1).is_err());
        assert!(parse_byteranges(&body, "OTHER", 10).is_err());
        for cut in 0..body.len() - 4 {
            // Every truncation is refused, none panics.
            assert!(
                parse_byteranges(&body[..cut], "BOUND", 10).is_err(),
                "{cut}"
            );
        }
        let short = go_body("B", &[(0, b"abc")], 10);
        let longer = String::from_utf8(short)
            .unwrap()
            .replace("bytes 0-2/10", "bytes 0-1/10");
        assert!(parse_byteranges(longer.as_bytes(), "B", 10).is_err());
        let no_range = b"--B\r\nContent-Type: x\r\n\r\nab\r\n--B--\r\n";
        assert!(parse_byteranges(no_range, "B", 10).is_err());
    }
}
