//! Byte-string helpers with Go's semantics (Go strings are byte strings;
//! invalid UTF-8 decodes to U+FFFD one byte at a time).

use super::unicode as uni;

pub(super) const RUNE_ERROR: char = '\u{FFFD}';

/// utf8.DecodeRune: returns the rune and its width; (RuneError, 1) for an
/// invalid encoding, (RuneError, 0) for empty input.
pub(super) fn decode_rune(s: &[u8]) -> (char, usize) {
    let Some(&b0) = s.first() else {
        return (RUNE_ERROR, 0);
    };
    if b0 < 0x80 {
        return (b0 as char, 1);
    }
    let (len, min, init) = match b0 {
        0xC2..=0xDF => (2, 0x80, (b0 & 0x1F) as u32),
        0xE0..=0xEF => (3, 0x800, (b0 & 0x0F) as u32),
        0xF0..=0xF4 => (4, 0x10000, (b0 & 0x07) as u32),
        _ => return (RUNE_ERROR, 1),
    };
    if s.len() < len {
        return (RUNE_ERROR, 1);
    }
    let mut v = init;
    for &b in &s[1..len] {
        if b & 0xC0 != 0x80 {
            return (RUNE_ERROR, 1);
        }
        v = (v << 6) | (b & 0x3F) as u32;
    }
    if v < min || v > 0x10FFFF || (0xD800..=0xDFFF).contains(&v) {
        return (RUNE_ERROR, 1);
    }
    match char::from_u32(v) {
        Some(c) => (c, len),
        None => (RUNE_ERROR, 1),
    }
}

/// utf8.DecodeLastRune.
pub(super) fn decode_last_rune(s: &[u8]) -> (char, usize) {
    if s.is_empty() {
        return (RUNE_ERROR, 0);
    }
    let end = s.len();
    let lim = end.saturating_sub(4);
    let mut start = end - 1;
    while start > lim && (s[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    let (r, size) = decode_rune(&s[start..end]);
    if start + size != end {
        return (RUNE_ERROR, 1);
    }
    (r, size)
}

/// Iterates (byte offset, rune, width) like Go's `for i, r := range s`.
pub(super) struct Runes<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Runes<'a> {
    type Item = (usize, char, usize);
    fn next(&mut self) -> Option<Self::Item> {
        if self.i >= self.s.len() {
            return None;
        }
        let (r, w) = decode_rune(&self.s[self.i..]);
        let at = self.i;
        self.i += w.max(1);
        Some((at, r, w.max(1)))
    }
}

pub(super) fn runes(s: &[u8]) -> Runes<'_> {
    Runes { s, i: 0 }
}

pub(super) fn rune_count(s: &[u8]) -> usize {
    runes(s).count()
}

pub(super) fn push_rune(out: &mut Vec<u8>, c: char) {
    let mut b = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

/// Converts Go bytes to a Rust string the way Go's encoders do: every byte
/// of an invalid encoding becomes U+FFFD.
pub(super) fn to_string_lossy(s: &[u8]) -> String {
    match std::str::from_utf8(s) {
        Ok(v) => v.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(s.len() + 8);
            for (_, r, _) in runes(s) {
                out.push(r);
            }
            out
        }
    }
}

/// strings.Map with a rune mapping (invalid bytes become U+FFFD when
/// anything changes, as Go does).
pub(super) fn map_runes(s: &[u8], mut f: impl FnMut(char) -> char) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for (_, r, _) in runes(s) {
        push_rune(&mut out, f(r));
    }
    out
}

pub(super) fn to_upper(s: &[u8]) -> Vec<u8> {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    map_runes(s, uni::to_upper)
}

pub(super) fn to_lower(s: &[u8]) -> Vec<u8> {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    map_runes(s, uni::to_lower)
}

/// Byte-substring search (first occurrence), linear in the input
/// whatever the strings (memchr's two-way search), so two strings near
/// the size limit cannot stall a template.
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// strings.Count.
pub(super) fn count(s: &[u8], sep: &[u8]) -> usize {
    if sep.is_empty() {
        return rune_count(s) + 1;
    }
    let mut n = 0;
    let mut i = 0;
    while let Some(j) = find(&s[i..], sep) {
        n += 1;
        i += j + sep.len();
    }
    n
}

/// Size strings.Replace(s, old, new, n) would produce.
pub(super) fn replace_len(s: &[u8], old: &[u8], new: &[u8], n: i64) -> usize {
    let mut m = count(s, old);
    if n >= 0 && (n as u64) < m as u64 {
        m = n as usize;
    }
    let grow = new.len().saturating_sub(old.len());
    s.len().saturating_add(m.saturating_mul(grow))
}

