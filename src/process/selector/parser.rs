//! The goyacc parser of clients/pkg/logentry/logql/expr.y, driven by the same tables as
//! the generated expr.y.go, so that the same inputs are refused with the same messages.

// Kept in the shape of the generated Go driver, to ease comparison.
#![allow(clippy::manual_range_contains, clippy::never_loop)]

use super::lexer::{self, LexVal, Lexer};

const EXPR_LAST: i32 = 30;
const EXPR_FLAG: i32 = -1000;
const EXPR_ERR_CODE: i32 = 2;

static ACT: [i32; 30] = [
    6, 13, 20, 4, 29, 18, 28, 10, 14, 9, 21, 22, 23, 24, 7, 8, 17, 19, 27, 16, 26, 25, 15, 12, 11,
    14, 3, 5, 2, 1,
];
static PACT: [i32; 30] = [
    -9, -1000, -2, -1000, 21, 17, -1000, -1000, -1000, -1000, -1000, 3, -11, -1000, 2, -1000,
    -1000, -1000, -1000, 4, -1000, 15, 13, 1, -1, -1000, -1000, -1000, -1000, -1000,
];
static PGO: [i32; 7] = [0, 29, 28, 27, 26, 24, 1];
static R1: [i32; 19] = [0, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 6];
static R2: [i32; 19] = [0, 1, 1, 3, 3, 2, 1, 1, 1, 1, 3, 3, 3, 1, 3, 3, 3, 3, 3];
static CHK: [i32; 30] = [
    -1000, -1, -2, -4, 12, -3, 2, 16, 17, 11, 9, -5, 2, -6, 4, 5, 2, 13, 2, 14, 13, 8, 9, 10, 11,
    -6, 5, 5, 5, 5,
];
static DEF: [i32; 30] = [
    0, -2, -2, 2, 0, 0, 5, 6, 7, 8, 9, 0, 0, 13, 0, 3, 4, 10, 11, 0, 12, 0, 0, 0, 0, 14, 15, 16,
    17, 18,
];
static EXCA: [i32; 12] = [-1, 1, 1, -1, -2, 0, -1, 2, 1, 1, -2, 0];

/// Token names, with the lexer's init() replacing the operator names by their text.
static TOKNAMES: [&str; 17] = [
    "$end",
    "error",
    "$unk",
    "IDENTIFIER",
    "STRING",
    "MATCHERS",
    "LABELS",
    "=",
    "!=",
    "=~",
    "!~",
    "{",
    "}",
    ",",
    ".",
    "|~",
    "|=",
];

fn tokname(c: i32) -> String {
    if c >= 1 && ((c - 1) as usize) < TOKNAMES.len() {
        return TOKNAMES[(c - 1) as usize].to_string();
    }
    format!("tok-{c}")
}

fn error_message(state: i32, lookahead: i32) -> String {
    let mut res = format!("syntax error: unexpected {}", tokname(lookahead));
    let mut expected: Vec<i32> = Vec::with_capacity(4);
    let base = PACT[state as usize];
    let mut tok = 4;
    while ((tok - 1) as usize) < TOKNAMES.len() {
        let n = base + tok;
        if n >= 0 && n < EXPR_LAST && CHK[ACT[n as usize] as usize] == tok {
            if expected.len() == 4 {
                return res;
            }
            expected.push(tok);
        }
        tok += 1;
    }
    if DEF[state as usize] == -2 {
        let mut i = 0;
        while EXCA[i] != -1 || EXCA[i + 1] != state {
            i += 2;
        }
        i += 2;
        while EXCA[i] >= 0 {
            let tok = EXCA[i];
            if tok < 4 || EXCA[i + 1] == 0 {
                i += 2;
                continue;
            }
            if expected.len() == 4 {
                return res;
            }
            expected.push(tok);
            i += 2;
        }
        if EXCA[i + 1] != 0 {
            return res;
        }
    }
    for (i, tok) in expected.iter().enumerate() {
        res.push_str(if i == 0 { ", expecting " } else { " or " });
        res.push_str(&tokname(*tok));
    }
    res
}

/// Prometheus' labels.MatchType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

/// A label matcher as parsed (the value may not be UTF-8: Go strings are bytes).
#[derive(Debug, Clone)]
pub struct RawMatcher {
    pub ty: MatchType,
    pub name: String,
    pub value: Vec<u8>,
}

/// A line filter as parsed.
#[derive(Debug, Clone)]
pub struct RawFilter {
    pub ty: MatchType,
    pub value: Vec<u8>,
}

/// The parsed expression.
#[derive(Debug, Clone, Default)]
pub struct RawExpr {
    pub matchers: Vec<RawMatcher>,
    pub filters: Vec<RawFilter>,
}

#[derive(Clone)]
enum Val {
    None,
    Str(Vec<u8>),
    Ident(String),
    Filter(MatchType),
    Matchers(Vec<RawMatcher>),
    Matcher(RawMatcher),
    Expr(RawExpr),
}

/// What refused a selector.
#[derive(Debug, Clone)]
pub enum ParseFailure {
    /// A lexer or syntax error: Go's ParseError text.
    Syntax(String),
    /// A label matcher the parser builds (mustNewMatcher) would panic on.
    Matcher(String),
}

/// Called for each matcher the grammar reduces (Go's mustNewMatcher): an error refuses.
pub type MatcherCheck<'c> = &'c mut dyn FnMut(&RawMatcher) -> Result<(), String>;

