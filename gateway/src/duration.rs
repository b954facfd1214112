//! Go-style durations (`5m`, `1h30m`, `250ms`): parsing flag and file values with Go's
//! rules and limits, and writing them back as upstream shows them. A leaf: it imports nothing
//! of the crate.

use std::time::Duration;

/// The longest duration Go can hold (`math.MaxInt64` nanoseconds, about 292 years): longer
/// ones are refused, as Go's parser does, so that no operator value overflows a time it is
/// added to.
pub const MAX_GO_DURATION: Duration = Duration::new(9_223_372_036, 854_775_807);

/// Parses a Go duration such as `5m`, `1h30m`, `1.5s` or `250ms`.
///
/// # Errors
/// The reason, for malformed text and for durations beyond [`MAX_GO_DURATION`].
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let too_long =
        || format!("duration {text:?} is too long (at most 2562047h47m16.854775807s, as in Go)");
    // Whole nanoseconds, as Go counts them, so that the limit is exact.
    let mut nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
        let (whole, fraction) = rest[..number_len]
            .split_once('.')
            .unwrap_or((&rest[..number_len], ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(format!("invalid duration {text:?}"));
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        // Only digits: a parse error is an overflow.
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        // Digits past the 18th are worth less than a nanosecond of an hour.
        let (numerator, scale) = fraction.bytes().take(18).fold((0u128, 1u128), |(n, s), d| {
            (n * 10 + u128::from(d - b'0'), s * 10)
        });
        nanos = whole
            .checked_mul(unit)
            .and_then(|n| n.checked_add(numerator * unit / scale))
            .and_then(|n| nanos.checked_add(n))
            .ok_or_else(too_long)?;
    }
    if nanos > MAX_GO_DURATION.as_nanos() {
        return Err(too_long());
    }
    let seconds = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(seconds, (nanos % 1_000_000_000) as u32))
}

/// A duration as upstream's status page shows a flag's value: whole hours and minutes as Go
/// writes them (`5m0s`, `1h0m0s`), anything else in seconds.
pub fn format_flag_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(3600) && secs > 0 {
        format!("{}h0m0s", secs / 3600)
    } else if secs.is_multiple_of(60) && secs > 0 {
        format!("{}m0s", secs / 60)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (text, seconds) in [
            ("5m", 300.0),
            ("1h30m", 5400.0),
            ("1.5s", 1.5),
            ("250ms", 0.25),
            ("0", 0.0),
            ("1.5h", 5400.0),
            (".5s", 0.5),
        ] {
            assert_eq!(
                parse_go_duration(text).map(|d| d.as_secs_f64()),
                Ok(seconds),
                "{text}"
            );
        }
        assert_eq!(
            parse_go_duration("2562047h47m16.854775807s"),
            Ok(MAX_GO_DURATION)
        );
        for bad in [
            "",
            "5",
            "5x",
            "m",
            "2562048h",
            "2562047h47m16.854775808s",
            "99999999999999999999h",
            "999999999999999999999999999999999999999999h",
            ".s",
            "1..5s",
            "9999999999999999999s",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
