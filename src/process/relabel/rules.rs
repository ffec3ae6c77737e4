//! Prometheus relabelling (model/relabel/relabel.go as vendored in Loki v3.7.6), as
//! Grafana's Docker driver applies `loki-relabel-config` to a container's labels:
//! configs validated with `Validate(model.UTF8Validation)`, then `relabel.ProcessBuilder`
//! over a `labels.Builder` (setting an empty value deletes a label).
//!
//! Regexes are Go RE2 patterns anchored as Prometheus does (`^(?s:` + regex + `)$`, as one
//! string: a regex like `a)|(b` really does escape the anchors, as in Go), parsed by the
//! selector's port of Go's `regexp/syntax` and run by Rust's `regex`; `$1`, `${1}`,
//! `$name`, `${name}` and `$$` expand as Go's `Regexp.Expand`; `hashmod` is the last 8
//! bytes of the MD5 of the value, big-endian, modulo `modulus`.

use std::collections::BTreeMap;

use super::super::goregex::{self, Regex as GoRegex};

/// One relabel rule as written in YAML (keys `source_labels, separator, target_label,
/// regex, modulus, replacement, action`); `None` means the key is absent (Prometheus'
/// default applies: separator ";", regex "(.*)", replacement "$1", action "replace").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub target_label: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub replacement: Option<String>,
    pub action: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s.to_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// Go's strconv.Quote (for error messages).
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's unicode.ToLower / ToUpper (simple, one-to-one mappings) over a string.
fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => {
                    // Multi-character full mapping: the simple mapping is the titlecase
                    // partner for Greek iota-subscript letters, else the letter itself.
                    if ('\u{1F80}'..='\u{1FFF}').contains(&c) {
                        let mut f = goregex::syntax::simple_fold(c as u32);
                        while f != c as u32 {
                            if let Some(u) = char::from_u32(f) {
                                let mut l = u.to_lowercase();
                                if l.next() == Some(c) && l.next().is_none() {
                                    return u;
                                }
                            }
                            f = goregex::syntax::simple_fold(f);
                        }
                    }
                    c
                }
            }
        })
        .collect()
}

#[derive(Debug)]
struct Rule {
    source_labels: Vec<String>,
    separator: String,
    target_label: String,
    regex: GoRegex,
    regex_is_default: bool,
    modulus: u64,
    replacement: String,
    action: Action,
}

/// Validated, compiled relabel rules. Immutable; `Send + Sync`.
#[derive(Debug)]
pub struct Relabeler {
    rules: Vec<Rule>,
}

fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