/// ParseExpr: the expression, or what refused it.
pub fn parse(input: &str, check: MatcherCheck<'_>) -> Result<RawExpr, ParseFailure> {
    let mut lx = Lexer::new(input);
    let mut states: Vec<i32> = Vec::with_capacity(16);
    let mut vals: Vec<Val> = Vec::with_capacity(16);
    let mut state: i32 = 0;
    let mut token: i32 = -1;
    let mut lval = Val::None;
    let mut yval = Val::None;
    let mut result: Option<RawExpr> = None;

    let syntax = |lx: &Lexer<'_>, msg: String| -> ParseFailure {
        let e = lx.error.clone().unwrap_or(lexer::LexError {
            msg,
            line: lx.p_line,
            col: lx.p_column,
        });
        ParseFailure::Syntax(format!(
            "parse error at line {}, col {}: {}",
            e.line, e.col, e.msg
        ))
    };

    let lex = |lx: &mut Lexer<'_>, lval: &mut Val| -> Result<i32, ()> {
        let (t, v) = lx.lex();
        *lval = match v {
            LexVal::None => Val::None,
            LexVal::Ident(s) => Val::Ident(s),
            LexVal::Str(b) => Val::Str(b),
        };
        if lx.error.is_some() { Err(()) } else { Ok(t) }
    };

    loop {
        // exprstack: push state and value.
        states.push(state);
        vals.push(std::mem::replace(&mut yval, Val::None));

        // exprnewstate
        let mut n;
        'newstate: loop {
            n = PACT[state as usize];
            if n > EXPR_FLAG {
                if token < 0 {
                    token = match lex(&mut lx, &mut lval) {
                        Ok(t) => t,
                        Err(()) => return Err(syntax(&lx, String::new())),
                    };
                }
                n += token;
                if (0..EXPR_LAST).contains(&n) {
                    let s = ACT[n as usize];
                    if CHK[s as usize] == token {
                        token = -1;
                        yval = std::mem::replace(&mut lval, Val::None);
                        state = s;
                        break 'newstate;
                    }
                }
            }
            // exprdefault
            n = DEF[state as usize];
            if n == -2 {
                if token < 0 {
                    token = match lex(&mut lx, &mut lval) {
                        Ok(t) => t,
                        Err(()) => return Err(syntax(&lx, String::new())),
                    };
                }
                let mut xi = 0;
                while !(EXCA[xi] == -1 && EXCA[xi + 1] == state) {
                    xi += 2;
                }
                xi += 2;
                loop {
                    n = EXCA[xi];
                    if n < 0 || n == token {
                        break;
                    }
                    xi += 2;
                }
                n = EXCA[xi + 1];
                if n < 0 {
                    return result.ok_or_else(|| syntax(&lx, "syntax error".into()));
                }
            }
            if n == 0 {
                let _ = EXPR_ERR_CODE;
                return Err(syntax(&lx, error_message(state, token)));
            }
            // Reduce by production n.
            let rhs = R2[n as usize] as usize;
            let top = vals.len();
            let dollar: Vec<Val> = vals.split_off(top - rhs);
            states.truncate(states.len() - rhs);
            let below = *states.last().expect("state 0 stays");
            let lhs = R1[n as usize];
            let g = PGO[lhs as usize];
            let j = g + below + 1;
            state = if j >= EXPR_LAST {
                ACT[g as usize]
            } else {
                let s = ACT[j as usize];
                if CHK[s as usize] != -lhs {
                    ACT[g as usize]
                } else {
                    s
                }
            };
            let mut d = dollar.into_iter();
            let d1 = d.next().unwrap_or(Val::None);
            let d2 = d.next().unwrap_or(Val::None);
            let d3 = d.next().unwrap_or(Val::None);
            let v = match (n, d1, d2, d3) {
                (1, Val::Expr(e), _, _) => {
                    result = Some(e);
                    Val::None
                }
                (2, Val::Matchers(m), _, _) => Val::Expr(RawExpr {
                    matchers: m,
                    filters: Vec::new(),
                }),
                (3, Val::Expr(mut e), Val::Filter(ty), Val::Str(value)) => {
                    e.filters.push(RawFilter { ty, value });
                    Val::Expr(e)
                }
                (6, ..) => Val::Filter(MatchType::Regexp),
                (7, ..) => Val::Filter(MatchType::Equal),
                (8, ..) => Val::Filter(MatchType::NotRegexp),
                (9, ..) => Val::Filter(MatchType::NotEqual),
                (10 | 11, _, d2, _) => d2,
                (13, Val::Matcher(m), _, _) => Val::Matchers(vec![m]),
                (14, Val::Matchers(mut ms), _, Val::Matcher(m)) => {
                    ms.push(m);
                    Val::Matchers(ms)
                }
                (15..=18, Val::Ident(name), _, Val::Str(value)) => {
                    let ty = match n {
                        15 => MatchType::Equal,
                        16 => MatchType::NotEqual,
                        17 => MatchType::Regexp,
                        _ => MatchType::NotRegexp,
                    };
                    let m = RawMatcher { ty, name, value };
                    check(&m).map_err(ParseFailure::Matcher)?;
                    Val::Matcher(m)
                }
                (_, d1, _, _) => d1,
            };
            yval = v;
            break 'newstate;
        }
        let _ = &mut vals;
    }
}
