//! Parsers for the value formats Docker users already write in log-opts:
//! Go durations (`500ms`, `1m30s`), Docker sizes (`16m`, `1.5GiB`) and Go
//! booleans (`true`, `1`, `F`).
//!
//! They take any string a user can type and never panic or overflow: a value
//! beyond what the type holds is an error. Range checks per option (is an
//! hour-long batch wait sane?) are made by the callers.

use std::time::Duration;

/// The longest duration Go's `time.Duration` holds (`i64::MAX` nanoseconds,
/// about 292 years); anything longer is refused as Go refuses it.
const MAX_GO_DURATION_NS: u64 = i64::MAX as u64;

/// Parses a Go `time.ParseDuration` string (`300ms`, `1.5h`, `2h45m`, `.5s`).
/// Negative durations are refused. Arithmetic is exact, in integer
/// nanoseconds: `1e3s`, `inf` or `NaN` are not numbers here, as in Go.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err("must not be negative".into());
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("expected a number followed by a unit, like 500ms or 1m30s".into());
    }
    let out_of_range = || "duration out of range".to_string();
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let int_len = digits(rest);
        let (whole, after) = rest.split_at(int_len);
        rest = after;
        let mut fraction = "";
        let mut has_dot = false;
        if let Some(after_dot) = rest.strip_prefix('.') {
            has_dot = true;
            let len = digits(after_dot);
            fraction = &after_dot[..len];
            rest = &after_dot[len..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(if has_dot {
                "expected digits around the decimal point".into()
            } else {
                "expected a number followed by a unit, like 500ms or 1m30s".into()
            });
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, after) = rest.split_at(unit_len);
        rest = after;
        let scale: u64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit (use ns, us, ms, s, m or h)".into()),
            _ => {
                return Err(format!(
                    "unknown unit {:?} (use ns, us, ms, s, m or h)",
                    shorten(unit, 16)
                ));
            }
        };
        let mut whole_value: u64 = 0;
        for b in whole.bytes() {
            whole_value = whole_value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(out_of_range)?;
        }
        let mut nanos = whole_value.checked_mul(scale).ok_or_else(out_of_range)?;
        if !fraction.is_empty() {
            // 18 digits are more precision than any unit needs (1h is 3.6e12 ns).
            let used = &fraction[..fraction.len().min(18)];
            let numerator: u128 = used.parse().map_err(|_| out_of_range())?;
            let denominator = 10u128.pow(used.len() as u32);
            let part = numerator * u128::from(scale) / denominator;
            nanos = nanos
                .checked_add(u64::try_from(part).map_err(|_| out_of_range())?)
                .ok_or_else(out_of_range)?;
        }
        total = total.checked_add(nanos).ok_or_else(out_of_range)?;
    }
    if total > MAX_GO_DURATION_NS {
        return Err(out_of_range());
    }
    Ok(Duration::from_nanos(total))
}

/// Parses a size the way Docker's `units.RAMInBytes` does: a number with an
/// optional binary unit (`k`, `m`, `g`, `t`, `p`, case-insensitive, with an
/// optional `b` or `ib`), so `16m`, `16MB` and `16MiB` all mean 16 × 1024².
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(num_len);
    // Only digits with at most one decimal point reach the float parser, so
    // exponents, `inf` and `NaN` are refused.
    if number.is_empty() || number == "." || number.bytes().filter(|&b| b == b'.').count() > 1 {
        return Err("expected a size like 1048576, 512k or 16m".into());
    }
    let number: f64 = number
        .parse()
        .map_err(|_| "expected a size like 1048576, 512k or 16m".to_string())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => {
            return Err(format!(
                "unknown size unit {:?} (use k, m, g, t or p)",
                shorten(unit, 16)
            ));
        }
    };
    let bytes = number * multiplier as f64;
    // 2^63 is exactly representable; anything at or above it is refused
    // before the cast, which would otherwise saturate silently.
    if !bytes.is_finite() || bytes >= 9_223_372_036_854_775_808.0 {
        return Err("size out of range".into());
    }
    Ok(bytes as u64)
}

/// Parses a boolean as Go's `strconv.ParseBool` does.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// At most `max` characters of `text`, for error messages about values
/// that may be megabytes long.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…({} bytes)", &text[..end], text.len()),
    }
}

/// A duration as a user writes it (`1h`, `1m30s`, `500ms`), for error messages.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let ms = d.as_millis();
    if ms == 0 || d.subsec_nanos() % 1_000_000 != 0 {
        return format!("{d:?}");
    }
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