/// strings.Replace.
pub(super) fn replace(s: &[u8], old: &[u8], new: &[u8], n: i64) -> Vec<u8> {
    if old == new || n == 0 {
        return s.to_vec();
    }
    let mut m = count(s, old);
    if m == 0 {
        return s.to_vec();
    }
    if n >= 0 && (n as u64) < m as u64 {
        m = n as usize;
    }
    let mut out = Vec::with_capacity(s.len() + m * new.len());
    let mut start = 0;
    for i in 0..m {
        let mut j = start;
        if old.is_empty() {
            if i > 0 {
                let (_, w) = decode_rune(&s[start..]);
                j += w;
            }
        } else {
            j += find(&s[start..], old).unwrap_or(0);
        }
        out.extend_from_slice(&s[start..j]);
        out.extend_from_slice(new);
        start = j + old.len();
    }
    out.extend_from_slice(&s[start.min(s.len())..]);
    out
}

/// strings.Split / SplitN (n < 0: all).
pub(super) fn split_n(s: &[u8], sep: &[u8], n: i64) -> Vec<Vec<u8>> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        // explode into runes
        let total = rune_count(s);
        let limit = if n < 0 || n as u64 > total as u64 {
            total
        } else {
            n as usize
        };
        let mut out = Vec::with_capacity(limit);
        let mut i = 0;
        while i < s.len() && out.len() + 1 < limit {
            let (_, w) = decode_rune(&s[i..]);
            let w = w.max(1);
            out.push(s[i..i + w].to_vec());
            i += w;
        }
        if i < s.len() {
            out.push(s[i..].to_vec());
        }
        return out;
    }
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        match find(&s[i..], sep) {
            Some(j) => {
                out.push(s[i..i + j].to_vec());
                i += j + sep.len();
            }
            None => break,
        }
    }
    out.push(s[i..].to_vec());
    out
}

fn make_cutset(cutset: &[u8]) -> impl Fn(char) -> bool + '_ {
    move |r: char| runes(cutset).any(|(_, c, _)| c == r)
}

/// strings.TrimLeft (cutset semantics).
pub(super) fn trim_left<'a>(s: &'a [u8], cutset: &[u8]) -> &'a [u8] {
    let f = make_cutset(cutset);
    trim_left_func(s, f)
}

pub(super) fn trim_right<'a>(s: &'a [u8], cutset: &[u8]) -> &'a [u8] {
    let f = make_cutset(cutset);
    trim_right_func(s, f)
}

pub(super) fn trim<'a>(s: &'a [u8], cutset: &[u8]) -> &'a [u8] {
    trim_right(trim_left(s, cutset), cutset)
}

pub(super) fn trim_left_func(s: &[u8], f: impl Fn(char) -> bool) -> &[u8] {
    let mut i = 0;
    while i < s.len() {
        let (r, w) = decode_rune(&s[i..]);
        if !f(r) {
            break;
        }
        i += w.max(1);
    }
    &s[i..]
}

pub(super) fn trim_right_func(s: &[u8], f: impl Fn(char) -> bool) -> &[u8] {
    let mut end = s.len();
    while end > 0 {
        let (r, w) = decode_last_rune(&s[..end]);
        if !f(r) {
            break;
        }
        end -= w.max(1);
    }
    &s[..end]
}

/// strings.TrimSpace.
pub(super) fn trim_space(s: &[u8]) -> &[u8] {
    trim_right_func(trim_left_func(s, uni::is_space), uni::is_space)
}

pub(super) fn trim_prefix<'a>(s: &'a [u8], p: &[u8]) -> &'a [u8] {
    s.strip_prefix(p).unwrap_or(s)
}

pub(super) fn trim_suffix<'a>(s: &'a [u8], p: &[u8]) -> &'a [u8] {
    s.strip_suffix(p).unwrap_or(s)
}

/// strings.Title (deprecated Go function, still what sprig's `title` uses).
pub(super) fn title(s: &[u8]) -> Vec<u8> {
    let is_sep = |r: char| -> bool {
        if r.is_ascii() {
            if r.is_ascii_alphanumeric() || r == '_' {
                return false;
            }
            return true;
        }
        if uni::is_letter(r) || uni::is_digit(r) {
            return false;
        }
        uni::is_space(r)
    };
    let mut prev = ' ';
    map_runes(s, |r| {
        let out = if is_sep(prev) { uni::to_title(r) } else { r };
        prev = r;
        out
    })
}
