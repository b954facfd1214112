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
