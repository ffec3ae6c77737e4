//! Go layout tokenizer: a faithful port of `time.nextStdChunk`, run once over the whole
//! layout (Go runs it lazily, chunk by chunk, with identical results).

pub(crate) const STD_NEED_DATE: u32 = 1 << 8;
pub(crate) const STD_NEED_YDAY: u32 = 1 << 9;
pub(crate) const STD_NEED_CLOCK: u32 = 1 << 10;
const STD_ARG_SHIFT: u32 = 16;
const STD_SEPARATOR_SHIFT: u32 = 28;
pub(crate) const STD_MASK: u32 = (1 << STD_ARG_SHIFT) - 1;

// Values as Go's iota sequence produces them.
pub(crate) const STD_LONG_MONTH: u32 = 1 + STD_NEED_DATE; // "January"
pub(crate) const STD_MONTH: u32 = 2 + STD_NEED_DATE; // "Jan"
pub(crate) const STD_NUM_MONTH: u32 = 3 + STD_NEED_DATE; // "1"
pub(crate) const STD_ZERO_MONTH: u32 = 4 + STD_NEED_DATE; // "01"
pub(crate) const STD_LONG_WEEK_DAY: u32 = 5 + STD_NEED_DATE; // "Monday"
pub(crate) const STD_WEEK_DAY: u32 = 6 + STD_NEED_DATE; // "Mon"
pub(crate) const STD_DAY: u32 = 7 + STD_NEED_DATE; // "2"
pub(crate) const STD_UNDER_DAY: u32 = 8 + STD_NEED_DATE; // "_2"
pub(crate) const STD_ZERO_DAY: u32 = 9 + STD_NEED_DATE; // "02"
pub(crate) const STD_UNDER_YEAR_DAY: u32 = 10 + STD_NEED_YDAY; // "__2"
pub(crate) const STD_ZERO_YEAR_DAY: u32 = 11 + STD_NEED_YDAY; // "002"
pub(crate) const STD_HOUR: u32 = 12 + STD_NEED_CLOCK; // "15"
pub(crate) const STD_HOUR12: u32 = 13 + STD_NEED_CLOCK; // "3"
pub(crate) const STD_ZERO_HOUR12: u32 = 14 + STD_NEED_CLOCK; // "03"
pub(crate) const STD_MINUTE: u32 = 15 + STD_NEED_CLOCK; // "4"
pub(crate) const STD_ZERO_MINUTE: u32 = 16 + STD_NEED_CLOCK; // "04"
pub(crate) const STD_SECOND: u32 = 17 + STD_NEED_CLOCK; // "5"
pub(crate) const STD_ZERO_SECOND: u32 = 18 + STD_NEED_CLOCK; // "05"
pub(crate) const STD_LONG_YEAR: u32 = 19 + STD_NEED_DATE; // "2006"
pub(crate) const STD_YEAR: u32 = 20 + STD_NEED_DATE; // "06"
pub(crate) const STD_PM: u32 = 21 + STD_NEED_CLOCK; // "PM"
pub(crate) const STD_LOWER_PM: u32 = 22 + STD_NEED_CLOCK; // "pm"
pub(crate) const STD_TZ: u32 = 23; // "MST"
pub(crate) const STD_ISO8601_TZ: u32 = 24; // "Z0700"
pub(crate) const STD_ISO8601_SECONDS_TZ: u32 = 25; // "Z070000"
pub(crate) const STD_ISO8601_SHORT_TZ: u32 = 26; // "Z07"
pub(crate) const STD_ISO8601_COLON_TZ: u32 = 27; // "Z07:00"
pub(crate) const STD_ISO8601_COLON_SECONDS_TZ: u32 = 28; // "Z07:00:00"
pub(crate) const STD_NUM_TZ: u32 = 29; // "-0700"
pub(crate) const STD_NUM_SECONDS_TZ: u32 = 30; // "-070000"
pub(crate) const STD_NUM_SHORT_TZ: u32 = 31; // "-07"
pub(crate) const STD_NUM_COLON_TZ: u32 = 32; // "-07:00"
pub(crate) const STD_NUM_COLON_SECONDS_TZ: u32 = 33; // "-07:00:00"
pub(crate) const STD_FRAC_SECOND0: u32 = 34; // ".0", ".00", ...
pub(crate) const STD_FRAC_SECOND9: u32 = 35; // ".9", ".99", ...

const STD0X: [u32; 6] = [
    STD_ZERO_MONTH,
    STD_ZERO_DAY,
    STD_ZERO_HOUR12,
    STD_ZERO_MINUTE,
    STD_ZERO_SECOND,
    STD_YEAR,
];

