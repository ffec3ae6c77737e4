//! The lexer of Loki's match-stage LogQL (clients/pkg/logentry/logql/parser.go), over a
//! port of Go's `text/scanner` in its default `GoTokens` mode: Go identifiers, numbers,
//! char and raw string literals (which the lexer turns into IDENTIFIER tokens), skipped
//! comments, `"..."` strings decoded as `strconv.Unquote` does, and the scanner's errors
//! and positions.

use std::sync::OnceLock;

// Token numbers as the generated parser uses internally (exprTok2).
pub const T_EOF: i32 = 1;
pub const T_IDENTIFIER: i32 = 4;
pub const T_STRING: i32 = 5;
pub const T_EQ: i32 = 8;
pub const T_NEQ: i32 = 9;
pub const T_RE: i32 = 10;
pub const T_NRE: i32 = 11;
pub const T_OPEN_BRACE: i32 = 12;
pub const T_CLOSE_BRACE: i32 = 13;
pub const T_COMMA: i32 = 14;
pub const T_DOT: i32 = 15;
pub const T_PIPE_MATCH: i32 = 16;
pub const T_PIPE_EXACT: i32 = 17;

fn token_of(text: &str) -> Option<i32> {
    Some(match text {
        "," => T_COMMA,
        "." => T_DOT,
        "{" => T_OPEN_BRACE,
        "}" => T_CLOSE_BRACE,
        "=" => T_EQ,
        "!=" => T_NEQ,
        "=~" => T_RE,
        "!~" => T_NRE,
        "|=" => T_PIPE_EXACT,
        "|~" => T_PIPE_MATCH,
        _ => return None,
    })
}

const EOF: i32 = -1;
const TOK_IDENT: i32 = -2;
const TOK_INT: i32 = -3;
const TOK_FLOAT: i32 = -4;
const TOK_CHAR: i32 = -5;
const TOK_STRING: i32 = -6;
const TOK_RAW_STRING: i32 = -7;

/// A lexer error: message and the scanner position Go reports it at.
#[derive(Debug, Clone)]
pub struct LexError {
    pub msg: String,
    pub line: i64,
    pub col: i64,
}

fn is_letter(c: i32) -> bool {
    if c < 0 {
        return false;
    }
    if c < 0x80 {
        return (c as u8).is_ascii_alphabetic();
    }
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"\A\p{gc=L}\z").expect("static pattern"));
    char::from_u32(c as u32).is_some_and(|ch| re.is_match(ch.encode_utf8(&mut [0; 4])))
}

fn is_digit(c: i32) -> bool {
    if c < 0 {
        return false;
    }
    if c < 0x80 {
        return (c as u8).is_ascii_digit();
    }
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"\A\p{gc=Nd}\z").expect("static pattern"));
    char::from_u32(c as u32).is_some_and(|ch| re.is_match(ch.encode_utf8(&mut [0; 4])))
}

fn is_decimal(c: i32) -> bool {
    (b'0' as i32..=b'9' as i32).contains(&c)
}

fn lower(c: i32) -> i32 {
    (b'a' - b'A') as i32 | c
}

fn is_hex(c: i32) -> bool {
    is_decimal(c) || (b'a' as i32..=b'f' as i32).contains(&lower(c))
}

fn digit_val(c: i32) -> i32 {
    if is_decimal(c) {
        c - b'0' as i32
    } else if (b'a' as i32..=b'f' as i32).contains(&lower(c)) {
        lower(c) - b'a' as i32 + 10
    } else {
        16
    }
}

fn quote_rune(c: i32) -> String {
    match char::from_u32(c as u32) {
        Some(ch) if (' '..='~').contains(&ch) && ch != '\'' && ch != '\\' => format!("'{ch}'"),
        Some(ch) => format!("{:?}", ch),
        None => "'\u{FFFD}'".to_string(),
    }
}

/// Port of Go's text/scanner.Scanner over a string.
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    ch: i32,
    line: i64,
    column: i64,
    last_line_len: i64,
    last_char_len: usize,
    tok_pos: Option<usize>,
    tok_end: usize,
    /// Position of the most recent token (Go's embedded Position): line 0 = invalid.
    pub p_line: i64,
    pub p_column: i64,
    /// First error seen (the parser stops there).
    pub error: Option<LexError>,
}

