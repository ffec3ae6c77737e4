//! Go's `regexp`, as the stages and relabel rules compile it: patterns are
//! parsed by a port of Go's `regexp/syntax` ([`syntax`]: what Go accepts,
//! refuses and means, with its error messages) and written out for Rust's
//! `regex` crate, which keeps RE2's guarantee (matching linear in the
//! input, whatever the pattern) and is bounded in size, so a pattern from a
//! user's config cannot take the plugin's memory. [`Regex`] keeps Go's
//! capture numbering and names and Go's `Expand` and `ReplaceAllString`.

mod fold_table;
pub mod syntax;

/// A Go regular expression, compiled to Rust's `regex` with Go's meaning,
/// capture numbering and names.
#[derive(Debug, Clone)]
pub struct Regex {
    re: regex::Regex,
    /// For each Rust group (1-based, in order): Go's group number.
    go_index: Vec<usize>,
    /// Go's subexpNames: index = Go group number; "" for unnamed and for group 0.
    names: Vec<String>,
}

impl Regex {
    /// Go's `regexp.Compile(pattern)`.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        Regex::compile(pattern)
    }

    /// Prometheus' `NewRegexp`: `regexp.Compile("^(?s:" + s + ")$")`, for
    /// relabel rules.
    pub fn anchored(s: &str) -> Result<Regex, String> {
        Regex::compile(&format!("^(?s:{s})$"))
    }

    fn compile(pattern: &str) -> Result<Regex, String> {
        let pattern = pattern.to_string();
        let tree = syntax::parse(&pattern, syntax::PERL).map_err(|e| e.to_string())?;
        let mut out = String::with_capacity(pattern.len() * 2);
        let mut caps = Vec::new();
        syntax::to_rust_captures(&tree, &mut out, &mut caps);
        let re = syntax::compile_rust(&out)?;
        let n = syntax::num_captures(&tree);
        let mut names = vec![String::new(); n + 1];
        let mut go_index = Vec::with_capacity(caps.len());
        for (cap, name) in caps {
            if cap < names.len() {
                names[cap] = name;
            }
            go_index.push(cap);
        }
        Ok(Regex {
            re,
            go_index,
            names,
        })
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// FindStringSubmatchIndex from `start`: the spans of Go's groups, or None.
    pub fn captures_at(&self, s: &str, start: usize) -> Option<Vec<Option<(usize, usize)>>> {
        let caps = self.re.captures_at(s, start)?;
        let mut slots = vec![None; self.names.len()];
        slots[0] = caps.get(0).map(|m| (m.start(), m.end()));
        for (j, &go) in self.go_index.iter().enumerate() {
            if let (Some(m), true) = (caps.get(j + 1), go < slots.len()) {
                slots[go] = Some((m.start(), m.end()));
            }
        }
        Some(slots)
    }

    /// Go's Regexp.expand.
    pub fn expand(
        &self,
        dst: &mut String,
        mut template: &str,
        src: &str,
        m: &[Option<(usize, usize)>],
    ) {
        while let Some(i) = template.find('$') {
            dst.push_str(&template[..i]);
            template = &template[i + 1..];
            if let Some(rest) = template.strip_prefix('$') {
                dst.push('$');
                template = rest;
                continue;
            }
            let Some((name, num, rest)) = extract(template) else {
                dst.push('$');
                continue;
            };
            template = rest;
            if let Some(num) = num {
                if let Some(Some((a, b))) = m.get(num) {
                    dst.push_str(&src[*a..*b]);
                }
            } else {
                for (i, n) in self.names.iter().enumerate() {
                    if let (true, Some(Some((a, b)))) = (n == name, m.get(i)) {
                        dst.push_str(&src[*a..*b]);
                        break;
                    }
                }
            }
        }
        dst.push_str(template);
    }

    /// Go's ReplaceAllString.
    pub fn replace_all(&self, src: &str, repl: &str) -> String {
        let mut buf = String::new();
        let mut last_match_end = 0;
        let mut search_pos = 0;
        while search_pos <= src.len() {
            let Some(m) = self.captures_at(src, search_pos) else {
                break;
            };
            let (a0, a1) = m[0].expect("group 0 is set in a match");
            buf.push_str(&src[last_match_end..a0]);
            if a1 > last_match_end || a0 == 0 {
                self.expand(&mut buf, repl, src, &m);
            }
            last_match_end = a1;
            let width = src[search_pos..].chars().next().map_or(0, char::len_utf8);
            if search_pos + width > a1 {
                search_pos += width;
            } else if search_pos + 1 > a1 {
                search_pos += 1;
            } else {
                search_pos = a1;
            }
        }
        buf.push_str(&src[last_match_end..]);
        buf
    }
}

fn is_letter_or_digit(c: char) -> bool {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    let re = RE.get_or_init(|| regex::Regex::new(r"\A[\p{gc=L}\p{gc=Nd}]\z").expect("static"));
    re.is_match(c.encode_utf8(&mut [0; 4]))
}

/// Go's regexp `extract`: the name or number after a `$`, and the rest of the template.
fn extract(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let mut i = 0;
    for c in body.chars() {
        if !is_letter_or_digit(c) && c != '_' {
            break;
        }
        i += c.len_utf8();
    }
    if i == 0 {
        return None;
    }
    let name = &body[..i];
    if brace {
        if !body[i..].starts_with('}') {
            return None;
        }
        i += 1;
    }
    let mut num: Option<usize> = Some(0);
    for b in name.bytes() {
        match num {
            Some(n) if b.is_ascii_digit() && n < 100_000_000 => {
                num = Some(n * 10 + (b - b'0') as usize)
            }
            _ => {
                num = None;
                break;
            }
        }
    }
    if name.len() > 1 && name.starts_with('0') {
        num = None;
    }
    Some((name, num, &body[i..]))
}

/// Go's `regexp.Compile(pattern)` for matching only.
pub fn compile(pattern: &str) -> Result<regex::Regex, String> {
    syntax::compile_go(pattern.as_bytes())
}

impl Regex {
    /// Go's `SubexpNames`: index = Go group number, "" when unnamed.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Go's `FindStringSubmatch`: per Go group, its text ("" when it took
    /// no part in the match), or `None` without a match.
    pub fn find_submatch<'t>(&self, s: &'t str) -> Option<Vec<&'t str>> {
        let spans = self.captures_at(s, 0)?;
        Some(
            spans
                .iter()
                .map(|span| span.map_or("", |(a, b)| &s[a..b]))
                .collect(),
        )
    }

    /// Go's `FindAllStringSubmatchIndex(s, -1)`: the spans of Go's groups
    /// for each successive match (an empty match right after a match is
    /// skipped, as Go skips it).
    pub fn find_all_submatch_index(&self, s: &str) -> Vec<Vec<Option<(usize, usize)>>> {
        let mut all = Vec::new();
        let mut pos = 0;
        let mut prev_end = None;
        while pos <= s.len() {
            let Some(m) = self.captures_at(s, pos) else {
                break;
            };
            let (a, b) = m[0].expect("group 0 is set in a match");
            let mut accept = true;
            if b == pos {
                accept = prev_end != Some(a);
                pos += s[pos..].chars().next().map_or(1, char::len_utf8);
            } else {
                pos = b;
            }
            prev_end = Some(b);
            if accept {
                all.push(m);
            }
        }
        all
    }

    /// The matching engine, for plain matching and finding.
    pub fn rust(&self) -> &regex::Regex {
        &self.re
    }
}
