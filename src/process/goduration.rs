//! Go's `time.ParseDuration`, as stage configs are read (`max_wait_time`,
//! `older_than`, ...): a sign, then numbers with units `ns`, `us` (`µs`),
//! `ms`, `s`, `m`, `h`, fractions allowed (`1.5h`), `0` alone without a
//! unit; at most about 292 years either way.

/// The duration in nanoseconds.
pub fn parse(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let n = digits(rest);
        let (whole, after) = rest.split_at(n);
        rest = after;
        let mut fraction = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let f = digits(after_dot);
            fraction = &after_dot[..f];
            rest = &after_dot[f..];
            if whole.is_empty() && fraction.is_empty() {
                return Err(invalid());
            }
        } else if whole.is_empty() {
            return Err(invalid());
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
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        let mut value: u64 = 0;
        for b in whole.bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(invalid)?;
        }
        let mut ns = value.checked_mul(scale).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            let used = &fraction[..fraction.len().min(18)];
            let numerator: u128 = used.parse().map_err(|_| invalid())?;
            let part = numerator * u128::from(scale) / 10u128.pow(used.len() as u32);
            ns = ns
                .checked_add(u64::try_from(part).map_err(|_| invalid())?)
                .ok_or_else(invalid)?;
        }
        total = total.checked_add(ns).ok_or_else(invalid)?;
    }
    if negative {
        if total > i64::MAX as u64 + 1 {
            return Err(invalid());
        }
        Ok((total as i64).wrapping_neg())
    } else {
        i64::try_from(total).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn as_go_parses_durations() {
        assert_eq!(parse("3s"), Ok(3_000_000_000));
        assert_eq!(parse("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse("-500ms"), Ok(-500_000_000));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse(".5s"), Ok(500_000_000));
        for bad in ["", "3", "s", "1x", "-", "9999999999h", " 1s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
