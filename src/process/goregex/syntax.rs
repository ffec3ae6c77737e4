//! Go's `regexp/syntax` parser, ported: it accepts and refuses exactly what Go's
//! `syntax.Parse` does (RE2 syntax, Perl flags) with Go's error messages, and builds the
//! same parse tree (literal merging, case folding, alternation factoring), which
//! Prometheus' matcher optimisations look at. The tree is then written out as a pattern
//! for Rust's `regex` crate with the same meaning (`to_rust`).
//!
//! Deliberate approximations (documented gaps): Unicode tables (`\p{Greek}`) are kept
//! symbolic (Rust's Unicode 16 tables are used; Go 1.27 has Unicode 17, and the four
//! scripts new in 17 match nothing here); the "expression too large" size bookkeeping
//! follows Go's formula but not its cache invalidation.

// Kept in the shape of Go's code, branch for branch, to ease comparison.
#![allow(
    clippy::collapsible_if,
    clippy::collapsible_match,
    clippy::manual_range_contains
)]

use super::fold_table::SIMPLE_FOLD;

pub const FOLD_CASE: u16 = 1;
pub const CLASS_NL: u16 = 4;
pub const DOT_NL: u16 = 8;
pub const ONE_LINE: u16 = 16;
pub const NON_GREEDY: u16 = 32;
pub const PERL_X: u16 = 64;
pub const UNICODE_GROUPS: u16 = 128;
pub const WAS_DOLLAR: u16 = 256;
/// Go's `syntax.Perl`.
pub const PERL: u16 = CLASS_NL | ONE_LINE | PERL_X | UNICODE_GROUPS;

const MAX_RUNE: u32 = 0x10FFFF;
const MIN_FOLD: u32 = 0x41;
const MAX_FOLD: u32 = 0x1e943;
const MAX_REPEAT: i32 = 1000;
/// Go refuses a pattern nested deeper than 1000; this port stops at 300,
/// so the recursive passes over the tree stay well within a thread's stack
/// (2 MiB on the runtime's threads). No real pattern comes near either.
const MAX_HEIGHT: usize = 300;
const MAX_SIZE: i64 = (128 << 20) / 40;
const MAX_RUNES: usize = (128 << 20) / 4;

/// Go's `syntax.Op`, in Go's order (the parser compares them).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Op {
    NoMatch = 1,
    EmptyMatch,
    Literal,
    CharClass,
    AnyCharNotNL,
    AnyChar,
    BeginLine,
    EndLine,
    BeginText,
    EndText,
    WordBoundary,
    NoWordBoundary,
    Capture,
    Star,
    Plus,
    Quest,
    Repeat,
    Concat,
    Alternate,
    LeftParen = 128,
    VerticalBar,
}

/// A Unicode table inside a character class, kept symbolic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UTable {
    /// What goes inside `\p{...}` for Rust's regex crate.
    pub prop: &'static str,
    pub negated: bool,
}

/// A node of Go's parse tree.
#[derive(Clone, Debug)]
pub struct Regexp {
    pub op: Op,
    pub flags: u16,
    pub sub: Vec<Regexp>,
    /// Literal: the runes; CharClass: pairs of inclusive ranges.
    pub runes: Vec<u32>,
    pub min: i32,
    pub max: i32,
    pub cap: usize,
    /// CharClass only: Unicode tables (then the class is `runes ∪ tables`, negated if
    /// `class_neg`, case-folded if `flags` has FOLD_CASE).
    pub tables: Vec<UTable>,
    pub class_neg: bool,
    /// Capture: the group's name ("" when unnamed).
    pub name: String,
    size: i64,
    height: usize,
}

impl Regexp {
    pub fn new(op: Op) -> Regexp {
        Regexp {
            op,
            flags: 0,
            sub: Vec::new(),
            runes: Vec::new(),
            min: 0,
            max: 0,
            cap: 0,
            tables: Vec::new(),
            class_neg: false,
            name: String::new(),
            size: -1,
            height: 0,
        }
    }

    /// Whether this class has symbolic Unicode tables (its rune set is not known here).
    pub fn has_tables(&self) -> bool {
        self.op == Op::CharClass && !self.tables.is_empty()
    }
}

/// A parse error, printed as Go prints `*syntax.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: &'static str,
    pub expr: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error parsing regexp: {}: `{}`", self.code, self.expr)
    }
}

const ERR_INVALID_CHAR_RANGE: &str = "invalid character class range";
const ERR_INVALID_ESCAPE: &str = "invalid escape sequence";
const ERR_INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const ERR_INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const ERR_INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const ERR_INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const ERR_INVALID_UTF8: &str = "invalid UTF-8";
const ERR_MISSING_BRACKET: &str = "missing closing ]";
const ERR_MISSING_PAREN: &str = "missing closing )";
const ERR_MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
const ERR_TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const ERR_UNEXPECTED_PAREN: &str = "unexpected )";
const ERR_NESTING_DEPTH: &str = "expression nests too deeply";
const ERR_LARGE: &str = "expression too large";