/// The value of a token.
pub enum LexVal {
    None,
    Ident(String),
    Str(Vec<u8>),
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            ch: -2,
            line: 1,
            column: 0,
            last_line_len: 0,
            last_char_len: 0,
            tok_pos: None,
            tok_end: 0,
            p_line: 0,
            p_column: 0,
            error: None,
        }
    }

    /// Records an error at the current token position, as the lexer's Error does.
    pub fn error(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(LexError {
                msg,
                line: self.p_line,
                col: self.p_column,
            });
        }
    }

    fn scan_error(&mut self, msg: &str) {
        self.tok_end = self.pos - self.last_char_len;
        self.error(msg.to_string());
    }

    fn next(&mut self) -> i32 {
        let c = match self.src[self.pos..].chars().next() {
            None => {
                if self.last_char_len > 0 {
                    self.column += 1;
                }
                self.last_char_len = 0;
                return EOF;
            }
            Some(c) => c,
        };
        let width = c.len_utf8();
        self.pos += width;
        self.last_char_len = width;
        self.column += 1;
        match c {
            '\0' => self.scan_error("invalid character NUL"),
            '\n' => {
                self.line += 1;
                self.last_line_len = self.column;
                self.column = 0;
            }
            _ => {}
        }
        c as i32
    }

    pub fn peek(&mut self) -> i32 {
        if self.ch == -2 {
            self.ch = self.next();
            if self.ch == 0xFEFF {
                self.ch = self.next();
            }
        }
        self.ch
    }

    /// Go's Scanner.Next: consumes one character, invalidates the token position.
    pub fn next_char(&mut self) -> i32 {
        self.tok_pos = None;
        self.p_line = 0;
        let ch = self.peek();
        if ch != EOF {
            self.ch = self.next();
        }
        ch
    }

    pub fn token_text(&self) -> &'a str {
        match self.tok_pos {
            None => "",
            Some(p) => &self.src[p..self.tok_end.max(p)],
        }
    }

    fn is_ident_rune(c: i32, i: usize) -> bool {
        c == '_' as i32 || is_letter(c) || (is_digit(c) && i > 0)
    }

    fn scan_identifier(&mut self) -> i32 {
        let mut ch = self.next();
        let mut i = 1;
        while Self::is_ident_rune(ch, i) {
            ch = self.next();
            i += 1;
        }
        ch
    }

    fn digits(&mut self, ch0: i32, base: i32, invalid: &mut i32) -> (i32, i32) {
        let mut ch = ch0;
        let mut digsep = 0;
        if base <= 10 {
            let max = b'0' as i32 + base;
            while is_decimal(ch) || ch == '_' as i32 {
                let mut ds = 1;
                if ch == '_' as i32 {
                    ds = 2;
                } else if ch >= max && *invalid == 0 {
                    *invalid = ch;
                }
                digsep |= ds;
                ch = self.next();
            }
        } else {
            while is_hex(ch) || ch == '_' as i32 {
                digsep |= if ch == '_' as i32 { 2 } else { 1 };
                ch = self.next();
            }
        }
        (ch, digsep)
    }

    fn scan_number(&mut self, mut ch: i32, mut seen_dot: bool) -> (i32, i32) {
        let mut base = 10;
        let mut prefix = 0i32;
        let mut digsep = 0;
        let mut invalid = 0i32;
        let mut tok = TOK_INT;
        if !seen_dot {
            if ch == '0' as i32 {
                ch = self.next();
                match lower(ch) {
                    c if c == 'x' as i32 => {
                        ch = self.next();
                        base = 16;
                        prefix = 'x' as i32;
                    }
                    c if c == 'o' as i32 => {
                        ch = self.next();
                        base = 8;
                        prefix = 'o' as i32;
                    }
                    c if c == 'b' as i32 => {
                        ch = self.next();
                        base = 2;
                        prefix = 'b' as i32;
                    }
                    _ => {
                        base = 8;
                        prefix = '0' as i32;
                        digsep = 1;
                    }
                }
            }
            let (c, ds) = self.digits(ch, base, &mut invalid);
            ch = c;
            digsep |= ds;
            if ch == '.' as i32 {
                ch = self.next();
                seen_dot = true;
            }
        }
        if seen_dot {
            tok = TOK_FLOAT;
            if prefix == 'o' as i32 || prefix == 'b' as i32 {
                self.scan_error(&format!("invalid radix point in {}", litname(prefix)));
            }
            let (c, ds) = self.digits(ch, base, &mut invalid);
            ch = c;
            digsep |= ds;
        }
        if digsep & 1 == 0 {
            self.scan_error(&format!("{} has no digits", litname(prefix)));
        }
        let e = lower(ch);
        if e == 'e' as i32 || e == 'p' as i32 {
            if e == 'e' as i32 && prefix != 0 && prefix != '0' as i32 {
                self.scan_error(&format!(
                    "{} exponent requires decimal mantissa",
                    quote_rune(ch)
                ));
            } else if e == 'p' as i32 && prefix != 'x' as i32 {
                self.scan_error(&format!(
                    "{} exponent requires hexadecimal mantissa",
                    quote_rune(ch)
                ));
            }
            ch = self.next();
            tok = TOK_FLOAT;
            if ch == '+' as i32 || ch == '-' as i32 {
                ch = self.next();
            }
            let mut none = 0;
            let (c, ds) = self.digits(ch, 10, &mut none);
            ch = c;
            digsep |= ds;
            if ds & 1 == 0 {
                self.scan_error("exponent has no digits");
            }
        } else if prefix == 'x' as i32 && tok == TOK_FLOAT {
            self.scan_error("hexadecimal mantissa requires a 'p' exponent");
        }
        if tok == TOK_INT && invalid != 0 {
            self.scan_error(&format!(
                "invalid digit {} in {}",
                quote_rune(invalid),
                litname(prefix)
            ));
        }
        if digsep & 2 != 0 {
            self.tok_end = self.pos - self.last_char_len;
            if invalid_sep(self.token_text().as_bytes()) >= 0 {
                self.scan_error("'_' must separate successive digits");
            }
        }
        (tok, ch)
    }

    fn scan_digits(&mut self, mut ch: i32, base: i32, mut n: i32) -> i32 {
        while n > 0 && digit_val(ch) < base {
            ch = self.next();
            n -= 1;
        }
        if n > 0 {
            self.scan_error("invalid char escape");
        }
        ch
    }

    fn scan_escape(&mut self, quote: i32) -> i32 {
        let ch = self.next();
        match ch {
            c if c == quote
                || "abfnrtv\\".contains(char::from_u32(c.max(0) as u32).unwrap_or('\0'))
                    && c > 0 =>
            {
                self.next()
            }
            c if (b'0' as i32..=b'7' as i32).contains(&c) => self.scan_digits(c, 8, 3),
            c if c == 'x' as i32 => {
                let n = self.next();
                self.scan_digits(n, 16, 2)
            }
            c if c == 'u' as i32 => {
                let n = self.next();
                self.scan_digits(n, 16, 4)
            }
            c if c == 'U' as i32 => {
                let n = self.next();
                self.scan_digits(n, 16, 8)
            }
            c => {
                self.scan_error("invalid char escape");
                c
            }
        }
    }

    fn scan_string(&mut self, quote: i32) -> usize {
        let mut ch = self.next();
        let mut n = 0;
        while ch != quote {
            if ch == '\n' as i32 || ch < 0 {
                self.scan_error("literal not terminated");
                return n;
            }
            if ch == '\\' as i32 {
                ch = self.scan_escape(quote);
            } else {
                ch = self.next();
            }
            n += 1;
        }
        n
    }

    fn scan_raw_string(&mut self) {
        let mut ch = self.next();
        while ch != '`' as i32 {
            if ch < 0 {
                self.scan_error("literal not terminated");
                return;
            }
            ch = self.next();
        }
    }

    fn scan_comment(&mut self, mut ch: i32) -> i32 {
        if ch == '/' as i32 {
            ch = self.next();
            while ch != '\n' as i32 && ch >= 0 {
                ch = self.next();
            }
            return ch;
        }
        ch = self.next();
        loop {
            if ch < 0 {
                self.scan_error("comment not terminated");
                break;
            }
            let ch0 = ch;
            ch = self.next();
            if ch0 == '*' as i32 && ch == '/' as i32 {
                ch = self.next();
                break;
            }
        }
        ch
    }

    /// Go's Scanner.Scan.
    fn scan(&mut self) -> i32 {
        let mut ch = self.peek();
        self.tok_pos = None;
        self.p_line = 0;
        loop {
            while ch == ' ' as i32 || ch == '\t' as i32 || ch == '\n' as i32 || ch == '\r' as i32 {
                ch = self.next();
            }
            self.tok_pos = Some(self.pos - self.last_char_len);
            if self.column > 0 {
                self.p_line = self.line;
                self.p_column = self.column;
            } else {
                self.p_line = self.line - 1;
                self.p_column = self.last_line_len;
            }
            let mut tok = ch;
            if Self::is_ident_rune(ch, 0) {
                tok = TOK_IDENT;
                ch = self.scan_identifier();
            } else if is_decimal(ch) {
                (tok, ch) = self.scan_number(ch, false);
            } else {
                match ch {
                    EOF => {}
                    c if c == '"' as i32 => {
                        self.scan_string('"' as i32);
                        tok = TOK_STRING;
                        ch = self.next();
                    }
                    c if c == '\'' as i32 => {
                        if self.scan_string('\'' as i32) != 1 {
                            self.scan_error("invalid char literal");
                        }
                        tok = TOK_CHAR;
                        ch = self.next();
                    }
                    c if c == '.' as i32 => {
                        ch = self.next();
                        if is_decimal(ch) {
                            (tok, ch) = self.scan_number(ch, true);
                        }
                    }
                    c if c == '/' as i32 => {
                        ch = self.next();
                        if ch == '/' as i32 || ch == '*' as i32 {
                            self.tok_pos = None;
                            ch = self.scan_comment(ch);
                            continue;
                        }
                    }
                    c if c == '`' as i32 => {
                        self.scan_raw_string();
                        tok = TOK_RAW_STRING;
                        ch = self.next();
                    }
                    _ => ch = self.next(),
                }
            }
            self.tok_end = self.pos - self.last_char_len;
            self.ch = ch;
            return tok;
        }
    }

    /// The grammar's Lex: returns the parser's token number and its value.
    pub fn lex(&mut self) -> (i32, LexVal) {
        let r = self.scan();
        if r == EOF {
            return (T_EOF, LexVal::None);
        }
        if r == TOK_STRING {
            return match unquote(self.token_text()) {
                Some(v) => (T_STRING, LexVal::Str(v)),
                None => {
                    self.error("invalid syntax".to_string());
                    (T_EOF, LexVal::None)
                }
            };
        }
        let text = self.token_text();
        let peek = self.peek();
        let peek_char = char::from_u32(peek.max(0) as u32)
            .filter(|_| peek >= 0)
            .unwrap_or('\u{FFFD}');
        let mut two = String::with_capacity(text.len() + 4);
        two.push_str(text);
        two.push(peek_char);
        if let Some(tok) = token_of(&two) {
            self.next_char();
            return (tok, LexVal::None);
        }
        if let Some(tok) = token_of(text) {
            return (tok, LexVal::None);
        }
        (T_IDENTIFIER, LexVal::Ident(text.to_string()))
    }
}