/// A size as a user writes it (`64k`, `16m`, `1g`), for error messages.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(50, "p"), (40, "t"), (30, "g"), (20, "m"), (10, "k")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("100μs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("+0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn go_duration_edge_cases_are_parsed_as_go_does() {
        // Go accepts a leading or trailing decimal point and fractions of any unit.
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("+2h45m"), Ok(Duration::from_secs(9900)));
        assert_eq!(parse_duration("1h1h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
        assert_eq!(
            parse_duration("1.0000000000000000000000001s"),
            Ok(Duration::from_secs(1)),
            "excess fraction digits are ignored, not overflowed"
        );
        assert_eq!(
            parse_duration("0010s"),
            Ok(Duration::from_secs(10)),
            "leading zeros"
        );
        assert_eq!(
            parse_duration("2562047h47m16.854775807s"),
            Ok(Duration::from_nanos(i64::MAX as u64)),
            "Go's largest duration"
        );
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in [
            "",
            "10",
            "ten seconds",
            "5 m",
            "-1s",
            "1d",
            "s",
            ".",
            ".s",
            "1..5s",
            "1.2.3s",
            "1e3s",
            "1E3s",
            "inf",
            "infs",
            "NaNs",
            "0x10s",
            "1s2",
            "+",
            "++1s",
            "1_000s",
            "１s",
            "1ｓ",
            "1s\u{0}",
            "٣s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn huge_durations_are_refused_not_overflowed() {
        for huge in [
            "5000000000000000h",
            "2562048h",
            "2562047h47m16.854775808s",
            "9223372036854775808ns",
            "18446744073709551616ns",
            "99999999999999999999999999999999999999999s",
            "1.99999999999999999999999999999999999999999e",
            "4000000000000000000h",
            "9999999999999999999h9999999999999999999h",
        ] {
            let result = parse_duration(huge);
            assert!(result.is_err(), "{huge:?} gave {result:?}");
        }
        assert_eq!(
            parse_duration("5000000000000000h"),
            Err("duration out of range".into())
        );
        let long = "9".repeat(100_000) + "s";
        assert!(parse_duration(&long).is_err());
        let many = "1s".repeat(100_000);
        assert_eq!(parse_duration(&many), Ok(Duration::from_secs(100_000)));
    }

    #[test]
    fn docker_sizes_are_binary() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("16m"), Ok(16 << 20));
        assert_eq!(parse_size("16MB"), Ok(16 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("8191p"), Ok(8191 << 50));
        for bad in ["", "big", "10x", "-5m", "m", "."] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn size_edge_cases_never_panic_or_wrap() {
        for bad in [
            "1e3",
            "1e3k",
            "inf",
            "NaN",
            "1.2.3m",
            "8192p",
            "16777216t",
            "18446744073709551616",
            "99999999999999999999999999999999999999",
            "１k",
            "1ｋ",
            "1 \u{0}k",
            "٣",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_size(&"9".repeat(100_000)).is_err());
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("0.5"), Ok(0));
    }

    /// Deterministic pseudo-random strings over the characters that matter
    /// to these parsers, for "never panics" tests.
    pub(crate) fn arbitrary_strings(alphabet: &[&str], count: usize) -> Vec<String> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = (next() % 24) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn no_input_makes_the_parsers_panic() {
        let alphabet = [
            "0",
            "1",
            "9",
            "99999999999",
            ".",
            "+",
            "-",
            "e",
            "E",
            "h",
            "m",
            "s",
            "ns",
            "us",
            "µ",
            "μ",
            "k",
            "K",
            "g",
            "t",
            "p",
            "i",
            "b",
            "B",
            " ",
            "\u{0}",
            "é",
            "٣",
            "１",
            "inf",
            "NaN",
        ];
        for text in arbitrary_strings(&alphabet, 50_000) {
            if let Ok(d) = parse_duration(&text) {
                assert!(d.as_nanos() <= i64::MAX as u128, "{text:?}");
            }
            if let Ok(n) = parse_size(&text) {
                assert!(n < 1 << 63, "{text:?}");
            }
            let _ = parse_bool(&text);
            let _ = shorten(&text, 3);
        }
    }

    #[test]
    fn go_booleans() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool("F"), Ok(false));
        assert!(parse_bool("yes").is_err());
    }

    #[test]
    fn long_values_are_shortened_for_messages() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("ééééé", 2), "éé…(10 bytes)");
    }

    #[test]
    fn bounds_are_shown_as_users_write_them() {
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1)), "1ms");
        assert_eq!(format_size(64 << 10), "64k");
        assert_eq!(format_size(1 << 30), "1g");
        assert_eq!(format_size(1000), "1000");
    }
}
