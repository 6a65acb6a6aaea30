//! Byte sizes with binary suffixes: `65536`, `16K`, `64KiB`, `1M`, `2MiB`, `1G`.

/// Parses a size; suffixes are powers of 1024, case-insensitive.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "{s:?} is not a size (expected a number with an optional K, M or G suffix)"
        ));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "ki" | "kib" => 10,
        "m" | "mi" | "mib" => 20,
        "g" | "gi" | "gib" => 30,
        _ => {
            return Err(format!(
                "{s:?} has an unknown suffix {suffix:?} (expected K, KiB, M, MiB, G or GiB)"
            ))
        }
    };
    let n: usize = digits.parse().map_err(|_| format!("{s:?} is too large"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("16K"), Ok(16 << 10));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2mib"), Ok(2 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("12Q").unwrap_err().contains("unknown suffix"));
        assert!(parse_size("99999999999999999999").is_err());
    }
}