fn litname(prefix: i32) -> &'static str {
    match u8::try_from(prefix).unwrap_or(0) {
        b'x' => "hexadecimal literal",
        b'o' | b'0' => "octal literal",
        b'b' => "binary literal",
        _ => "decimal literal",
    }
}

fn invalid_sep(x: &[u8]) -> i64 {
    let mut x1 = b' ';
    let mut d = b'.';
    let mut i = 0;
    if x.len() >= 2 && x[0] == b'0' {
        x1 = x[1] | 0x20;
        if x1 == b'x' || x1 == b'o' || x1 == b'b' {
            d = b'0';
            i = 2;
        }
    }
    while i < x.len() {
        let p = d;
        d = x[i];
        if d == b'_' {
            if p != b'0' {
                return i as i64;
            }
        } else if d.is_ascii_digit() || (x1 == b'x' && is_hex(d as i32)) {
            d = b'0';
        } else {
            if p == b'_' {
                return i as i64 - 1;
            }
            d = b'.';
        }
        i += 1;
    }
    if d == b'_' {
        return x.len() as i64 - 1;
    }
    -1
}

/// Go's strconv.Unquote for a double-quoted token (the scanner only produces those
/// here); octal and `\x` escapes give bytes, so the result may not be UTF-8.
pub fn unquote(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'"' {
        return None;
    }
    let end = b[1..].iter().position(|&c| c == b'"')? + 2;
    let first = &b[..end];
    if !first.contains(&b'\\') && !first.contains(&b'\n') {
        // No escapes: valid as is when the closing quote ends the token.
        if end == b.len() {
            return Some(b[1..end - 1].to_vec());
        }
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 1;
    while i < b.len() && b[i] != b'"' {
        let c = b[i];
        if c == b'\n' {
            return None;
        }
        if c >= 0x80 {
            let ch = s[i..].chars().next()?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            i += ch.len_utf8();
            continue;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        if i + 1 >= b.len() {
            return None;
        }
        let e = b[i + 1];
        i += 2;
        match e {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'"' => out.push(b'"'),
            b'x' | b'u' | b'U' => {
                let n = match e {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                if b.len() < i + n {
                    return None;
                }
                let mut v: u32 = 0;
                for &h in &b[i..i + n] {
                    v = (v << 4) | (h as char).to_digit(16)?;
                }
                i += n;
                if e == b'x' {
                    out.push(v as u8);
                } else {
                    let ch = char::from_u32(v)?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
            b'0'..=b'7' => {
                if b.len() < i + 2 {
                    return None;
                }
                let mut v = (e - b'0') as u32;
                for &d in &b[i..i + 2] {
                    if !(b'0'..=b'7').contains(&d) {
                        return None;
                    }
                    v = (v << 3) | (d - b'0') as u32;
                }
                i += 2;
                if v > 255 {
                    return None;
                }
                out.push(v as u8);
            }
            _ => return None,
        }
    }
    if i >= b.len() || b[i] != b'"' || i + 1 != b.len() {
        return None;
    }
    Some(out)
}
