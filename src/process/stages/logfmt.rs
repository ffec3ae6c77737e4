//! `logfmt`: parses the line (or a field) as logfmt (`level=info msg="hi"`)
//! and sets the mapped keys as fields (`lvl: level` sets the field `lvl`
//! from the key `level`; `level:` alone the field of the same name).
//!
//! The decoder is go-logfmt's (v0.6), written here by hand: no crate parses
//! exactly as it does, and its corners decide which fields a user gets.
//! Input is read in records, one per `\n`-line (a trailing `\r` cut), keys
//! from every record; a syntax error (`a="x`, `=x`, `a=b"c`) ends the
//! parsing, keeping the fields set before it, as Grafana does. A key alone
//! (`flag`) or without value (`a=`) gives an empty string. A line longer
//! than 65535 bytes is where Go's scanner stops (`bufio.ErrTooLong`): its
//! keys and any after it are not read.
//!
//! Where two mapping entries name the same key, Grafana keeps one of them
//! at random (a Go map); here the last in the configuration wins.

use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{EachEntry, Entry, Value};

/// Longest record Go's `bufio.Scanner` takes with its default buffer.
const MAX_RECORD: usize = 64 * 1024 - 1;

#[derive(Debug, Clone)]
pub struct Logfmt {
    /// logfmt key -> field name.
    keys: Vec<(String, String)>,
    source: Option<String>,
}

impl Logfmt {
    pub fn new(config: &Node) -> Result<Logfmt, String> {
        let mut f = Fields::new(config)?;
        let mapping = f.string_map("mapping")?.unwrap_or_default();
        let source = f.string("source")?;
        f.finish()?;
        if mapping.is_empty() {
            return Err("logfmt mapping is required".into());
        }
        if source.as_deref() == Some("") {
            return Err("empty source".into());
        }
        let mut keys: Vec<(String, String)> = Vec::new();
        for (field, key) in mapping {
            let key = key
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| field.clone());
            keys.retain(|(k, _)| *k != key);
            keys.push((key, field));
        }
        Ok(Logfmt { keys, source })
    }
}

impl EachEntry for Logfmt {
    const NAME: &'static str = "logfmt";

    fn apply(&self, entry: &mut Entry) {
        let input = match &self.source {
            None => std::mem::take(&mut entry.line),
            Some(source) => match entry.extracted.get_string(source) {
                Some(value) => value.into_owned(),
                None => return,
            },
        };
        let mut found = Vec::new();
        decode(&input, |key, value| {
            if let Some((_, field)) = self.keys.iter().find(|(k, _)| k.as_bytes() == key) {
                found.push((field.clone(), value));
            }
        });
        for (field, value) in found {
            entry.extracted.insert(field, Value::String(value));
        }
        if self.source.is_none() {
            entry.line = input;
        }
    }
}

