//! Grafana's `Unix`, `UnixMs`, `UnixUs` and `UnixNs` formats (stages/util.go), with Go's
//! `strconv.ParseInt(s, 10, 64)`, float rounding and wrapping integer arithmetic.

use super::civil::GoTime;

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, then at least one ASCII digit; no
/// underscores (base 10); out of range is an error.
pub(crate) fn parse_int(s: &[u8]) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", show(s));
    let range = || format!("strconv.ParseInt: parsing {}: value out of range", show(s));
    let (neg, digits) = match s.first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    let cutoff: u64 = if neg { 1u64 << 63 } else { (1u64 << 63) - 1 };
    let mut n: u64 = 0;
    let mut overflow = false;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(syntax());
        }
        if overflow {
            continue;
        }
        match n
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
        {
            Some(v) if v <= cutoff => n = v,
            _ => overflow = true,
        }
    }
    if overflow {
        return Err(range());
    }
    Ok(if neg {
        (n as i64).wrapping_neg()
    } else {
        n as i64
    })
}

fn show(s: &[u8]) -> String {
    let cut = &s[..s.len().min(64)];
    let mut q = format!("{:?}", String::from_utf8_lossy(cut));
    if s.len() > 64 {
        q.push_str("...");
    }
    q
}

/// `math.Pow(10, e)` for an integer exponent, as Go computes it where it matters here:
/// exact for 0 <= e <= 22, the correctly rounded reciprocal for -22 <= e < 0 (both of Go's
/// algorithms agree there), and some value below 1e-22 for smaller e — only ever multiplied
/// by an int64 (< 9.3e18) and truncated, which gives 0 for any such value.
fn pow10(e: i64) -> f64 {
    const P: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    if (0..=22).contains(&e) {
        P[e as usize]
    } else if (-22..0).contains(&e) {
        1.0 / P[(-e) as usize]
    } else if e < 0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Grafana's "Unix" parser: seconds, optionally with exactly one '.' and a fraction.
pub(crate) fn parse_unix(t: &[u8]) -> Result<GoTime, String> {
    let dots = t.iter().filter(|&&c| c == b'.').count();
    if dots == 1 {
        let i = t.iter().position(|&c| c == b'.').unwrap_or(0);
        let (a, b) = (&t[..i], &t[i + 1..]);
        let sec = parse_int(a)?;
        let frac = parse_int(b)?;
        // nsec := int64(float64(frac) * math.Pow(10, float64(9-len(split[1]))))
        let e = 9 - (b.len() as i64).min(1 << 40);
        let f = frac as f64 * pow10(e);
        let nsec = f as i64; // in range: |f| < 1e9
        return Ok(GoTime::from_unix(sec, nsec));
    }
    let i = parse_int(t)?;
    Ok(GoTime::from_unix(i, 0))
}

/// Grafana's "UnixMs"/"UnixUs"/"UnixNs": `time.Unix(0, i*unit)` (the product wraps as in Go).
pub(crate) fn parse_unix_scaled(t: &[u8], unit: i64) -> Result<GoTime, String> {
    let i = parse_int(t)?;
    Ok(GoTime::from_unix(0, i.wrapping_mul(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_like_go() {
        assert_eq!(parse_int(b"0"), Ok(0));
        assert_eq!(parse_int(b"+12"), Ok(12));
        assert_eq!(parse_int(b"-12"), Ok(-12));
        assert_eq!(parse_int(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_int(b"9223372036854775808").is_err());
        assert!(parse_int(b"").is_err());
        assert!(parse_int(b"-").is_err());
        assert!(parse_int(b"1_000").is_err());
        assert!(parse_int(b" 1").is_err());
        assert!(parse_int(b"1.5").is_err());
        assert_eq!(parse_int(b"0000000000000000000000000000001"), Ok(1));
    }

    #[test]
    fn unix_variants() {
        let t = parse_unix(b"1562708916.414").unwrap();
        assert_eq!(
            (t.unix_seconds(), t.subsec_nanos()),
            (1_562_708_916, 414_000_000)
        );
        let t = parse_unix(b"1.-5").unwrap();
        assert_eq!((t.unix_seconds(), t.subsec_nanos()), (0, 950_000_000));
        let t = parse_unix(b"-1.5").unwrap();
        assert_eq!((t.unix_seconds(), t.subsec_nanos()), (-1, 500_000_000));
        let t = parse_unix(b"1.0000000001").unwrap();
        assert_eq!((t.unix_seconds(), t.subsec_nanos()), (1, 0));
        let t = parse_unix(b"1.123456789123").unwrap();
        assert_eq!(t.subsec_nanos(), 123_456_789);
        assert!(parse_unix(b"1.2.3").is_err());
        assert!(parse_unix(b".5").is_err());
        assert!(parse_unix(b"5.").is_err());
        assert!(parse_unix(b"").is_err());
        let t = parse_unix_scaled(b"9223372036854775807", 1_000_000).unwrap();
        assert_eq!(
            t.unix_nanos(),
            Some(9_223_372_036_854_775_807i64.wrapping_mul(1_000_000))
        );
        assert!(parse_unix_scaled(b"1.5", 1_000_000).is_err());
        let t = parse_unix_scaled(b"-1", 1000).unwrap();
        assert_eq!(t.unix_nanos(), Some(-1000));
    }
}