impl Rule {
    /// Decoding defaults (Config.UnmarshalYAML) and Validate(model.UTF8Validation).
    fn new(c: RelabelConfig) -> Result<Rule, String> {
        let action = match &c.action {
            None => Action::Replace,
            Some(a) => {
                Action::parse(a).ok_or_else(|| format!("unknown relabel action {}", go_quote(a)))?
            }
        };
        for l in &c.source_labels {
            if !valid_label_name(l) {
                return Err(format!("{} is not a valid label name", go_quote(l)));
            }
        }
        let regex = GoRegex::anchored(c.regex.as_deref().unwrap_or("(.*)"))?;
        let r = Rule {
            separator: c.separator.clone().unwrap_or_else(|| ";".to_string()),
            target_label: c.target_label.clone().unwrap_or_default(),
            regex,
            regex_is_default: c.regex.is_none(),
            modulus: c.modulus.unwrap_or(0),
            replacement: c.replacement.clone().unwrap_or_else(|| "$1".to_string()),
            action,
            source_labels: c.source_labels,
        };
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), String> {
        use Action::*;
        let a = self.action;
        let an = a.name();
        let t = &self.target_label;
        if self.modulus == 0 && a == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && t.is_empty()
        {
            return Err(format!(
                "relabel configuration for {an} action requires 'target_label' value"
            ));
        }
        let has_var = t.contains('$');
        if a == Replace && !has_var && !valid_label_name(t) {
            return Err(format!(
                "{} is invalid 'target_label' for {an} action",
                go_quote(t)
            ));
        }
        if a == Replace && has_var && !valid_label_name(t) {
            return Err(format!(
                "{} is invalid 'target_label' for {an} action",
                go_quote(t)
            ));
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual) && !valid_label_name(t) {
            return Err(format!(
                "{} is invalid 'target_label' for {an} action",
                go_quote(t)
            ));
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual) && self.replacement != "$1" {
            return Err(format!("'replacement' can not be set for {an} action"));
        }
        if a == LabelMap && !valid_label_name(&self.replacement) {
            return Err(format!(
                "{} is invalid 'replacement' for {an} action",
                go_quote(&self.replacement)
            ));
        }
        if a == HashMod && !valid_label_name(t) {
            return Err(format!(
                "{} is invalid 'target_label' for {an} action",
                go_quote(t)
            ));
        }
        if matches!(a, DropEqual | KeepEqual)
            && (!self.regex_is_default
                || self.modulus != 0
                || self.separator != ";"
                || self.replacement != "$1")
        {
            return Err(format!(
                "{an} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !t.is_empty()
                || self.modulus != 0
                || self.separator != ";"
                || self.replacement != "$1")
        {
            return Err(format!(
                "{an} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

/// Prometheus' labels.Builder: the base labels, deletions, and additions in order.
struct Builder<'a> {
    base: &'a BTreeMap<String, String>,
    del: Vec<String>,
    add: Vec<(String, String)>,
}

impl<'a> Builder<'a> {
    fn get(&self, n: &str) -> &str {
        if let Some((_, v)) = self.add.iter().find(|(k, _)| k == n) {
            return v;
        }
        if self.del.iter().any(|d| d == n) {
            return "";
        }
        self.base.get(n).map_or("", |v| v.as_str())
    }

    fn del(&mut self, n: &str) {
        self.add.retain(|(k, _)| k != n);
        self.del.push(n.to_string());
    }

    fn set(&mut self, n: &str, v: String) {
        if v.is_empty() {
            return self.del(n);
        }
        if let Some(a) = self.add.iter_mut().find(|(k, _)| k == n) {
            a.1 = v;
            return;
        }
        self.add.push((n.to_string(), v));
    }

    /// Range: a snapshot of the current labels (base ones first, sorted, then additions in
    /// the order they were made).
    fn snapshot(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .base
            .iter()
            .filter(|(k, _)| !self.del.contains(k) && !self.add.iter().any(|(a, _)| a == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.extend(self.add.iter().cloned());
        out
    }

    fn labels(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .base
            .iter()
            .filter(|(k, _)| !self.del.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &self.add {
            out.insert(k.clone(), v.clone());
        }
        out
    }
}

fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, v) in [a0, b0, c0, d0].iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

impl Relabeler {
    /// Validates and compiles the rules as Prometheus does; the error is Prometheus' own
    /// message for the first bad rule.
    pub fn new(configs: Vec<RelabelConfig>) -> Result<Relabeler, String> {
        let rules = configs
            .into_iter()
            .map(Rule::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Relabeler { rules })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies the rules in order (relabel.ProcessBuilder). Returns false when a rule drops
    /// the target (then `labels` is left as it was); otherwise `labels` holds the result,
    /// which, as in Prometheus, never has empty values (an empty value is no label).
    pub fn apply(&self, labels: &mut BTreeMap<String, String>) -> bool {
        // labels.FromMap leaves out empty values: they are neither seen nor kept.
        let base: BTreeMap<String, String> = labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut lb = Builder {
            base: &base,
            del: Vec::new(),
            add: Vec::new(),
        };
        for rule in &self.rules {
            if !relabel(rule, &mut lb) {
                return false;
            }
        }
        *labels = lb.labels();
        true
    }
}

fn relabel(cfg: &Rule, lb: &mut Builder<'_>) -> bool {
    let val = cfg
        .source_labels
        .iter()
        .map(|l| lb.get(l))
        .collect::<Vec<_>>()
        .join(&cfg.separator);
    match cfg.action {
        Action::Drop => {
            if cfg.regex.is_match(&val) {
                return false;
            }
        }
        Action::Keep => {
            if !cfg.regex.is_match(&val) {
                return false;
            }
        }
        Action::DropEqual => {
            if lb.get(&cfg.target_label) == val {
                return false;
            }
        }
        Action::KeepEqual => {
            if lb.get(&cfg.target_label) != val {
                return false;
            }
        }
        Action::Replace => {
            if val.is_empty()
                && cfg.regex_is_default
                && !cfg.target_label.contains('$')
                && !cfg.replacement.contains('$')
            {
                lb.set(&cfg.target_label, cfg.replacement.clone());
                return true;
            }
            let Some(m) = cfg.regex.captures_at(&val, 0) else {
                return true;
            };
            let mut target = String::new();
            cfg.regex.expand(&mut target, &cfg.target_label, &val, &m);
            if !valid_label_name(&target) {
                return true;
            }
            let mut res = String::new();
            cfg.regex.expand(&mut res, &cfg.replacement, &val, &m);
            if res.is_empty() {
                lb.del(&target);
            } else {
                lb.set(&target, res);
            }
        }
        Action::Lowercase => lb.set(&cfg.target_label, go_lower(&val)),
        Action::Uppercase => lb.set(&cfg.target_label, go_upper(&val)),
        Action::HashMod => {
            let h = md5(val.as_bytes());
            let mut last = [0u8; 8];
            last.copy_from_slice(&h[8..]);
            let m = u64::from_be_bytes(last) % cfg.modulus;
            lb.set(&cfg.target_label, m.to_string());
        }
        Action::LabelMap => {
            for (name, value) in lb.snapshot() {
                if cfg.regex.is_match(&name) {
                    let res = cfg.regex.replace_all(&name, &cfg.replacement);
                    lb.set(&res, value);
                }
            }
        }
        Action::LabelDrop => {
            for (name, _) in lb.snapshot() {
                if cfg.regex.is_match(&name) {
                    lb.del(&name);
                }
            }
        }
        Action::LabelKeep => {
            for (name, _) in lb.snapshot() {
                if !cfg.regex.is_match(&name) {
                    lb.del(&name);
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(action: &str) -> RelabelConfig {
        RelabelConfig {
            action: Some(action.to_string()),
            ..Default::default()
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn md5_known() {
        let hex: String = md5(b"").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "d41d8cd98f00b204e9800998ecf8427e");
        let hex: String = md5(b"The quick brown fox jumps over the lazy dog")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "9e107d9d372bb6826bd81d3542a419d6");
    }

    #[test]
    fn replace_and_expand() {
        let r = Relabeler::new(vec![RelabelConfig {
            source_labels: vec!["a".into(), "b".into()],
            regex: Some("(?P<x>[^;]*);(.*)".into()),
            target_label: Some("t_${x}".into()),
            replacement: Some("$2-$x-$$-${1}x-$1x".into()),
            ..Default::default()
        }])
        .unwrap();
        let mut l = labels(&[("a", "1"), ("b", "2")]);
        assert!(r.apply(&mut l));
        assert_eq!(l.get("t_1").map(String::as_str), Some("2-1-$-1x-"));
    }

    #[test]
    fn validation() {
        assert_eq!(
            Relabeler::new(vec![cfg("hashmod")]).unwrap_err(),
            "relabel configuration for hashmod requires non-zero modulus"
        );
        assert_eq!(
            Relabeler::new(vec![cfg("replace")]).unwrap_err(),
            "relabel configuration for replace action requires 'target_label' value"
        );
        assert_eq!(
            Relabeler::new(vec![cfg("bogus")]).unwrap_err(),
            "unknown relabel action \"bogus\""
        );
        assert!(Relabeler::new(vec![cfg("LabelDrop")]).is_ok());
    }

    #[test]
    fn keep_drop() {
        let mut c = cfg("drop");
        c.source_labels = vec!["a".into()];
        c.regex = Some("x.*".into());
        let r = Relabeler::new(vec![c]).unwrap();
        assert!(!r.apply(&mut labels(&[("a", "xyz")])));
        assert!(r.apply(&mut labels(&[("a", "yz")])));
    }
}
