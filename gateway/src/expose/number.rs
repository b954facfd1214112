//! Number formatting exactly as the Go exposition encoder writes it, so that a scrape of ours
//! is byte-compatible with upstream: `strconv.FormatFloat(f, 'g', -1, 64)` with the special
//! cases `NaN`, `+Inf`, `-Inf`, and zero written as `0`.
//!
//! ```
//! use gateway::expose::number::format_float;
//! assert_eq!(format_float(1e6), "1e+06");
//! assert_eq!(format_float(123456.0), "123456");
//! assert_eq!(format_float(1.5e-7), "1.5e-07");
//! assert_eq!(format_float(0.0001), "0.0001");
//! assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
//! ```

/// Formats `f` the way Go's exposition encoder does.
pub fn format_float(f: f64) -> String {
    let mut out = String::new();
    write_float(&mut out, f);
    out
}

/// Appends `f`, formatted the way Go's exposition encoder does, to `out`.
pub fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f == 0.0 {
        // Go compares with == 0, so negative zero prints as "0" too.
        out.push('0');
        return;
    }
    // Whole numbers below 1e6 are their digits in fixed form (Go's shortest %g turns to
    // the exponent form from 1e6 on): written without the allocations below, as most
    // counters and gauges are.
    if f.fract() == 0.0 && f.abs() < 1e6 {
        use std::fmt::Write;
        let _ = write!(out, "{}", f as i64);
        return;
    }
    write_shortest(out, f);
}

/// Appends a finite, non-zero `f` in Go's shortest `%g` form.
fn write_shortest(out: &mut String, f: f64) {
    // Rust's `{:e}` yields the shortest digits that round-trip, the same digits Go's
    // shortest formatting chooses; only the layout differs.
    let sci = format!("{:e}", f);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    if negative {
        out.push('-');
    }
    // Go's %g with shortest precision uses exponent form when the decimal exponent is
    // below -4 or at least 6 (strconv's `eprec = 6` for shortest formatting).
    if !(-4..6).contains(&exponent) {
        write_exponent_form(out, &digits, exponent);
    } else {
        write_fixed_form(out, &digits, exponent + 1);
    }
}

fn write_exponent_form(out: &mut String, digits: &str, exponent: i32) {
    let (first, rest) = digits.split_at(1);
    out.push_str(first);
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    }
    out.push('e');
    out.push(if exponent < 0 { '-' } else { '+' });
    let magnitude = exponent.unsigned_abs();
    if magnitude < 10 {
        out.push('0');
    }
    out.push_str(&magnitude.to_string());
}

fn write_fixed_form(out: &mut String, digits: &str, decimal_point: i32) {
    if decimal_point <= 0 {
        out.push_str("0.");
        for _ in 0..(-decimal_point) {
            out.push('0');
        }
        out.push_str(digits);
        return;
    }
    let point = decimal_point as usize;
    if digits.len() <= point {
        out.push_str(digits);
        for _ in digits.len()..point {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..point]);
        out.push('.');
        out.push_str(&digits[point..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_take_a_shortcut_to_the_same_digits() {
        let mut whole: Vec<f64> = vec![1.0, -1.0, 7.0, 10.0, 120.0, 100000.0, 999999.0, -999999.0];
        whole.extend((1..2000).map(|i| f64::from(i * 499)));
        for f in whole {
            let (mut fast, mut general) = (String::new(), String::new());
            write_float(&mut fast, f);
            write_shortest(&mut general, f);
            assert_eq!(fast, general, "{f}");
        }
    }
}