/// Calls `each` for every key and value go-logfmt's decoder yields, in
/// order, until the end or the first syntax error.
pub fn decode(input: &str, mut each: impl FnMut(&[u8], String)) {
    let mut rest = input.as_bytes();
    while !rest.is_empty() {
        let (record, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if record.len() > MAX_RECORD {
            return;
        }
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if !decode_record(record, &mut each) {
            return;
        }
        rest = next;
    }
}

/// One record; false on a syntax error.
fn decode_record(line: &[u8], each: &mut impl FnMut(&[u8], String)) -> bool {
    let mut pos = 0;
    loop {
        // Garbage: anything up to a space is skipped.
        match line[pos..].iter().position(|&c| c > b' ') {
            Some(p) => pos += p,
            None => return true,
        }
        // The key.
        let start = pos;
        let mut multibyte = false;
        let mut end = line.len();
        let mut has_equal = false;
        for (p, &c) in line[pos..].iter().enumerate() {
            if c == b'=' {
                end = pos + p;
                has_equal = true;
                break;
            } else if c == b'"' {
                return false;
            } else if c <= b' ' {
                end = pos + p;
                break;
            } else if c >= 0x80 {
                multibyte = true;
            }
        }
        pos = end;
        let key = &line[start..end];
        // A key holding U+FFFD is "invalid" to go-logfmt.
        if multibyte && contains_replacement(key) {
            return false;
        }
        if !has_equal {
            each(key, String::new());
            continue;
        }
        if key.is_empty() {
            return false;
        }
        // `=`: the value.
        pos += 1;
        if pos >= line.len() || line[pos] <= b' ' {
            each(key, String::new());
            continue;
        }
        if line[pos] == b'"' {
            let start = pos;
            let mut has_esc = false;
            let mut esc = false;
            let mut close = None;
            for (p, &c) in line[pos + 1..].iter().enumerate() {
                if esc {
                    esc = false;
                } else if c == b'\\' {
                    has_esc = true;
                    esc = true;
                } else if c == b'"' {
                    close = Some(pos + 1 + p);
                    break;
                }
            }
            let Some(close) = close else {
                return false; // unterminated quoted value
            };
            pos = close + 1;
            let quoted = &line[start + 1..close];
            let value = if has_esc {
                match unquote(quoted) {
                    Some(v) => v,
                    None => return false, // invalid quoted value
                }
            } else {
                String::from_utf8_lossy(quoted).into_owned()
            };
            each(key, value);
            continue;
        }
        let start = pos;
        let mut end = line.len();
        for (p, &c) in line[pos..].iter().enumerate() {
            if c == b'=' || c == b'"' {
                return false;
            } else if c <= b' ' {
                end = pos + p;
                break;
            }
        }
        pos = end;
        each(key, String::from_utf8_lossy(&line[start..end]).into_owned());
    }
}

fn contains_replacement(key: &[u8]) -> bool {
    key.windows(3).any(|w| w == "\u{FFFD}".as_bytes())
}

/// go-logfmt's `unquoteBytes` (encoding/json's rules) on the text between
/// the quotes: `None` where it would fail.
fn unquote(s: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let text = std::str::from_utf8(s).ok()?;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    '"' | '\\' | '/' | '\'' => out.push(e),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let first = hex4(&s[i + 2..])?;
                        for _ in 0..4 {
                            chars.next();
                        }
                        let mut rune = first;
                        if (0xD800..0xE000).contains(&first) {
                            rune = 0xFFFD;
                            let after = i + 6;
                            if s.get(after) == Some(&b'\\') && s.get(after + 1) == Some(&b'u') {
                                if let Some(second) = hex4(&s[after + 2..]) {
                                    if (0xD800..0xDC00).contains(&first)
                                        && (0xDC00..0xE000).contains(&second)
                                    {
                                        rune =
                                            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                                        for _ in 0..6 {
                                            chars.next();
                                        }
                                    }
                                }
                            }
                        }
                        out.push(char::from_u32(rune).unwrap_or('\u{FFFD}'));
                    }
                    _ => return None,
                }
            }
            '"' => return None,
            c if (c as u32) < 0x20 => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Four hex digits at the start of `s`.