fn err(code: &'static str, expr: &str) -> Error {
    Error {
        code,
        expr: expr.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Case folding (Go's unicode.SimpleFold over Unicode's simple case folding orbits).

/// Go's `unicode.SimpleFold`: the next rune of `r`'s folding orbit.
pub fn simple_fold(r: u32) -> u32 {
    match SIMPLE_FOLD.binary_search_by_key(&r, |&(c, _)| c) {
        Ok(i) => SIMPLE_FOLD[i].1,
        Err(_) => r,
    }
}

/// Go's `minFoldRune`.
pub fn min_fold_rune(r: u32) -> u32 {
    if !(MIN_FOLD..=MAX_FOLD).contains(&r) {
        return r;
    }
    let mut m = r;
    let mut f = simple_fold(r);
    while f != r {
        m = m.min(f);
        f = simple_fold(f);
    }
    m
}

/// Whether two runes are equal under simple case folding (Go's EqualFold on one rune).
pub fn fold_eq(a: u32, b: u32) -> bool {
    if a == b {
        return true;
    }
    let mut f = simple_fold(a);
    while f != a {
        if f == b {
            return true;
        }
        f = simple_fold(f);
    }
    false
}

// ---------------------------------------------------------------------------------------
// Character class helpers (ports of Go's).

fn append_range(r: &mut Vec<u32>, lo: u32, hi: u32) {
    let n = r.len();
    for i in [2usize, 4] {
        if n >= i {
            let (rlo, rhi) = (r[n - i], r[n - i + 1]);
            if lo <= rhi.saturating_add(1) && rlo <= hi.saturating_add(1) {
                if lo < rlo {
                    r[n - i] = lo;
                }
                if hi > rhi {
                    r[n - i + 1] = hi;
                }
                return;
            }
        }
    }
    r.push(lo);
    r.push(hi);
}

fn append_folded_range(r: &mut Vec<u32>, mut lo: u32, mut hi: u32) {
    if lo <= MIN_FOLD && hi >= MAX_FOLD {
        return append_range(r, lo, hi);
    }
    if hi < MIN_FOLD || lo > MAX_FOLD {
        return append_range(r, lo, hi);
    }
    if lo < MIN_FOLD {
        append_range(r, lo, MIN_FOLD - 1);
        lo = MIN_FOLD;
    }
    if hi > MAX_FOLD {
        append_range(r, MAX_FOLD + 1, hi);
        hi = MAX_FOLD;
    }
    // Same result as Go's brute force: the range itself plus every orbit touching it.
    append_range(r, lo, hi);
    let start = SIMPLE_FOLD.partition_point(|&(c, _)| c < lo);
    for &(c, _) in &SIMPLE_FOLD[start..] {
        if c > hi {
            break;
        }
        let mut f = simple_fold(c);
        while f != c {
            append_range(r, f, f);
            f = simple_fold(f);
        }
    }
}

fn append_literal(r: &mut Vec<u32>, x: u32, flags: u16) {
    if flags & FOLD_CASE != 0 {
        append_folded_range(r, x, x)
    } else {
        append_range(r, x, x)
    }
}

fn append_class(r: &mut Vec<u32>, x: &[u32]) {
    for p in x.chunks(2) {
        append_range(r, p[0], p[1]);
    }
}

fn append_folded_class(r: &mut Vec<u32>, x: &[u32]) {
    for p in x.chunks(2) {
        append_folded_range(r, p[0], p[1]);
    }
}

fn append_negated_class(r: &mut Vec<u32>, x: &[u32]) {
    let mut next_lo = 0u32;
    for p in x.chunks(2) {
        if p[0] > next_lo {
            append_range(r, next_lo, p[0] - 1);
        }
        next_lo = p[1] + 1;
    }
    if next_lo <= MAX_RUNE {
        append_range(r, next_lo, MAX_RUNE);
    }
}

/// Sorts and merges ranges (Go's cleanClass).
pub fn clean_class(r: &mut Vec<u32>) {
    let mut pairs: Vec<(u32, u32)> = r.chunks(2).map(|p| (p[0], p[1])).collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    r.clear();
    for (lo, hi) in pairs {
        if let Some(last) = r.last_mut() {
            if lo <= last.saturating_add(1) {
                if hi > *last {
                    *last = hi;
                }
                continue;
            }
        }
        r.push(lo);
        r.push(hi);
    }
}

fn negate_class(r: &mut Vec<u32>) {
    let old = std::mem::take(r);
    append_negated_class(r, &old);
}

fn match_rune(re: &Regexp, r: u32) -> bool {
    match re.op {
        Op::Literal => re.runes.len() == 1 && re.runes[0] == r,
        Op::CharClass => re.runes.chunks(2).any(|p| p[0] <= r && r <= p[1]),
        Op::AnyCharNotNL => r != '\n' as u32,
        Op::AnyChar => true,
        _ => false,
    }
}

/// Go's isCharClass (classes with symbolic tables are left out of merging here).
fn is_char_class(re: &Regexp) -> bool {
    (re.op == Op::Literal && re.runes.len() == 1)
        || (re.op == Op::CharClass && re.tables.is_empty())
        || re.op == Op::AnyCharNotNL
        || re.op == Op::AnyChar
}

fn merge_char_class(dst: &mut Regexp, src: &Regexp) {
    match dst.op {
        Op::AnyChar => {}
        Op::AnyCharNotNL => {
            if match_rune(src, '\n' as u32) {
                dst.op = Op::AnyChar;
            }
        }
        Op::CharClass => {
            if src.op == Op::Literal {
                append_literal(&mut dst.runes, src.runes[0], src.flags);
            } else {
                append_class(&mut dst.runes, &src.runes);
            }
        }
        Op::Literal => {
            if src.runes[0] == dst.runes[0] && src.flags == dst.flags {
                return;
            }
            dst.op = Op::CharClass;
            let d0 = dst.runes[0];
            dst.runes.clear();
            append_literal(&mut dst.runes, d0, dst.flags);
            append_literal(&mut dst.runes, src.runes[0], src.flags);
        }
        _ => {}
    }
}

fn clean_alt(re: &mut Regexp) {
    if re.op == Op::CharClass && re.tables.is_empty() {
        clean_class(&mut re.runes);
        if re.runes == [0, MAX_RUNE] {
            re.runes.clear();
            re.op = Op::AnyChar;
        } else if re.runes == [0, 9, 11, MAX_RUNE] {
            re.runes.clear();
            re.op = Op::AnyCharNotNL;
        }
    }
}

/// Go's Regexp.Equal.
pub fn equal(x: &Regexp, y: &Regexp) -> bool {
    if x.op != y.op {
        return false;
    }
    match x.op {
        Op::EndText => x.flags & WAS_DOLLAR == y.flags & WAS_DOLLAR,
        Op::Literal => x.runes == y.runes && x.flags & FOLD_CASE == y.flags & FOLD_CASE,
        Op::CharClass => {
            x.runes == y.runes
                && x.tables == y.tables
                && x.class_neg == y.class_neg
                && (x.tables.is_empty() || x.flags & FOLD_CASE == y.flags & FOLD_CASE)
        }
        Op::Alternate | Op::Concat => {
            x.sub.len() == y.sub.len() && x.sub.iter().zip(&y.sub).all(|(a, b)| equal(a, b))
        }
        Op::Star | Op::Plus | Op::Quest => {
            x.flags & NON_GREEDY == y.flags & NON_GREEDY && equal(&x.sub[0], &y.sub[0])
        }
        Op::Repeat => {
            x.flags & NON_GREEDY == y.flags & NON_GREEDY
                && x.min == y.min
                && x.max == y.max
                && equal(&x.sub[0], &y.sub[0])
        }
        Op::Capture => x.cap == y.cap && x.name == y.name && equal(&x.sub[0], &y.sub[0]),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------
// Named classes.

const PERL_D: &[u32] = &[0x30, 0x39];
const PERL_S: &[u32] = &[0x9, 0xA, 0xC, 0xD, 0x20, 0x20];
const PERL_W: &[u32] = &[0x30, 0x39, 0x41, 0x5A, 0x5F, 0x5F, 0x61, 0x7A];

fn perl_group(c: u8) -> Option<(i32, &'static [u32])> {
    Some(match c {
        b'd' => (1, PERL_D),
        b'D' => (-1, PERL_D),
        b's' => (1, PERL_S),
        b'S' => (-1, PERL_S),
        b'w' => (1, PERL_W),
        b'W' => (-1, PERL_W),
        _ => return None,
    })
}

fn posix_group(name: &str) -> Option<(i32, &'static [u32])> {
    let (neg, base) = match name.strip_prefix("[:^") {
        Some(rest) => (true, rest),
        None => (false, name.strip_prefix("[:")?),
    };
    let class: &'static [u32] = match base {
        "alnum:]" => &[0x30, 0x39, 0x41, 0x5A, 0x61, 0x7A],
        "alpha:]" => &[0x41, 0x5A, 0x61, 0x7A],
        "ascii:]" => &[0x0, 0x7F],
        "blank:]" => &[0x9, 0x9, 0x20, 0x20],
        "cntrl:]" => &[0x0, 0x1F, 0x7F, 0x7F],
        "digit:]" => &[0x30, 0x39],
        "graph:]" => &[0x21, 0x7E],
        "lower:]" => &[0x61, 0x7A],
        "print:]" => &[0x20, 0x7E],
        "punct:]" => &[0x21, 0x2F, 0x3A, 0x40, 0x5B, 0x60, 0x7B, 0x7E],
        "space:]" => &[0x9, 0xD, 0x20, 0x20],
        "upper:]" => &[0x41, 0x5A],
        "word:]" => PERL_W,
        "xdigit:]" => &[0x30, 0x39, 0x41, 0x46, 0x61, 0x66],
        _ => return None,
    };
    Some((if neg { -1 } else { 1 }, class))
}

/// Go's canonicalName: drops `_`, `-` and spaces, first letter upper case, rest lower.
fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut first = true;
    for &c in name.as_bytes() {
        let c = match c {
            b'_' | b'-' | b' ' => continue,
            c if first => {
                first = false;
                c.to_ascii_uppercase()
            }
            c => c.to_ascii_lowercase(),
        };
        out.push(c as char);
    }
    // Non-ASCII bytes were pushed as Latin-1 chars; they never match a table name anyway.
    out
}

const CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Cn", "Co", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So",
    "Z", "Zl", "Zp", "Zs",
];

const CATEGORY_ALIASES: &[(&str, &str)] = &[
    ("Cased_Letter", "LC"),
    ("Close_Punctuation", "Pe"),
    ("Combining_Mark", "M"),
    ("Connector_Punctuation", "Pc"),
    ("Control", "Cc"),
    ("cntrl", "Cc"),
    ("Currency_Symbol", "Sc"),
    ("Dash_Punctuation", "Pd"),
    ("Decimal_Number", "Nd"),
    ("digit", "Nd"),
    ("Enclosing_Mark", "Me"),
    ("Final_Punctuation", "Pf"),
    ("Format", "Cf"),
    ("Initial_Punctuation", "Pi"),
    ("Letter", "L"),
    ("Letter_Number", "Nl"),
    ("Line_Separator", "Zl"),
    ("Lowercase_Letter", "Ll"),
    ("Mark", "M"),
    ("Math_Symbol", "Sm"),
    ("Modifier_Letter", "Lm"),
    ("Modifier_Symbol", "Sk"),
    ("Nonspacing_Mark", "Mn"),
    ("Number", "N"),
    ("Open_Punctuation", "Ps"),
    ("Other", "C"),
    ("Other_Letter", "Lo"),
    ("Other_Number", "No"),
    ("Other_Punctuation", "Po"),
    ("Other_Symbol", "So"),
    ("Paragraph_Separator", "Zp"),
    ("Private_Use", "Co"),
    ("Punctuation", "P"),
    ("punct", "P"),
    ("Separator", "Z"),
    ("Space_Separator", "Zs"),
    ("Spacing_Mark", "Mc"),
    ("Surrogate", "Cs"),
    ("Symbol", "S"),
    ("Titlecase_Letter", "Lt"),
    ("Unassigned", "Cn"),
    ("Uppercase_Letter", "Lu"),
];

/// Scripts Go 1.27 knows (Unicode 17). The last four are new in Unicode 17 and unknown to
/// Rust's tables (Unicode 16): they are accepted and match nothing here.
const SCRIPTS: &[&str] = &[
    "Adlam",
    "Ahom",
    "Anatolian_Hieroglyphs",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Bassa_Vah",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Canadian_Aboriginal",
    "Carian",
    "Caucasian_Albanian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cypro_Minoan",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dives_Akuru",
    "Dogra",
    "Duployan",
    "Egyptian_Hieroglyphs",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Garay",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gunjala_Gondi",
    "Gurmukhi",
    "Gurung_Khema",
    "Han",
    "Hangul",
    "Hanifi_Rohingya",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Imperial_Aramaic",
    "Inherited",
    "Inscriptional_Pahlavi",
    "Inscriptional_Parthian",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kayah_Li",
    "Kharoshthi",
    "Khitan_Small_Script",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Kirat_Rai",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Linear_A",
    "Linear_B",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Masaram_Gondi",
    "Medefaidrin",
    "Meetei_Mayek",
    "Mende_Kikakui",
    "Meroitic_Cursive",
    "Meroitic_Hieroglyphs",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nag_Mundari",
    "Nandinagari",
    "New_Tai_Lue",
    "Newa",
    "Nko",
    "Nushu",
    "Nyiakeng_Puachue_Hmong",
    "Ogham",
    "Ol_Chiki",
    "Ol_Onal",
    "Old_Hungarian",
    "Old_Italic",
    "Old_North_Arabian",
    "Old_Permic",
    "Old_Persian",
    "Old_Sogdian",
    "Old_South_Arabian",
    "Old_Turkic",
    "Old_Uyghur",
    "Oriya",
    "Osage",
    "Osmanya",
    "Pahawh_Hmong",
    "Palmyrene",
    "Pau_Cin_Hau",
    "Phags_Pa",
    "Phoenician",
    "Psalter_Pahlavi",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "SignWriting",
    "Sinhala",
    "Sogdian",
    "Sora_Sompeng",
    "Soyombo",
    "Sundanese",
    "Sunuwar",
    "Syloti_Nagri",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Tai_Le",
    "Tai_Tham",
    "Tai_Viet",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Todhri",
    "Toto",
    "Tulu_Tigalari",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Warang_Citi",
    "Yezidi",
    "Yi",
    "Zanabazar_Square",
    "Beria_Erfe",
    "Sidetic",
    "Tai_Yo",
    "Tolong_Siki",
];
const UNICODE17_ONLY: &[&str] = &["Beria_Erfe", "Sidetic", "Tai_Yo", "Tolong_Siki"];

/// What a `\p{name}` stands for.
enum Table {
    /// Known rune ranges (Any, ASCII, Cs, Unicode-17-only scripts).
    Ranges(&'static [u32], &'static [u32]),
    /// A Rust property, and whether Go's table is the complement (Assigned = not Cn).
    Prop(&'static str, bool),
}

static GC_PROPS: &[(&str, &str)] = &[
    ("C", "gc=C"),
    ("Cc", "gc=Cc"),
    ("Cf", "gc=Cf"),
    ("Cn", "gc=Cn"),
    ("Co", "gc=Co"),
    ("L", "gc=L"),
    ("LC", "gc=LC"),
    ("Ll", "gc=Ll"),
    ("Lm", "gc=Lm"),
    ("Lo", "gc=Lo"),
    ("Lt", "gc=Lt"),
    ("Lu", "gc=Lu"),
    ("M", "gc=M"),
    ("Mc", "gc=Mc"),
    ("Me", "gc=Me"),
    ("Mn", "gc=Mn"),
    ("N", "gc=N"),
    ("Nd", "gc=Nd"),
    ("Nl", "gc=Nl"),
    ("No", "gc=No"),
    ("P", "gc=P"),
    ("Pc", "gc=Pc"),
    ("Pd", "gc=Pd"),
    ("Pe", "gc=Pe"),
    ("Pf", "gc=Pf"),
    ("Pi", "gc=Pi"),
    ("Po", "gc=Po"),
    ("Ps", "gc=Ps"),
    ("S", "gc=S"),
    ("Sc", "gc=Sc"),
    ("Sk", "gc=Sk"),
    ("Sm", "gc=Sm"),
    ("So", "gc=So"),
    ("Z", "gc=Z"),
    ("Zl", "gc=Zl"),
    ("Zp", "gc=Zp"),
    ("Zs", "gc=Zs"),
];

fn category(code: &str) -> Option<Table> {
    if code == "Cs" {
        return Some(Table::Ranges(&[0xD800, 0xDFFF], &[0xD800, 0xDFFF]));
    }
    GC_PROPS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, p)| Table::Prop(p, false))
}

