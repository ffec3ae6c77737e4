//! Lexer: a port of Go's text/template/parse/lex.go (Go 1.22+ behaviour:
//! newlines inside actions, trim markers with any ASCII space, break/continue,
//! 0x/0o/0b/underscore numbers).

use super::gostr::find;
use super::strconv::quote_str;
use super::unicode as uni;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // keywords
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    pub(super) fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }
}

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub typ: ItemType,
    pub pos: usize,
    /// Value: for errors the message, otherwise the source text.
    pub val: String,
    pub line: usize,
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            ItemType::Eof => write!(f, "EOF"),
            ItemType::Error => write!(f, "{}", self.val),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ => {
                if self.val.len() > 10 {
                    // Go: %.10q... (precision counts runes of the string)
                    let s: String = self.val.chars().take(10).collect();
                    write!(f, "{}...", quote_str(s.as_bytes()))
                } else {
                    write!(f, "{}", quote_str(self.val.as_bytes()))
                }
            }
        }
    }
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
const TRIM_MARKER_LEN: usize = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
    Done,
}

pub(super) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    width: usize,
    paren_depth: i64,
    line: usize,
    start_line: usize,
    break_ok: bool,
    continue_ok: bool,
    state: State,
}

fn is_space(r: Option<char>) -> bool {
    matches!(r, Some(' ' | '\t' | '\r' | '\n'))
}

fn is_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alpha_numeric(r: Option<char>) -> bool {
    match r {
        Some(c) => c == '_' || uni::is_letter(c) || uni::is_digit(c),
        None => false,
    }
}

fn has_left_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'-' && is_space_byte(s[1])
}

fn has_right_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && is_space_byte(s[0]) && s[1] == b'-'
}

fn right_trim_length(s: &[u8]) -> usize {
    s.iter().rev().take_while(|b| is_space_byte(**b)).count()
}

fn left_trim_length(s: &[u8]) -> usize {
    s.iter().take_while(|b| is_space_byte(**b)).count()
}

impl<'a> Lexer<'a> {
    pub(super) fn new(input: &'a str, break_ok: bool, continue_ok: bool) -> Self {
        Lexer {
            input,
            pos: 0,
            start: 0,
            width: 0,
            paren_depth: 0,
            line: 1,
            start_line: 1,
            break_ok,
            continue_ok,
            state: State::Text,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.input.as_bytes()
    }

    fn rest(&self, at: usize) -> &'a [u8] {
        self.bytes().get(at..).unwrap_or(&[])
    }