fn hex4(s: &[u8]) -> Option<u32> {
    let digits = s.get(..4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{label, refused};
    use super::super::run_once as run;
    use super::decode;

    fn pairs(input: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        decode(input, |k, v| {
            out.push((String::from_utf8_lossy(k).into_owned(), v))
        });
        out
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decodes_as_go_logfmt() {
        assert_eq!(
            pairs(r#"level=info msg="hi there" flag empty= q="" n=1.5"#),
            kv(&[
                ("level", "info"),
                ("msg", "hi there"),
                ("flag", ""),
                ("empty", ""),
                ("q", ""),
                ("n", "1.5")
            ])
        );
        assert_eq!(
            pairs(r#"a="x \"y\" \u00e9\n" b=2"#),
            kv(&[("a", "x \"y\" é\n"), ("b", "2")])
        );
        assert_eq!(
            pairs("a=1\r\nb=2\nc=3"),
            kv(&[("a", "1"), ("b", "2"), ("c", "3")])
        );
        assert_eq!(
            pairs(r#"a="\ud83d\ude00" b="\ud83d!" c="\u00""#),
            kv(&[("a", "😀"), ("b", "\u{FFFD}!")])
        );
    }

    #[test]
    fn a_syntax_error_keeps_what_came_before() {
        assert_eq!(pairs(r#"a=1 b="unterminated c=3"#), kv(&[("a", "1")]));
        assert_eq!(pairs("a=1 =2 c=3"), kv(&[("a", "1")]));
        assert_eq!(pairs(r#"a=1 b=x"y c=3"#), kv(&[("a", "1")]));
        assert_eq!(pairs(r#"a=1 b"=2"#), kv(&[("a", "1")]));
        assert_eq!(pairs(r#"a=1 b="bad \x" c=3"#), kv(&[("a", "1")]));
        assert_eq!(pairs("a=1 b=c=d"), kv(&[("a", "1")]));
        assert_eq!(pairs("a=1\nb=\"x\nc=1"), kv(&[("a", "1")]));
        assert_eq!(pairs("a=1 k\u{FFFD}=2 c=3"), kv(&[("a", "1")]));
    }

    #[test]
    fn a_record_too_long_for_go_stops_the_parsing() {
        let long = format!("a=1\nb={}\nc=3", "x".repeat(65533));
        assert_eq!(pairs(&long).len(), 3, "65535 bytes: still read");
        let long = format!("a=1\nb={}\nc=3", "x".repeat(65534));
        assert_eq!(pairs(&long), kv(&[("a", "1")]));
    }

    #[test]
    fn any_input_decodes_without_panicking() {
        let alphabet = [
            'a', '=', '"', '\\', 'u', 'd', '8', '0', ' ', '\n', '\r', 'é', '\u{FFFD}', '\u{1}',
        ];
        let mut seed: u64 = 7;
        for _ in 0..20_000 {
            let len = (seed % 24) as usize;
            let text: String = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(seed >> 33) as usize % alphabet.len()]
                })
                .collect();
            decode(&text, |_, _| {});
        }
    }

    #[test]
    fn mapped_keys_become_fields() {
        let out = run(
            r#"[{"logfmt":{"mapping":{"lvl":"level","msg":"","absent":""}}},{"labels":{"lvl":""}}]"#,
            &[r#"level=info msg="hi there" other=1"#],
        );
        let e = &out[0];
        assert_eq!(label(e, "lvl"), Some("info"));
        assert_eq!(e.extracted.get_string("msg").as_deref(), Some("hi there"));
        assert!(!e.extracted.contains("other") && !e.extracted.contains("absent"));
        assert_eq!(e.line, r#"level=info msg="hi there" other=1"#);

        let out = run(
            r#"[{"regex":{"expression":"^(?P<rest>.*)$"}},{"logfmt":{"mapping":{"a":""},"source":"rest"}}]"#,
            &["a=1"],
        );
        assert_eq!(out[0].extracted.get_string("a").as_deref(), Some("1"));
        let out = run(
            r#"[{"logfmt":{"mapping":{"a":""},"source":"nope"}}]"#,
            &["a=1"],
        );
        assert!(!out[0].extracted.contains("a"));
    }

    #[test]
    fn configs() {
        assert_eq!(
            refused("[{logfmt: {}}]"),
            "invalid logfmt stage config: logfmt mapping is required"
        );
        assert!(refused("[{logfmt: }]").contains("logfmt mapping is required"));
        assert!(refused("[{logfmt: {mapping: {a: b}, source: ''}}]").contains("empty source"));
        assert!(refused("[{logfmt: {mapping: {a: 1}}}]").contains("expected a string"));
        assert!(refused("[{logfmt: {mapping: {a: b}, sauce: x}}]").contains("unknown setting"));
    }
}