fn std_frac_second(code: u32, n: usize, c: u8) -> u32 {
    let n = (n & 0xfff) as u32;
    if c == b'.' {
        code | (n << STD_ARG_SHIFT)
    } else {
        code | (n << STD_ARG_SHIFT) | (1 << STD_SEPARATOR_SHIFT)
    }
}

pub(crate) fn digits_len(std: u32) -> usize {
    ((std >> STD_ARG_SHIFT) & 0xfff) as usize
}

pub(crate) fn separator(std: u32) -> u8 {
    if (std >> STD_SEPARATOR_SHIFT) == 0 {
        b'.'
    } else {
        b','
    }
}

fn starts_with_lower_case(s: &[u8]) -> bool {
    matches!(s.first(), Some(b'a'..=b'z'))
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `nextStdChunk`: (prefix length, std code, suffix start). `std == 0` means no more
/// tokens: the whole layout is the prefix. Kept in the shape of Go's code.
#[allow(clippy::collapsible_match, clippy::collapsible_if)]
pub(crate) fn next_std_chunk(layout: &[u8]) -> (usize, u32, usize) {
    let n = layout.len();
    let at = |i: usize, s: &[u8]| n >= i + s.len() && &layout[i..i + s.len()] == s;
    let mut i = 0;
    while i < n {
        match layout[i] {
            b'J' => {
                if at(i, b"Jan") {
                    if at(i, b"January") {
                        return (i, STD_LONG_MONTH, i + 7);
                    }
                    if !starts_with_lower_case(&layout[i + 3..]) {
                        return (i, STD_MONTH, i + 3);
                    }
                }
            }
            b'M' => {
                if n >= i + 3 {
                    if at(i, b"Mon") {
                        if at(i, b"Monday") {
                            return (i, STD_LONG_WEEK_DAY, i + 6);
                        }
                        if !starts_with_lower_case(&layout[i + 3..]) {
                            return (i, STD_WEEK_DAY, i + 3);
                        }
                    }
                    if at(i, b"MST") {
                        return (i, STD_TZ, i + 3);
                    }
                }
            }
            b'0' => {
                if n >= i + 2 && (b'1'..=b'6').contains(&layout[i + 1]) {
                    return (i, STD0X[usize::from(layout[i + 1] - b'1')], i + 2);
                }
                if n >= i + 3 && layout[i + 1] == b'0' && layout[i + 2] == b'2' {
                    return (i, STD_ZERO_YEAR_DAY, i + 3);
                }
            }
            b'1' => {
                if n >= i + 2 && layout[i + 1] == b'5' {
                    return (i, STD_HOUR, i + 2);
                }
                return (i, STD_NUM_MONTH, i + 1);
            }
            b'2' => {
                if at(i, b"2006") {
                    return (i, STD_LONG_YEAR, i + 4);
                }
                return (i, STD_DAY, i + 1);
            }
            b'_' => {
                if n >= i + 2 && layout[i + 1] == b'2' {
                    // _2006 is really a literal _, followed by stdLongYear
                    if n >= i + 5 && &layout[i + 1..i + 5] == b"2006" {
                        return (i + 1, STD_LONG_YEAR, i + 5);
                    }
                    return (i, STD_UNDER_DAY, i + 2);
                }
                if n >= i + 3 && layout[i + 1] == b'_' && layout[i + 2] == b'2' {
                    return (i, STD_UNDER_YEAR_DAY, i + 3);
                }
            }
            b'3' => return (i, STD_HOUR12, i + 1),
            b'4' => return (i, STD_MINUTE, i + 1),
            b'5' => return (i, STD_SECOND, i + 1),
            b'P' => {
                if n >= i + 2 && layout[i + 1] == b'M' {
                    return (i, STD_PM, i + 2);
                }
            }
            b'p' => {
                if n >= i + 2 && layout[i + 1] == b'm' {
                    return (i, STD_LOWER_PM, i + 2);
                }
            }
            b'-' => {
                if at(i, b"-070000") {
                    return (i, STD_NUM_SECONDS_TZ, i + 7);
                }
                if at(i, b"-07:00:00") {
                    return (i, STD_NUM_COLON_SECONDS_TZ, i + 9);
                }
                if at(i, b"-0700") {
                    return (i, STD_NUM_TZ, i + 5);
                }
                if at(i, b"-07:00") {
                    return (i, STD_NUM_COLON_TZ, i + 6);
                }
                if at(i, b"-07") {
                    return (i, STD_NUM_SHORT_TZ, i + 3);
                }
            }
            b'Z' => {
                if at(i, b"Z070000") {
                    return (i, STD_ISO8601_SECONDS_TZ, i + 7);
                }
                if at(i, b"Z07:00:00") {
                    return (i, STD_ISO8601_COLON_SECONDS_TZ, i + 9);
                }
                if at(i, b"Z0700") {
                    return (i, STD_ISO8601_TZ, i + 5);
                }
                if at(i, b"Z07:00") {
                    return (i, STD_ISO8601_COLON_TZ, i + 6);
                }
                if at(i, b"Z07") {
                    return (i, STD_ISO8601_SHORT_TZ, i + 3);
                }
            }
            c @ (b'.' | b',') => {
                if i + 1 < n && (layout[i + 1] == b'0' || layout[i + 1] == b'9') {
                    let ch = layout[i + 1];
                    let mut j = i + 1;
                    while j < n && layout[j] == ch {
                        j += 1;
                    }
                    // String of digits must end here - only fractional second is all digits.
                    if !is_digit(layout, j) {
                        let code = if layout[i + 1] == b'9' {
                            STD_FRAC_SECOND9
                        } else {
                            STD_FRAC_SECOND0
                        };
                        return (i, std_frac_second(code, j - (i + 1), c), j);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    (n, 0, n)
}

/// One step of Go's layout loop: literal text, then a token (`std == 0`: none, end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Where the token text (`stdstr`) starts in the layout: the literal prefix runs from
    /// the previous chunk's `end` (or 0) to here.
    pub mid: usize,
    /// Where the token text ends.
    pub end: usize,
    pub std: u32,
}

/// A tokenized Go layout.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub text: Box<[u8]>,
    /// Every chunk, the last one always having `std == 0`.
    pub chunks: Vec<Chunk>,
}

impl Layout {
    pub(crate) fn new(layout: &str) -> Layout {
        Layout::from_bytes(layout.as_bytes())
    }

    pub(crate) fn from_bytes(layout: &[u8]) -> Layout {
        let text: Box<[u8]> = layout.into();
        let mut chunks = Vec::new();
        let mut pos = 0;
        loop {
            let (plen, std, suffix) = next_std_chunk(&text[pos..]);
            let chunk = Chunk {
                mid: pos + plen,
                end: pos + suffix,
                std,
            };
            chunks.push(chunk);
            if std == 0 {
                break;
            }
            pos += suffix;
        }
        Layout { text, chunks }
    }

    /// (literal prefix, token text) of chunk `i`.
    pub(crate) fn parts(&self, i: usize) -> (&[u8], &[u8]) {
        let start = if i == 0 { 0 } else { self.chunks[i - 1].end };
        let c = &self.chunks[i];
        (&self.text[start..c.mid], &self.text[c.mid..c.end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stds(l: &str) -> Vec<u32> {
        Layout::new(l)
            .chunks
            .iter()
            .map(|c| c.std & STD_MASK)
            .collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            stds("Mon Jan _2 15:04:05 MST 2006"),
            vec![
                STD_WEEK_DAY,
                STD_MONTH,
                STD_UNDER_DAY,
                STD_HOUR,
                STD_ZERO_MINUTE,
                STD_ZERO_SECOND,
                STD_TZ,
                STD_LONG_YEAR,
                0
            ]
        );
        assert_eq!(stds("Month"), vec![0]);
        assert_eq!(stds("Janx"), vec![0]);
        assert_eq!(stds("JanX"), vec![STD_MONTH, 0]);
        assert_eq!(stds("_2006"), vec![STD_LONG_YEAR, 0]);
        assert_eq!(Layout::new("_2006").parts(0), (&b"_"[..], &b"2006"[..]));
        assert_eq!(
            stds("__2 002"),
            vec![STD_UNDER_YEAR_DAY, STD_ZERO_YEAR_DAY, 0]
        );
        assert_eq!(stds(".000"), vec![STD_FRAC_SECOND0, 0]);
        assert_eq!(stds(".0001"), vec![STD_ZERO_MONTH, 0]);
        assert_eq!(
            stds("Z07:00:00 -07 Z0700"),
            vec![
                STD_ISO8601_COLON_SECONDS_TZ,
                STD_NUM_SHORT_TZ,
                STD_ISO8601_TZ,
                0
            ]
        );
        let l = Layout::new(",999");
        assert_eq!(separator(l.chunks[0].std), b',');
        assert_eq!(digits_len(l.chunks[0].std), 3);
        assert_eq!(
            stds("3 4 5 pm PM"),
            vec![STD_HOUR12, STD_MINUTE, STD_SECOND, STD_LOWER_PM, STD_PM, 0]
        );
    }
}