fn script_prop(name: &'static str) -> &'static str {
    // Leaked once per distinct script name; bounded by the table above.
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let mut m = CACHE
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    m.entry(name)
        .or_insert_with(|| Box::leak(format!("sc={name}").into_boxed_str()))
}

/// Go's unicodeTable: looks a name up as Go 1.27 does.
fn unicode_table(name: &str) -> Option<Table> {
    let name = canonical_name(name);
    match name.as_str() {
        "Any" => return Some(Table::Ranges(&[0, MAX_RUNE], &[0, MAX_RUNE])),
        "Assigned" => return Some(Table::Prop("gc=Cn", true)),
        "Ascii" => {
            return Some(Table::Ranges(
                &[0, 0x7F],
                &[0, 0x7F, 0x17F, 0x17F, 0x212A, 0x212A],
            ));
        }
        "Lc" => return category("LC"),
        _ => {}
    }
    if let Some(c) = CATEGORIES.iter().find(|c| **c == name).copied() {
        return category(c);
    }
    if name == "Cs" {
        return category("Cs");
    }
    for s in SCRIPTS {
        if canonical_name(s) == name {
            if UNICODE17_ONLY.contains(s) {
                return Some(Table::Ranges(&[], &[]));
            }
            return Some(Table::Prop(script_prop(s), false));
        }
    }
    for (alias, code) in CATEGORY_ALIASES {
        if canonical_name(alias) == name {
            return category(code);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// The parser.

struct Parser<'a> {
    flags: u16,
    stack: Vec<Regexp>,
    num_cap: usize,
    whole: &'a str,
    num_regexp: usize,
    num_runes: usize,
    repeats: i64,
    size_tracking: bool,
    height_tracking: bool,
}

/// The number of capture groups (Go's NumSubexp).
pub fn num_captures(re: &Regexp) -> usize {
    let own = usize::from(re.op == Op::Capture);
    own + re.sub.iter().map(num_captures).sum::<usize>()
}

/// Parses `s` as Go's `syntax.Parse(s, flags)` does.
pub fn parse(s: &str, flags: u16) -> Result<Regexp, Error> {
    let mut p = Parser {
        flags,
        stack: Vec::new(),
        num_cap: 0,
        whole: s,
        num_regexp: 0,
        num_runes: 0,
        repeats: 0,
        size_tracking: false,
        height_tracking: false,
    };
    match p.run(s) {
        Ok(re) => Ok(re),
        Err(PErr::Large) => Err(err(ERR_LARGE, s)),
        Err(PErr::Nesting) => Err(err(ERR_NESTING_DEPTH, s)),
        Err(PErr::E(e)) => Err(e),
    }
}

enum PErr {
    E(Error),
    Large,
    Nesting,
}

impl From<Error> for PErr {
    fn from(e: Error) -> PErr {
        PErr::E(e)
    }
}

type PResult<T> = Result<T, PErr>;

fn next_rune(s: &str, i: usize) -> (u32, usize) {
    match s[i..].chars().next() {
        Some(c) => (c as u32, i + c.len_utf8()),
        None => (0xFFFD, i),
    }
}

impl Parser<'_> {
    fn new_regexp(&mut self, op: Op) -> Regexp {
        self.num_regexp += 1;
        Regexp::new(op)
    }

    fn check_limits(&mut self, idx: usize) -> PResult<()> {
        if self.num_runes > MAX_RUNES {
            return Err(PErr::Large);
        }
        self.check_size(idx)?;
        self.check_height(idx)
    }

    fn check_size(&mut self, idx: usize) -> PResult<()> {
        if !self.size_tracking {
            if self.repeats == 0 {
                self.repeats = 1;
            }
            let re = &self.stack[idx];
            if re.op == Op::Repeat {
                let mut n = re.max;
                if n == -1 {
                    n = re.min;
                }
                if n <= 0 {
                    n = 1;
                }
                if n as i64 > MAX_SIZE / self.repeats {
                    self.repeats = MAX_SIZE;
                } else {
                    self.repeats *= n as i64;
                }
            }
            if (self.num_regexp as i64) < MAX_SIZE / self.repeats {
                return Ok(());
            }
            self.size_tracking = true;
            for i in 0..self.stack.len() {
                if calc_size(&mut self.stack[i], true) > MAX_SIZE {
                    return Err(PErr::Large);
                }
            }
        }
        if calc_size(&mut self.stack[idx], true) > MAX_SIZE {
            return Err(PErr::Large);
        }
        Ok(())
    }

    fn check_height(&mut self, idx: usize) -> PResult<()> {
        if self.num_regexp < MAX_HEIGHT {
            return Ok(());
        }
        if !self.height_tracking {
            self.height_tracking = true;
            for i in 0..self.stack.len() {
                if calc_height(&mut self.stack[i], true) > MAX_HEIGHT {
                    return Err(PErr::Nesting);
                }
            }
        }
        if calc_height(&mut self.stack[idx], true) > MAX_HEIGHT {
            return Err(PErr::Nesting);
        }
        Ok(())
    }

    fn check_limits_of(&mut self, re: &mut Regexp) -> PResult<()> {
        // check_limits for a node that is not on the stack.
        self.stack
            .push(std::mem::replace(re, Regexp::new(Op::EmptyMatch)));
        let idx = self.stack.len() - 1;
        let r = self.check_limits(idx);
        *re = self.stack.pop().expect("just pushed");
        r
    }

    fn push(&mut self, mut re: Regexp) -> PResult<()> {
        self.num_runes += re.runes.len();
        let simple_class = re.op == Op::CharClass && re.tables.is_empty();
        if simple_class && re.runes.len() == 2 && re.runes[0] == re.runes[1] {
            if self.maybe_concat(Some(re.runes[0]), self.flags & !FOLD_CASE) {
                return Ok(());
            }
            re.op = Op::Literal;
            re.runes.truncate(1);
            re.flags = self.flags & !FOLD_CASE;
        } else if simple_class
            && ((re.runes.len() == 4
                && re.runes[0] == re.runes[1]
                && re.runes[2] == re.runes[3]
                && simple_fold(re.runes[0]) == re.runes[2]
                && simple_fold(re.runes[2]) == re.runes[0])
                || (re.runes.len() == 2
                    && re.runes[0] + 1 == re.runes[1]
                    && simple_fold(re.runes[0]) == re.runes[1]
                    && simple_fold(re.runes[1]) == re.runes[0]))
        {
            if self.maybe_concat(Some(re.runes[0]), self.flags | FOLD_CASE) {
                return Ok(());
            }
            re.op = Op::Literal;
            re.runes.truncate(1);
            re.flags = self.flags | FOLD_CASE;
        } else {
            self.maybe_concat(None, 0);
        }
        self.stack.push(re);
        let idx = self.stack.len() - 1;
        self.check_limits(idx)
    }

    fn maybe_concat(&mut self, r: Option<u32>, flags: u16) -> bool {
        let n = self.stack.len();
        if n < 2 {
            return false;
        }
        {
            let (re2, re1) = (&self.stack[n - 2], &self.stack[n - 1]);
            if re1.op != Op::Literal
                || re2.op != Op::Literal
                || re1.flags & FOLD_CASE != re2.flags & FOLD_CASE
            {
                return false;
            }
        }
        let re1_runes = std::mem::take(&mut self.stack[n - 1].runes);
        self.stack[n - 2].runes.extend_from_slice(&re1_runes);
        self.stack[n - 2].size = -1;
        if let Some(r) = r {
            let re1 = &mut self.stack[n - 1];
            re1.runes = vec![r];
            re1.flags = flags;
            re1.size = -1;
            return true;
        }
        self.stack.pop();
        false
    }

    fn literal(&mut self, mut r: u32) -> PResult<()> {
        let mut re = self.new_regexp(Op::Literal);
        re.flags = self.flags;
        if self.flags & FOLD_CASE != 0 {
            r = min_fold_rune(r);
        }
        re.runes = vec![r];
        self.push(re)
    }

    fn op(&mut self, op: Op) -> PResult<()> {
        let mut re = self.new_regexp(op);
        re.flags = self.flags;
        self.push(re)
    }

    fn repeat(
        &mut self,
        op: Op,
        min: i32,
        max: i32,
        before: usize,
        mut after: usize,
        last_repeat: Option<usize>,
    ) -> PResult<usize> {
        let s = self.whole;
        let mut flags = self.flags;
        if self.flags & PERL_X != 0 {
            if after < s.len() && s.as_bytes()[after] == b'?' {
                after += 1;
                flags ^= NON_GREEDY;
            }
            if let Some(lr) = last_repeat {
                return Err(err(ERR_INVALID_REPEAT_OP, &s[lr..after]).into());
            }
        }
        let n = self.stack.len();
        if n == 0 || self.stack[n - 1].op >= Op::LeftParen {
            return Err(err(ERR_MISSING_REPEAT_ARGUMENT, &s[before..after]).into());
        }
        let sub = self.stack.pop().expect("n > 0");
        let mut re = self.new_regexp(op);
        re.min = min;
        re.max = max;
        re.flags = flags;
        re.sub = vec![sub];
        self.stack.push(re);
        self.check_limits(n - 1)?;
        if op == Op::Repeat
            && (min >= 2 || max >= 2)
            && !repeat_is_valid(&self.stack[n - 1], MAX_REPEAT)
        {
            return Err(err(ERR_INVALID_REPEAT_SIZE, &s[before..after]).into());
        }
        Ok(after)
    }

    fn concat(&mut self) -> PResult<()> {
        self.maybe_concat(None, 0);
        let mut i = self.stack.len();
        while i > 0 && self.stack[i - 1].op < Op::LeftParen {
            i -= 1;
        }
        let subs = self.stack.split_off(i);
        if subs.is_empty() {
            let re = self.new_regexp(Op::EmptyMatch);
            return self.push(re);
        }
        let re = self.collapse(subs, Op::Concat)?;
        self.push(re)
    }

    fn alternate(&mut self) -> PResult<()> {
        let mut i = self.stack.len();
        while i > 0 && self.stack[i - 1].op < Op::LeftParen {
            i -= 1;
        }
        let mut subs = self.stack.split_off(i);
        if let Some(last) = subs.last_mut() {
            clean_alt(last);
        }
        if subs.is_empty() {
            let re = self.new_regexp(Op::NoMatch);
            return self.push(re);
        }
        let re = self.collapse(subs, Op::Alternate)?;
        self.push(re)
    }

    fn collapse(&mut self, mut subs: Vec<Regexp>, op: Op) -> PResult<Regexp> {
        if subs.len() == 1 {
            return Ok(subs.pop().expect("one"));
        }
        let mut re = self.new_regexp(op);
        for sub in subs {
            if sub.op == op {
                re.sub.extend(sub.sub);
            } else {
                re.sub.push(sub);
            }
        }
        if op == Op::Alternate {
            let s = std::mem::take(&mut re.sub);
            re.sub = self.factor(s)?;
            if re.sub.len() == 1 {
                return Ok(re.sub.pop().expect("one"));
            }
        }
        Ok(re)
    }

    fn factor(&mut self, sub: Vec<Regexp>) -> PResult<Vec<Regexp>> {
        if sub.len() < 2 {
            return Ok(sub);
        }
        // Round 1: common literal prefixes.
        let mut sub: Vec<Option<Regexp>> = sub.into_iter().map(Some).collect();
        let mut out: Vec<Regexp> = Vec::with_capacity(sub.len());
        let mut str: Vec<u32> = Vec::new();
        let mut strflags = 0u16;
        let mut start = 0;
        for i in 0..=sub.len() {
            let mut istr: Vec<u32> = Vec::new();
            let mut iflags = 0u16;
            if i < sub.len() {
                let (r, f) = leading_string(sub[i].as_ref().expect("present"));
                istr = r.to_vec();
                iflags = f;
                if iflags == strflags {
                    let mut same = 0;
                    while same < str.len() && same < istr.len() && str[same] == istr[same] {
                        same += 1;
                    }
                    if same > 0 {
                        str.truncate(same);
                        continue;
                    }
                }
            }
            if i == start {
            } else if i == start + 1 {
                out.push(sub[start].take().expect("present"));
            } else {
                let mut prefix = self.new_regexp(Op::Literal);
                prefix.flags = strflags;
                prefix.runes = str.clone();
                let mut run = Vec::with_capacity(i - start);
                for slot in sub.iter_mut().take(i).skip(start) {
                    let mut r = remove_leading_string(slot.take().expect("present"), str.len());
                    self.check_limits_of(&mut r)?;
                    run.push(r);
                }
                let suffix = self.collapse(run, Op::Alternate)?;
                let mut re = self.new_regexp(Op::Concat);
                re.sub = vec![prefix, suffix];
                out.push(re);
            }
            start = i;
            str = istr;
            strflags = iflags;
        }

        // Round 2: common simple leading regexps (char classes or fixed repeats of them).
        let mut sub: Vec<Option<Regexp>> = out.into_iter().map(Some).collect();
        let mut out: Vec<Regexp> = Vec::with_capacity(sub.len());
        let mut start = 0;
        let mut first: Option<Regexp> = None;
        for i in 0..=sub.len() {
            let mut ifirst: Option<Regexp> = None;
            if i < sub.len() {
                ifirst = leading_regexp(sub[i].as_ref().expect("present")).cloned();
                if let (Some(f), Some(fi)) = (&first, &ifirst) {
                    if equal(f, fi)
                        && (is_char_class(f)
                            || (f.op == Op::Repeat && f.min == f.max && is_char_class(&f.sub[0])))
                    {
                        continue;
                    }
                }
            }
            if i == start {
            } else if i == start + 1 {
                out.push(sub[start].take().expect("present"));
            } else {
                let prefix = first.clone().expect("run has a first");
                let mut run = Vec::with_capacity(i - start);
                for slot in sub.iter_mut().take(i).skip(start) {
                    let mut r = remove_leading_regexp(slot.take().expect("present"));
                    self.check_limits_of(&mut r)?;
                    run.push(r);
                }
                let suffix = self.collapse(run, Op::Alternate)?;
                let mut re = self.new_regexp(Op::Concat);
                re.sub = vec![prefix, suffix];
                out.push(re);
            }
            start = i;
            first = ifirst;
        }

        // Round 3: runs of single literals / classes become one class.
        let mut sub: Vec<Option<Regexp>> = out.into_iter().map(Some).collect();
        let n = sub.len();
        let mut out: Vec<Regexp> = Vec::with_capacity(n);
        let mut start = 0;
        for i in 0..=n {
            if i < n && is_char_class(sub[i].as_ref().expect("present")) {
                continue;
            }
            if i == start {
            } else if i == start + 1 {
                out.push(sub[start].take().expect("present"));
            } else {
                let mut max = start;
                for j in start + 1..i {
                    let (a, b) = (sub[max].as_ref().expect("p"), sub[j].as_ref().expect("p"));
                    if a.op < b.op || (a.op == b.op && a.runes.len() < b.runes.len()) {
                        max = j;
                    }
                }
                sub.swap(start, max);
                let mut dst = sub[start].take().expect("present");
                for s in sub.iter().take(i).skip(start + 1) {
                    merge_char_class(&mut dst, s.as_ref().expect("present"));
                }
                clean_alt(&mut dst);
                dst.size = -1;
                out.push(dst);
            }
            if i < n {
                out.push(sub[i].take().expect("present"));
            }
            start = i + 1;
        }

        // Round 4: runs of empty matches become one.
        let res = out;
        // Go drops sub[i] when sub[i+1] is also an empty match.
        let mut final_out: Vec<Regexp> = Vec::with_capacity(res.len());
        let mut it = res.into_iter().peekable();
        while let Some(re) = it.next() {
            if re.op == Op::EmptyMatch && it.peek().is_some_and(|n| n.op == Op::EmptyMatch) {
                continue;
            }
            final_out.push(re);
        }
        Ok(final_out)
    }

    fn swap_vertical_bar(&mut self) -> bool {
        let n = self.stack.len();
        if n >= 3
            && self.stack[n - 2].op == Op::VerticalBar
            && is_char_class(&self.stack[n - 1])
            && is_char_class(&self.stack[n - 3])
        {
            let mut re1 = self.stack.pop().expect("n >= 3");
            if re1.op > self.stack[n - 3].op {
                std::mem::swap(&mut re1, &mut self.stack[n - 3]);
            }
            merge_char_class(&mut self.stack[n - 3], &re1);
            self.stack[n - 3].size = -1;
            return true;
        }
        if n >= 2 && self.stack[n - 2].op == Op::VerticalBar {
            if n >= 3 {
                clean_alt(&mut self.stack[n - 3]);
            }
            self.stack.swap(n - 2, n - 1);
            return true;
        }
        false
    }

    fn parse_vertical_bar(&mut self) -> PResult<()> {
        self.concat()?;
        if !self.swap_vertical_bar() {
            self.op(Op::VerticalBar)?;
        }
        Ok(())
    }

    fn parse_right_paren(&mut self) -> PResult<()> {
        self.concat()?;
        if self.swap_vertical_bar() {
            self.stack.pop();
        }
        self.alternate()?;
        let n = self.stack.len();
        if n < 2 {
            return Err(err(ERR_UNEXPECTED_PAREN, self.whole).into());
        }
        let re1 = self.stack.pop().expect("n >= 2");
        let mut re2 = self.stack.pop().expect("n >= 2");
        if re2.op != Op::LeftParen {
            return Err(err(ERR_UNEXPECTED_PAREN, self.whole).into());
        }
        self.flags = re2.flags;
        if re2.cap == 0 {
            self.push(re1)
        } else {
            re2.op = Op::Capture;
            re2.sub = vec![re1];
            self.push(re2)
        }
    }

    fn run(&mut self, s: &str) -> PResult<Regexp> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut last_repeat: Option<usize> = None;
        while i < s.len() {
            let mut repeat: Option<usize> = None;
            match b[i] {
                b'(' => {
                    if self.flags & PERL_X != 0 && i + 1 < s.len() && b[i + 1] == b'?' {
                        i = self.parse_perl_flags(i)?;
                    } else {
                        self.num_cap += 1;
                        let mut re = self.new_regexp(Op::LeftParen);
                        re.flags = self.flags;
                        re.cap = self.num_cap;
                        self.push(re)?;
                        i += 1;
                    }
                }
                b'|' => {
                    self.parse_vertical_bar()?;
                    i += 1;
                }
                b')' => {
                    self.parse_right_paren()?;
                    i += 1;
                }
                b'^' => {
                    self.op(if self.flags & ONE_LINE != 0 {
                        Op::BeginText
                    } else {
                        Op::BeginLine
                    })?;
                    i += 1;
                }
                b'$' => {
                    if self.flags & ONE_LINE != 0 {
                        let mut re = self.new_regexp(Op::EndText);
                        re.flags = self.flags | WAS_DOLLAR;
                        self.push(re)?;
                    } else {
                        self.op(Op::EndLine)?;
                    }
                    i += 1;
                }
                b'.' => {
                    self.op(if self.flags & DOT_NL != 0 {
                        Op::AnyChar
                    } else {
                        Op::AnyCharNotNL
                    })?;
                    i += 1;
                }
                b'[' => i = self.parse_class(i)?,
                c @ (b'*' | b'+' | b'?') => {
                    let op = match c {
                        b'*' => Op::Star,
                        b'+' => Op::Plus,
                        _ => Op::Quest,
                    };
                    let after = self.repeat(op, 0, 0, i, i + 1, last_repeat)?;
                    repeat = Some(i);
                    i = after;
                }
                b'{' => match parse_repeat(s, i) {
                    None => {
                        self.literal('{' as u32)?;
                        i += 1;
                    }
                    Some((min, max, after)) => {
                        if min < 0
                            || min > MAX_REPEAT
                            || max > MAX_REPEAT
                            || (max >= 0 && min > max)
                        {
                            return Err(err(ERR_INVALID_REPEAT_SIZE, &s[i..after]).into());
                        }
                        let after = self.repeat(Op::Repeat, min, max, i, after, last_repeat)?;
                        repeat = Some(i);
                        i = after;
                    }
                },
                b'\\' => i = self.parse_backslash(i)?,
                _ => {
                    let (c, next) = next_rune(s, i);
                    self.literal(c)?;
                    i = next;
                }
            }
            last_repeat = repeat;
        }
        self.concat()?;
        if self.swap_vertical_bar() {
            self.stack.pop();
        }
        self.alternate()?;
        if self.stack.len() != 1 {
            return Err(err(ERR_MISSING_PAREN, s).into());
        }
        Ok(self.stack.pop().expect("one"))
    }

    fn parse_backslash(&mut self, i: usize) -> PResult<usize> {
        let s = self.whole;
        let b = s.as_bytes();
        if self.flags & PERL_X != 0 && i + 1 < s.len() {
            match b[i + 1] {
                b'A' => {
                    self.op(Op::BeginText)?;
                    return Ok(i + 2);
                }
                b'b' => {
                    self.op(Op::WordBoundary)?;
                    return Ok(i + 2);
                }
                b'B' => {
                    self.op(Op::NoWordBoundary)?;
                    return Ok(i + 2);
                }
                b'C' => return Err(err(ERR_INVALID_ESCAPE, &s[i..i + 2]).into()),
                b'Q' => {
                    let rest = &s[i + 2..];
                    let (lit, next) = match rest.find("\\E") {
                        Some(k) => (&rest[..k], i + 2 + k + 2),
                        None => (rest, s.len()),
                    };
                    for c in lit.chars() {
                        self.literal(c as u32)?;
                    }
                    return Ok(next);
                }
                b'z' => {
                    self.op(Op::EndText)?;
                    return Ok(i + 2);
                }
                _ => {}
            }
        }
        if i + 1 < s.len() && (b[i + 1] == b'p' || b[i + 1] == b'P') {
            let mut re = self.new_regexp(Op::CharClass);
            re.flags = self.flags;
            if let Some(rest) = self.parse_unicode_class(i, &mut re)? {
                self.push(re)?;
                return Ok(rest);
            }
        }
        if let Some((sign, class)) = self.perl_class_at(i) {
            let mut re = self.new_regexp(Op::CharClass);
            re.flags = self.flags;
            self.append_group(&mut re.runes, sign, class);
            self.push(re)?;
            return Ok(i + 2);
        }
        let (c, next) = parse_escape(s, i)?;
        self.literal(c)?;
        Ok(next)
    }

    fn perl_class_at(&self, i: usize) -> Option<(i32, &'static [u32])> {
        let b = self.whole.as_bytes();
        if self.flags & PERL_X == 0 || i + 1 >= b.len() || b[i] != b'\\' {
            return None;
        }
        perl_group(b[i + 1])
    }

    fn append_group(&self, r: &mut Vec<u32>, sign: i32, class: &[u32]) {
        if self.flags & FOLD_CASE == 0 {
            if sign < 0 {
                append_negated_class(r, class);
            } else {
                append_class(r, class);
            }
        } else {
            let mut tmp = Vec::new();
            append_folded_class(&mut tmp, class);
            clean_class(&mut tmp);
            if sign < 0 {
                append_negated_class(r, &tmp);
            } else {
                append_class(r, &tmp);
            }
        }
    }

    /// Go's parseUnicodeClass: `\pX`, `\p{Name}`, `\PX`, `\P{^Name}` at `i`. Adds the table
    /// to `re` (ranges, or a symbolic table) and returns the index after it.
    fn parse_unicode_class(&self, i: usize, re: &mut Regexp) -> PResult<Option<usize>> {
        let s = self.whole;
        let b = s.as_bytes();
        if self.flags & UNICODE_GROUPS == 0
            || i + 1 >= s.len()
            || b[i] != b'\\'
            || (b[i + 1] != b'p' && b[i + 1] != b'P')
        {
            return Ok(None);
        }
        let mut sign = if b[i + 1] == b'P' { -1 } else { 1 };
        let (c, t) = next_rune(s, i + 2);
        let (seq, mut name, rest) = if c != '{' as u32 {
            (&s[i..t], &s[i + 2..t], t)
        } else {
            match s[i..].find('}') {
                None => return Err(err(ERR_INVALID_CHAR_RANGE, &s[i..]).into()),
                Some(end) => (&s[i..i + end + 1], &s[i + 3..i + end], i + end + 1),
            }
        };
        if let Some(n) = name.strip_prefix('^') {
            sign = -sign;
            name = n;
        }
        let table = match unicode_table(name) {
            Some(t) => t,
            None => return Err(err(ERR_INVALID_CHAR_RANGE, seq).into()),
        };
        let fold = self.flags & FOLD_CASE != 0;
        match table {
            Table::Ranges(tab, fold_tab) => {
                let mut tmp = tab.to_vec();
                if fold {
                    tmp.extend_from_slice(fold_tab);
                    clean_class(&mut tmp);
                }
                if sign > 0 {
                    append_class(&mut re.runes, &tmp);
                } else {
                    append_negated_class(&mut re.runes, &tmp);
                }
            }
            Table::Prop(prop, inverted) => {
                if inverted {
                    sign = -sign;
                }
                re.tables.push(UTable {
                    prop,
                    negated: sign < 0,
                });
            }
        }
        Ok(Some(rest))
    }

    fn parse_class(&mut self, i: usize) -> PResult<usize> {
        let s = self.whole;
        let b = s.as_bytes();
        let mut t = i + 1;
        let mut re = self.new_regexp(Op::CharClass);
        re.flags = self.flags;
        let mut sign = 1;
        if t < s.len() && b[t] == b'^' {
            sign = -1;
            t += 1;
            if self.flags & CLASS_NL == 0 {
                re.runes.extend_from_slice(&['\n' as u32, '\n' as u32]);
            }
        }
        let mut first = true;
        while t >= s.len() || b[t] != b']' || first {
            if t < s.len()
                && b[t] == b'-'
                && self.flags & PERL_X == 0
                && !first
                && (t + 1 == s.len() || b[t + 1] != b']')
            {
                let (_, e) = next_rune(s, t + 1);
                return Err(err(ERR_INVALID_CHAR_RANGE, &s[t..e]).into());
            }
            first = false;
            if s.len() - t.min(s.len()) > 2 && b[t] == b'[' && b[t + 1] == b':' {
                if let Some(k) = s[t + 2..].find(":]") {
                    let end = t + 2 + k + 2;
                    let name = &s[t..end];
                    match posix_group(name) {
                        None => return Err(err(ERR_INVALID_CHAR_RANGE, name).into()),
                        Some((sign, class)) => {
                            let mut r = std::mem::take(&mut re.runes);
                            self.append_group(&mut r, sign, class);
                            re.runes = r;
                            t = end;
                            continue;
                        }
                    }
                }
            }
            if let Some(rest) = self.parse_unicode_class(t, &mut re)? {
                t = rest;
                continue;
            }
            if let Some((sign, class)) = self.perl_class_at(t) {
                let mut r = std::mem::take(&mut re.runes);
                self.append_group(&mut r, sign, class);
                re.runes = r;
                t += 2;
                continue;
            }
            let rng = t;
            let (lo, nt) = parse_class_char(s, t, &s[i..])?;
            t = nt;
            let mut hi = lo;
            if s.len() - t >= 2 && b[t] == b'-' && b[t + 1] != b']' {
                t += 1;
                let (h, nt) = parse_class_char(s, t, &s[i..])?;
                t = nt;
                hi = h;
                if hi < lo {
                    return Err(err(ERR_INVALID_CHAR_RANGE, &s[rng..t]).into());
                }
            }
            if self.flags & FOLD_CASE == 0 {
                append_range(&mut re.runes, lo, hi);
            } else {
                append_folded_range(&mut re.runes, lo, hi);
            }
        }
        t += 1;
        clean_class(&mut re.runes);
        if sign < 0 {
            if re.tables.is_empty() {
                negate_class(&mut re.runes);
            } else {
                re.class_neg = true;
            }
        }
        self.push(re)?;
        Ok(t)
    }

    fn parse_perl_flags(&mut self, i: usize) -> PResult<usize> {
        let s = self.whole;
        let t = &s[i..];
        let tb = t.as_bytes();
        let starts_with_p = tb.len() > 4 && tb[2] == b'P' && tb[3] == b'<';
        let starts_with_name = tb.len() > 3 && tb[2] == b'<';
        if starts_with_p || starts_with_name {
            let expr_start = if starts_with_name { 3 } else { 4 };
            let end = match t.find('>') {
                Some(e) => e,
                None => return Err(err(ERR_INVALID_NAMED_CAPTURE, t).into()),
            };
            let capture = &t[..end + 1];
            let name = &t[expr_start.min(end)..end];
            if name.is_empty() || !name.bytes().all(|c| c == b'_' || c.is_ascii_alphanumeric()) {
                return Err(err(ERR_INVALID_NAMED_CAPTURE, capture).into());
            }
            self.num_cap += 1;
            let mut re = self.new_regexp(Op::LeftParen);
            re.flags = self.flags;
            re.cap = self.num_cap;
            re.name = name.to_string();
            self.push(re)?;
            return Ok(i + end + 1);
        }
        let mut j = i + 2;
        let mut flags = self.flags;
        let mut sign = 1;
        let mut saw_flag = false;
        while j < s.len() {
            let (c, nj) = next_rune(s, j);
            j = nj;
            match char::from_u32(c).unwrap_or('\u{FFFD}') {
                'i' => {
                    flags |= FOLD_CASE;
                    saw_flag = true;
                }
                'm' => {
                    flags &= !ONE_LINE;
                    saw_flag = true;
                }
                's' => {
                    flags |= DOT_NL;
                    saw_flag = true;
                }
                'U' => {
                    flags |= NON_GREEDY;
                    saw_flag = true;
                }
                '-' => {
                    if sign < 0 {
                        break;
                    }
                    sign = -1;
                    flags = !flags;
                    saw_flag = false;
                }
                c @ (':' | ')') => {
                    if sign < 0 {
                        if !saw_flag {
                            break;
                        }
                        flags = !flags;
                    }
                    if c == ':' {
                        let mut re = self.new_regexp(Op::LeftParen);
                        re.flags = self.flags;
                        self.push(re)?;
                    }
                    self.flags = flags;
                    return Ok(j);
                }
                _ => break,
            }
        }
        Err(err(ERR_INVALID_PERL_OP, &s[i..j]).into())
    }
}

fn leading_string(re: &Regexp) -> (&[u32], u16) {
    let re = if re.op == Op::Concat && !re.sub.is_empty() {
        &re.sub[0]
    } else {
        re
    };
    if re.op != Op::Literal {
        return (&[], 0);
    }
    (&re.runes, re.flags & FOLD_CASE)
}

fn remove_leading_string(mut re: Regexp, n: usize) -> Regexp {
    re.size = -1;
    re.height = 0;
    if re.op == Op::Concat && !re.sub.is_empty() {
        let s0 = std::mem::replace(&mut re.sub[0], Regexp::new(Op::EmptyMatch));
        re.sub[0] = remove_leading_string(s0, n);
        if re.sub[0].op == Op::EmptyMatch {
            match re.sub.len() {
                0 | 1 => {
                    re.op = Op::EmptyMatch;
                    re.sub.clear();
                }
                2 => return re.sub.pop().expect("two"),
                _ => {
                    re.sub.remove(0);
                }
            }
        }
        return re;
    }
    if re.op == Op::Literal {
        re.runes.drain(..n.min(re.runes.len()));
        if re.runes.is_empty() {
            re.op = Op::EmptyMatch;
        }
    }
    re
}

fn leading_regexp(re: &Regexp) -> Option<&Regexp> {
    if re.op == Op::EmptyMatch {
        return None;
    }
    if re.op == Op::Concat && !re.sub.is_empty() {
        let sub = &re.sub[0];
        if sub.op == Op::EmptyMatch {
            return None;
        }
        return Some(sub);
    }
    Some(re)
}

fn remove_leading_regexp(mut re: Regexp) -> Regexp {
    if re.op == Op::Concat && !re.sub.is_empty() {
        re.size = -1;
        re.height = 0;
        re.sub.remove(0);
        match re.sub.len() {
            0 => {
                re.op = Op::EmptyMatch;
                re.sub.clear();
            }
            1 => return re.sub.pop().expect("one"),
            _ => {}
        }
        return re;
    }
    Regexp::new(Op::EmptyMatch)
}

fn calc_size(re: &mut Regexp, force: bool) -> i64 {
    if !force && re.size >= 0 {
        return re.size;
    }
    let size: i64 = match re.op {
        Op::Literal => re.runes.len() as i64,
        Op::Capture | Op::Star => 2 + calc_size(&mut re.sub[0], false),
        Op::Plus | Op::Quest => 1 + calc_size(&mut re.sub[0], false),
        Op::Concat => re.sub.iter_mut().map(|s| calc_size(s, false)).sum(),
        Op::Alternate => {
            let n = re.sub.len() as i64;
            let s: i64 = re.sub.iter_mut().map(|s| calc_size(s, false)).sum();
            s + if n > 1 { n - 1 } else { 0 }
        }
        Op::Repeat => {
            let sub = calc_size(&mut re.sub[0], false);
            if re.max == -1 {
                if re.min == 0 {
                    2 + sub
                } else {
                    1 + re.min as i64 * sub
                }
            } else {
                re.max as i64 * sub + (re.max - re.min) as i64
            }
        }
        _ => 0,
    };
    let size = size.max(1);
    re.size = size;
    size
}

fn calc_height(re: &mut Regexp, force: bool) -> usize {
    if !force && re.height > 0 {
        return re.height;
    }
    let mut h = 1;
    for sub in re.sub.iter_mut() {
        let hs = calc_height(sub, false);
        if h < 1 + hs {
            h = 1 + hs;
        }
    }
    re.height = h;
    h
}

fn repeat_is_valid(re: &Regexp, mut n: i32) -> bool {
    if re.op == Op::Repeat {
        let mut m = re.max;
        if m == 0 {
            return true;
        }
        if m < 0 {
            m = re.min;
        }
        if m > n {
            return false;
        }
        if m > 0 {
            n /= m;
        }
    }
    re.sub.iter().all(|s| repeat_is_valid(s, n))
}

/// Go's parseRepeat on `s[i..]` (which starts with `{`): `Some((min, max, after))`, with
/// `min == -1` when a number is too big; `None` when `{` is a literal.
fn parse_repeat(s: &str, i: usize) -> Option<(i32, i32, usize)> {
    let b = s.as_bytes();
    let mut j = i + 1;
    let (mut min, nj) = parse_int(b, j)?;
    j = nj;
    if j >= b.len() {
        return None;
    }
    let max;
    if b[j] != b',' {
        max = min;
    } else {
        j += 1;
        if j >= b.len() {
            return None;
        }
        if b[j] == b'}' {
            max = -1;
        } else {
            let (m, nj) = parse_int(b, j)?;
            j = nj;
            max = m;
            if max < 0 {
                min = -1;
            }
        }
    }
    if j >= b.len() || b[j] != b'}' {
        return None;
    }
    Some((min, max, j + 1))
}

fn parse_int(b: &[u8], i: usize) -> Option<(i32, usize)> {
    if i >= b.len() || !b[i].is_ascii_digit() {
        return None;
    }
    if i + 1 < b.len() && b[i] == b'0' && b[i + 1].is_ascii_digit() {
        return None;
    }
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    let mut n: i32 = 0;
    for &d in &b[i..j] {
        if n >= 100_000_000 {
            n = -1;
            break;
        }
        n = n * 10 + (d - b'0') as i32;
    }
    Some((n, j))
}

fn unhex(c: u32) -> Option<u32> {
    char::from_u32(c).and_then(|c| c.to_digit(16))
}

/// Go's parseEscape at `s[i..]` (which starts with a backslash).
fn parse_escape(s: &str, i: usize) -> Result<(u32, usize), Error> {
    let b = s.as_bytes();
    let t = i + 1;
    if t >= s.len() {
        return Err(err(ERR_TRAILING_BACKSLASH, ""));
    }
    let (c, mut t) = next_rune(s, t);
    let bad = |t: usize| Err(err(ERR_INVALID_ESCAPE, &s[i..t]));
    match c {
        0x31..=0x37 if !(t < s.len() && (b'0'..=b'7').contains(&b[t])) => bad(t),
        0x30..=0x37 => {
            let mut r = c - 0x30;
            for _ in 1..3 {
                if t >= s.len() || !(b'0'..=b'7').contains(&b[t]) {
                    break;
                }
                r = r * 8 + (b[t] - b'0') as u32;
                t += 1;
            }
            Ok((r, t))
        }
        0x78 => {
            // 'x'
            if t >= s.len() {
                return bad(t);
            }
            let (c, nt) = next_rune(s, t);
            t = nt;
            if c == '{' as u32 {
                let mut nhex = 0;
                let mut r: u32 = 0;
                loop {
                    if t >= s.len() {
                        return bad(t);
                    }
                    let (c, nt) = next_rune(s, t);
                    t = nt;
                    if c == '}' as u32 {
                        break;
                    }
                    let v = match unhex(c) {
                        Some(v) => v,
                        None => return bad(t),
                    };
                    r = r * 16 + v;
                    if r > MAX_RUNE {
                        return bad(t);
                    }
                    nhex += 1;
                }
                if nhex == 0 {
                    return bad(t);
                }
                return Ok((r, t));
            }
            let x = unhex(c);
            let (c2, nt) = next_rune(s, t);
            t = nt;
            match (x, unhex(c2)) {
                (Some(x), Some(y)) => Ok((x * 16 + y, t)),
                _ => bad(t),
            }
        }
        0x61 => Ok((7, t)),
        0x66 => Ok((12, t)),
        0x6E => Ok((10, t)),
        0x72 => Ok((13, t)),
        0x74 => Ok((9, t)),
        0x76 => Ok((11, t)),
        c if c < 0x80 && !(c as u8).is_ascii_alphanumeric() => Ok((c, t)),
        _ => bad(t),
    }
}

fn parse_class_char(s: &str, t: usize, whole_class: &str) -> Result<(u32, usize), Error> {
    if t >= s.len() {
        return Err(err(ERR_MISSING_BRACKET, whole_class));
    }
    if s.as_bytes()[t] == b'\\' {
        return parse_escape(s, t);
    }
    Ok(next_rune(s, t))
}

/// Checks bytes as Go's parser does before parsing: where `checkUTF8` would fail, the
/// error Go reports for a pattern with invalid UTF-8 (the rest of the pattern from there).
pub fn invalid_utf8_error(bytes: &[u8]) -> Error {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    };
    Error {
        code: ERR_INVALID_UTF8,
        expr: String::from_utf8_lossy(&bytes[valid..]).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Translation to Rust's regex syntax.

fn push_rune(out: &mut String, r: u32) {
    use std::fmt::Write;
    match char::from_u32(r) {
        Some(c) if c.is_ascii_alphanumeric() => out.push(c),
        Some(c) if !c.is_ascii() && !c.is_control() && !c.is_whitespace() => out.push(c),
        _ => {
            let _ = write!(out, "\\x{{{r:X}}}");
        }
    }
}

/// Rust class items for ranges, without the surrogates Rust cannot name.
fn push_ranges(out: &mut String, runes: &[u32]) {
    for p in runes.chunks(2) {
        let (lo, hi) = (p[0], p[1]);
        let parts: [(u32, u32); 2] = [(lo, hi.min(0xD7FF)), (lo.max(0xE000), hi)];
        for (a, b) in parts {
            if a > b {
                continue;
            }
            push_rune(out, a);
            if b > a {
                out.push('-');
                push_rune(out, b);
            }
        }
    }
}

const NEVER: &str = "[^\\x{0}-\\x{10FFFF}]";

/// Writes `re` as an equivalent pattern for Rust's regex crate (matching is all that
/// counts: captures become plain groups, greediness is kept).
pub fn to_rust(re: &Regexp, out: &mut String) {
    emit(re, out, &mut None);
}

/// Like `to_rust`, but keeps capture groups: `caps` receives, for each Rust group in
/// order, Go's group number and name.
pub fn to_rust_captures(re: &Regexp, out: &mut String, caps: &mut Vec<(usize, String)>) {
    let mut c = Some(std::mem::take(caps));
    emit(re, out, &mut c);
    *caps = c.unwrap_or_default();
}

fn emit(re: &Regexp, out: &mut String, caps: &mut Option<Vec<(usize, String)>>) {
    match re.op {
        Op::NoMatch => out.push_str(NEVER),
        Op::EmptyMatch => out.push_str("(?:)"),
        Op::Literal => {
            if re.runes.iter().any(|&r| (0xD800..=0xDFFF).contains(&r)) {
                out.push_str(NEVER);
                return;
            }
            let fold = re.flags & FOLD_CASE != 0;
            out.push_str(if fold { "(?i:" } else { "(?:" });
            for &r in &re.runes {
                push_rune(out, r);
            }
            out.push(')');
        }
        Op::CharClass => {
            if re.tables.is_empty() {
                let mut body = String::new();
                push_ranges(&mut body, &re.runes);
                if body.is_empty() {
                    out.push_str(NEVER);
                } else {
                    out.push('[');
                    out.push_str(&body);
                    out.push(']');
                }
                return;
            }
            let fold = re.flags & FOLD_CASE != 0;
            out.push_str(if fold { "(?i:[" } else { "(?:[" });
            if re.class_neg {
                out.push('^');
            }
            push_ranges(out, &re.runes);
            for t in &re.tables {
                out.push_str(if t.negated { "\\P{" } else { "\\p{" });
                out.push_str(t.prop);
                out.push('}');
            }
            out.push_str("])");
        }
        Op::AnyCharNotNL => out.push_str("(?-s:.)"),
        Op::AnyChar => out.push_str("(?s:.)"),
        Op::BeginLine => out.push_str("(?m:^)"),
        Op::EndLine => out.push_str("(?m:$)"),
        Op::BeginText => out.push_str("\\A"),
        Op::EndText => out.push_str("\\z"),
        Op::WordBoundary => out.push_str("(?-u:\\b)"),
        Op::NoWordBoundary => out.push_str("(?-u:\\B)"),
        Op::Capture => {
            match caps {
                Some(c) => {
                    c.push((re.cap, re.name.clone()));
                    out.push('(');
                }
                None => out.push_str("(?:"),
            }
            emit(&re.sub[0], out, caps);
            out.push(')');
        }
        Op::Star | Op::Plus | Op::Quest | Op::Repeat => {
            out.push_str("(?:");
            emit(&re.sub[0], out, caps);
            out.push(')');
            match re.op {
                Op::Star => out.push('*'),
                Op::Plus => out.push('+'),
                Op::Quest => out.push('?'),
                _ => {
                    use std::fmt::Write;
                    if re.max == -1 {
                        let _ = write!(out, "{{{},}}", re.min);
                    } else {
                        let _ = write!(out, "{{{},{}}}", re.min, re.max);
                    }
                }
            }
            if re.flags & NON_GREEDY != 0 {
                out.push('?');
            }
        }
        Op::Concat => {
            out.push_str("(?:");
            for s in &re.sub {
                emit(s, out, caps);
            }
            out.push(')');
        }
        Op::Alternate => {
            out.push_str("(?:");
            for (i, s) in re.sub.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                emit(s, out, caps);
            }
            out.push(')');
        }
        Op::LeftParen | Op::VerticalBar => {}
    }
}

/// Size limits for compiling translated patterns: generous (Go's own limit is about
/// 3.3 million instructions) but bounded, so hostile patterns fail instead of exhausting
/// memory.
pub const RUST_SIZE_LIMIT: usize = 64 << 20;
pub const RUST_DFA_SIZE_LIMIT: usize = 16 << 20;

/// Compiles a translated pattern with the limits above.
pub fn compile_rust(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(RUST_SIZE_LIMIT)
        .dfa_size_limit(RUST_DFA_SIZE_LIMIT)
        .nest_limit(4000)
        .build()
        .map_err(|e| format!("error compiling regexp: {e}"))
}

/// Parses a Go pattern (Go's `regexp.Compile`: Perl flags, unanchored) and compiles the
/// equivalent Rust regex.
pub fn compile_go(pattern: &[u8]) -> Result<regex::Regex, String> {
    let s = std::str::from_utf8(pattern).map_err(|_| invalid_utf8_error(pattern).to_string())?;
    let re = parse(s, PERL).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(s.len() * 2);
    to_rust(&re, &mut out);
    compile_rust(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        compile_go(p.as_bytes()).unwrap().is_match(s)
    }

    #[test]
    fn errors_as_go() {
        let e = |p: &str| parse(p, PERL).unwrap_err().to_string();
        assert_eq!(e("("), "error parsing regexp: missing closing ): `(`");
        assert_eq!(e(")"), "error parsing regexp: unexpected ): `)`");
        assert_eq!(
            e("a**"),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert_eq!(
            e("x{2}{3}"),
            "error parsing regexp: invalid nested repetition operator: `{2}{3}`"
        );
        assert_eq!(
            e("*"),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert_eq!(
            e("a{1001}"),
            "error parsing regexp: invalid repeat count: `{1001}`"
        );
        assert_eq!(
            e("(a{100}){100}"),
            "error parsing regexp: invalid repeat count: `{100}`"
        );
        assert_eq!(
            e("\\C"),
            "error parsing regexp: invalid escape sequence: `\\C`"
        );
        assert_eq!(
            e("\\1"),
            "error parsing regexp: invalid escape sequence: `\\1`"
        );
        assert_eq!(
            e("\\8"),
            "error parsing regexp: invalid escape sequence: `\\8`"
        );
        assert_eq!(
            e("\\Z"),
            "error parsing regexp: invalid escape sequence: `\\Z`"
        );
        assert_eq!(
            e("(?x)"),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?x`"
        );
        assert_eq!(e("[a"), "error parsing regexp: missing closing ]: `[a`");
        assert_eq!(
            e("[z-a]"),
            "error parsing regexp: invalid character class range: `z-a`"
        );
        assert_eq!(
            e("\\p{Foo}"),
            "error parsing regexp: invalid character class range: `\\p{Foo}`"
        );
        assert_eq!(
            e("[[:foo:]]"),
            "error parsing regexp: invalid character class range: `[:foo:]`"
        );
        assert_eq!(
            e("a\\"),
            "error parsing regexp: trailing backslash at end of expression: ``"
        );
        assert_eq!(
            e("(?P<1-a>x)"),
            "error parsing regexp: invalid named capture: `(?P<1-a>`"
        );
    }

    #[test]
    fn semantics() {
        assert!(m("a{,3}", "a{,3}"));
        assert!(!m("a{,3}", "aa"));
        assert!(m("\\Qa.b\\E", "a.b"));
        assert!(!m("\\Qa.b\\E", "axb"));
        assert!(m("[a[]", "["));
        assert!(m("[a-]", "-"));
        assert!(m("\\d", "5"));
        assert!(!m("\\d", "٥"));
        assert!(!m("\\w", "é"));
        assert!(!m("\\s", "\u{b}"));
        assert!(m("[[:space:]]", "\u{b}"));
        assert!(m("(?i)\\w", "ſ"));
        assert!(!m("(?i)\\W", "ſ"));
        assert!(m("(?i)k", "\u{212A}"));
        assert!(m("\\101", "A"));
        assert!(m("\\x41\\x{42}", "AB"));
        assert!(m("(?U)a+", "aaa"));
        assert!(m("\\p{greek}", "α"));
        assert!(m("\\pL", "é"));
        assert!(!m("\\B", "aéa"));
        assert!(m("\\<", "<"));
        assert!(m("(?P<n>a)(?P<n>b)", "ab"));
        assert!(m("^$", ""));
        assert!(!m("\\x{D800}", "\u{FFFD}"));
        assert!(m("[^a]", "\n"));
        assert!(!m("(?i)straße", "STRASSE"));
    }

    #[test]
    fn tree_shape() {
        let re = parse("(?i)abc|abd", PERL).unwrap();
        assert_eq!(re.op, Op::Concat);
        assert_eq!(re.sub[0].runes, vec!['A' as u32, 'B' as u32]);
        let re = parse("a|b|c", PERL).unwrap();
        assert_eq!(re.op, Op::CharClass);
        let re = parse("(?i)ſ", PERL).unwrap();
        assert_eq!(re.runes, vec!['S' as u32]);
    }
}
