//! Parsers of flag values: sizes, durations, `KEY=VALUE` pairs.

use std::time::Duration;

/// Parses `KEY=VALUE` (the value may be empty or hold `=`).
pub(crate) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Parses `4MiB`, `512KiB`, `16M`, `64k`, `1000` (bytes).
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    match n.checked_mul(mult) {
        Some(0) | None => Err(format!("size out of range: {s:?}")),
        Some(v) => Ok(v),
    }
}

/// Parses `500ms`, `30s`, `2m`, `1h`, or `0`. A number needs its unit: `--init-timeout 2`
/// could mean seconds or milliseconds, and guessing wrong fails far from the flag.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let d = match unit {
        "" if n == 0 => Duration::ZERO,
        "" => return Err(format!("`{s}`: add a unit: ms, s, m or h (e.g. {s}s)")),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    Ok(d)
}

/// An instance id (`--instance-id`), as `crate::instance` accepts it.
pub(crate) fn parse_instance_id(s: &str) -> Result<String, String> {
    crate::instance::validate(s).map(|()| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn key_values() {
        assert_eq!(parse_key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(
            parse_key_value("EMPTY="),
            Ok(("EMPTY".into(), String::new()))
        );
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO), "0 needs no unit");
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        let bare = parse_duration("7").unwrap_err();
        assert!(bare.contains("add a unit") && bare.contains("7s"), "{bare}");
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