    fn next(&mut self) -> Option<char> {
        if self.pos >= self.input.len() {
            self.width = 0;
            return None;
        }
        let c = self.input[self.pos..].chars().next();
        match c {
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                if c == '\n' {
                    self.line += 1;
                }
                Some(c)
            }
            None => {
                self.width = 0;
                None
            }
        }
    }

    fn peek(&mut self) -> Option<char> {
        let r = self.next();
        self.backup();
        r
    }

    fn backup(&mut self) {
        self.pos -= self.width;
        if self.width == 1 && self.bytes().get(self.pos) == Some(&b'\n') {
            self.line -= 1;
        }
    }

    fn emit(&mut self, t: ItemType) -> Item {
        let it = Item {
            typ: t,
            pos: self.start,
            val: self.input[self.start..self.pos].to_string(),
            line: self.start_line,
        };
        self.start = self.pos;
        self.start_line = self.line;
        it
    }

    fn ignore(&mut self) {
        self.line += count_newlines(&self.bytes()[self.start..self.pos]);
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        loop {
            match self.next() {
                Some(c) if valid.contains(c) => {}
                _ => break,
            }
        }
        self.backup();
    }

    fn errorf(&mut self, msg: String) -> Item {
        self.state = State::Done;
        Item {
            typ: ItemType::Error,
            pos: self.start,
            val: msg,
            line: self.start_line,
        }
    }

    /// Returns the next item.
    pub(super) fn next_item(&mut self) -> Item {
        loop {
            let item = match self.state {
                State::Done => {
                    return Item {
                        typ: ItemType::Eof,
                        pos: self.pos,
                        val: String::new(),
                        line: self.line,
                    };
                }
                State::Text => self.lex_text(),
                State::LeftDelim => self.lex_left_delim(),
                State::Comment => self.lex_comment(),
                State::RightDelim => self.lex_right_delim(),
                State::InsideAction => self.lex_inside_action(),
                State::Space => self.lex_space(),
                State::Identifier => self.lex_identifier(),
                State::Field => self.lex_field_or_variable(ItemType::Field),
                State::Variable => self.lex_variable(),
                State::Char => self.lex_char(),
                State::Number => self.lex_number(),
                State::Quote => self.lex_quote(),
                State::RawQuote => self.lex_raw_quote(),
            };
            if let Some(it) = item {
                if it.typ == ItemType::Eof || it.typ == ItemType::Error {
                    self.state = State::Done;
                }
                return it;
            }
        }
    }

    fn lex_text(&mut self) -> Option<Item> {
        self.width = 0;
        if let Some(x) = find(self.rest(self.pos), LEFT_DELIM.as_bytes()) {
            let ldn = LEFT_DELIM.len();
            self.pos += x;
            let mut trim_length = 0;
            if has_left_trim_marker(self.rest(self.pos + ldn)) {
                trim_length = right_trim_length(&self.bytes()[self.start..self.pos]);
            }
            self.pos -= trim_length;
            let mut ret = None;
            if self.pos > self.start {
                self.line += count_newlines(&self.bytes()[self.start..self.pos]);
                ret = Some(self.emit(ItemType::Text));
            }
            self.pos += trim_length;
            self.ignore();
            self.state = State::LeftDelim;
            return ret;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += count_newlines(&self.bytes()[self.start..self.pos]);
            return Some(self.emit(ItemType::Text));
        }
        Some(self.emit(ItemType::Eof))
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest(self.pos);
        if has_right_trim_marker(rest)
            && self
                .rest(self.pos + TRIM_MARKER_LEN)
                .starts_with(RIGHT_DELIM.as_bytes())
        {
            return (true, true);
        }
        if rest.starts_with(RIGHT_DELIM.as_bytes()) {
            return (true, false);
        }
        (false, false)
    }

    fn lex_left_delim(&mut self) -> Option<Item> {
        self.pos += LEFT_DELIM.len();
        let trim_space = has_left_trim_marker(self.rest(self.pos));
        let after_marker = if trim_space { TRIM_MARKER_LEN } else { 0 };
        if self
            .rest(self.pos + after_marker)
            .starts_with(LEFT_COMMENT.as_bytes())
        {
            self.pos += after_marker;
            self.ignore();
            self.state = State::Comment;
            return None;
        }
        let it = self.emit(ItemType::LeftDelim);
        self.state = State::InsideAction;
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        Some(it)
    }

    fn lex_comment(&mut self) -> Option<Item> {
        self.pos += LEFT_COMMENT.len();
        let Some(i) = find(self.rest(self.pos), RIGHT_COMMENT.as_bytes()) else {
            return Some(self.errorf("unclosed comment".into()));
        };
        self.pos += i + RIGHT_COMMENT.len();
        let (delim, trim_space) = self.at_right_delim();
        if !delim {
            return Some(self.errorf("comment ends before closing delimiter".into()));
        }
        if trim_space {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim_space {
            self.pos += left_trim_length(self.rest(self.pos));
        }
        self.ignore();
        self.state = State::Text;
        None
    }

    fn lex_right_delim(&mut self) -> Option<Item> {
        let trim_space = has_right_trim_marker(self.rest(self.pos));
        if trim_space {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        let it = self.emit(ItemType::RightDelim);
        if trim_space {
            self.pos += left_trim_length(self.rest(self.pos));
            self.ignore();
        }
        self.state = State::Text;
        Some(it)
    }

    fn lex_inside_action(&mut self) -> Option<Item> {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                self.state = State::RightDelim;
                return None;
            }
            return Some(self.errorf("unclosed left paren".into()));
        }
        let r = self.next();
        let ret = match r {
            None => return Some(self.errorf("unclosed action".into())),
            Some(' ' | '\t' | '\r' | '\n') => {
                self.backup();
                self.state = State::Space;
                return None;
            }
            Some('=') => self.emit(ItemType::Assign),
            Some(':') => {
                if self.next() != Some('=') {
                    return Some(self.errorf("expected :=".into()));
                }
                self.emit(ItemType::Declare)
            }
            Some('|') => self.emit(ItemType::Pipe),
            Some('"') => {
                self.state = State::Quote;
                return None;
            }
            Some('`') => {
                self.state = State::RawQuote;
                return None;
            }
            Some('$') => {
                self.state = State::Variable;
                return None;
            }
            Some('\'') => {
                self.state = State::Char;
                return None;
            }
            Some('.') => {
                if let Some(&b) = self.bytes().get(self.pos)
                    && !b.is_ascii_digit()
                {
                    self.state = State::Field;
                    return None;
                }
                self.backup();
                self.state = State::Number;
                return None;
            }
            Some('+' | '-' | '0'..='9') => {
                self.backup();
                self.state = State::Number;
                return None;
            }
            Some(c) if is_alpha_numeric(Some(c)) => {
                self.backup();
                self.state = State::Identifier;
                return None;
            }
            Some('(') => {
                self.paren_depth += 1;
                self.emit(ItemType::LeftParen)
            }
            Some(')') => {
                let it = self.emit(ItemType::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return Some(self.errorf("unexpected right paren U+0029 ')'".into()));
                }
                it
            }
            Some(c) if (c as u32) < 0x80 && (' '..='~').contains(&c) => self.emit(ItemType::Char),
            Some(c) => {
                return Some(self.errorf(format!(
                    "unrecognized character in action: {}",
                    format_sharp_u(c as u32)
                )));
            }
        };
        self.state = State::InsideAction;
        Some(ret)
    }

    fn lex_space(&mut self) -> Option<Item> {
        let mut num_spaces = 0;
        while is_space(self.peek()) {
            self.next();
            num_spaces += 1;
        }
        if has_right_trim_marker(self.rest(self.pos - 1))
            && self
                .rest(self.pos - 1 + TRIM_MARKER_LEN)
                .starts_with(RIGHT_DELIM.as_bytes())
        {
            self.backup();
            if num_spaces == 1 {
                self.state = State::RightDelim;
                return None;
            }
        }
        self.state = State::InsideAction;
        Some(self.emit(ItemType::Space))
    }

    fn lex_identifier(&mut self) -> Option<Item> {
        loop {
            let r = self.next();
            if is_alpha_numeric(r) {
                continue;
            }
            self.backup();
            let word = &self.input[self.start..self.pos];
            if !self.at_terminator() {
                return Some(self.bad_char(r));
            }
            let kw = keyword(word);
            let t = match kw {
                Some(ItemType::Break) if !self.break_ok => ItemType::Identifier,
                Some(ItemType::Continue) if !self.continue_ok => ItemType::Identifier,
                Some(k) => k,
                None if word.starts_with('.') => ItemType::Field,
                None if word == "true" || word == "false" => ItemType::Bool,
                None => ItemType::Identifier,
            };
            self.state = State::InsideAction;
            return Some(self.emit(t));
        }
    }

    fn bad_char(&mut self, r: Option<char>) -> Item {
        let code = match r {
            Some(c) => c as u32,
            None => 0xFFFF_FFFF,
        };
        let desc = if code == 0xFFFF_FFFF {
            "U+FFFFFFFFFFFFFFFF".to_string()
        } else {
            format_sharp_u(code)
        };
        self.errorf(format!("bad character {desc}"))
    }

    fn lex_variable(&mut self) -> Option<Item> {
        if self.at_terminator() {
            self.state = State::InsideAction;
            return Some(self.emit(ItemType::Variable));
        }
        self.lex_field_or_variable(ItemType::Variable)
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> Option<Item> {
        if self.at_terminator() {
            self.state = State::InsideAction;
            let t = if typ == ItemType::Variable {
                ItemType::Variable
            } else {
                ItemType::Dot
            };
            return Some(self.emit(t));
        }
        let mut r;
        loop {
            r = self.next();
            if !is_alpha_numeric(r) {
                self.backup();
                break;
            }
        }
        if !self.at_terminator() {
            return Some(self.bad_char(r));
        }
        self.state = State::InsideAction;
        Some(self.emit(typ))
    }

    fn at_terminator(&mut self) -> bool {
        let r = self.peek();
        if is_space(r) {
            return true;
        }
        match r {
            None | Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some('}') => true, // first rune of the right delimiter
            _ => false,
        }
    }

    fn lex_char(&mut self) -> Option<Item> {
        loop {
            match self.next() {
                Some('\\') => {
                    let r = self.next();
                    if r.is_some() && r != Some('\n') {
                        continue;
                    }
                    return Some(self.errorf("unterminated character constant".into()));
                }
                None | Some('\n') => {
                    return Some(self.errorf("unterminated character constant".into()));
                }
                Some('\'') => break,
                _ => {}
            }
        }
        self.state = State::InsideAction;
        Some(self.emit(ItemType::CharConstant))
    }

    fn lex_number(&mut self) -> Option<Item> {
        if !self.scan_number() {
            let s = self.input[self.start..self.pos].to_string();
            return Some(self.errorf(format!("bad number syntax: {}", quote_str(s.as_bytes()))));
        }
        let sign = self.peek();
        if sign == Some('+') || sign == Some('-') {
            if !self.scan_number() || self.bytes().get(self.pos.wrapping_sub(1)) != Some(&b'i') {
                let s = self.input[self.start..self.pos].to_string();
                return Some(
                    self.errorf(format!("bad number syntax: {}", quote_str(s.as_bytes()))),
                );
            }
            self.state = State::InsideAction;
            return Some(self.emit(ItemType::Complex));
        }
        self.state = State::InsideAction;
        Some(self.emit(ItemType::Number))
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 10 + 1 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 16 + 6 + 1 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if is_alpha_numeric(self.peek()) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> Option<Item> {
        loop {
            match self.next() {
                Some('\\') => {
                    let r = self.next();
                    if r.is_some() && r != Some('\n') {
                        continue;
                    }
                    return Some(self.errorf("unterminated quoted string".into()));
                }
                None | Some('\n') => {
                    return Some(self.errorf("unterminated quoted string".into()));
                }
                Some('"') => break,
                _ => {}
            }
        }
        self.state = State::InsideAction;
        Some(self.emit(ItemType::String))
    }

    fn lex_raw_quote(&mut self) -> Option<Item> {
        loop {
            match self.next() {
                None => return Some(self.errorf("unterminated raw quoted string".into())),
                Some('`') => break,
                _ => {}
            }
        }
        self.state = State::InsideAction;
        let it = self.emit(ItemType::RawString);
        Some(it)
    }
}

fn keyword(w: &str) -> Option<ItemType> {
    Some(match w {
        "." => ItemType::Dot,
        "block" => ItemType::Block,
        "break" => ItemType::Break,
        "continue" => ItemType::Continue,
        "define" => ItemType::Define,
        "else" => ItemType::Else,
        "end" => ItemType::End,
        "if" => ItemType::If,
        "range" => ItemType::Range,
        "nil" => ItemType::Nil,
        "template" => ItemType::Template,
        "with" => ItemType::With,
        _ => return None,
    })
}

pub(super) fn count_newlines(s: &[u8]) -> usize {
    s.iter().filter(|b| **b == b'\n').count()
}

/// "U+0029 ')'" (fmt's %#U), used in lexer messages.
fn format_sharp_u(u: u32) -> String {
    let mut s = format!("U+{u:04X}");
    if let Some(c) = char::from_u32(u)
        && uni::is_print(c)
    {
        s.push_str(" '");
        s.push(c);
        s.push('\'');
    }
    s
}
