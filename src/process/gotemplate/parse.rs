//! Parser: a port of Go's text/template/parse (parse.go, node.go).

use std::collections::HashMap;
use std::fmt;

use super::func::FuncDef;
use super::lex::{Item, ItemType, Lexer};
use super::limits::MAX_PARSE_DEPTH;
use super::{gostr, strconv, table};

const TWO63: f64 = 9_223_372_036_854_775_808.0;
const TWO64: f64 = 18_446_744_073_709_551_616.0;

#[derive(Debug)]
pub(super) struct NumberNode {
    pub text: String,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub is_complex: bool,
    pub int64: i64,
    pub uint64: u64,
    pub float64: f64,
    pub complex: (f64, f64),
}

#[derive(Debug)]
pub(super) enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Identifier {
        pos: usize,
        name: String,
        func: &'static FuncDef,
    },
    /// idents[0] is the variable name including '$'.
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        num: Box<NumberNode>,
    },
    Str {
        pos: usize,
        quoted: String,
        text: Box<[u8]>,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub(super) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

#[derive(Debug)]
pub(super) struct Command {
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(super) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub(super) struct ListNode {
    pub nodes: Vec<Node>,
}

#[derive(Debug)]
#[allow(dead_code)] // positions are kept for diagnostics
pub(super) enum Node {
    Text(Box<[u8]>),
    Action {
        pos: usize,
        pipe: Pipe,
    },
    If {
        pos: usize,
        pipe: Pipe,
        list: ListNode,
        else_list: Option<ListNode>,
    },
    Range {
        pos: usize,
        pipe: Pipe,
        list: ListNode,
        else_list: Option<ListNode>,
    },
    With {
        pos: usize,
        pipe: Pipe,
        list: ListNode,
        else_list: Option<ListNode>,
    },
    Template {
        pos: usize,
        name: Vec<u8>,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

// ---------- String() forms (for error messages) ----------

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Identifier { name, .. } => write!(f, "{name}"),
            Arg::Variable { idents, .. } => write!(f, "{}", idents.join(".")),
            Arg::Dot { .. } => write!(f, "."),
            Arg::Nil { .. } => write!(f, "nil"),
            Arg::Bool { val, .. } => write!(f, "{val}"),
            Arg::Number { num, .. } => write!(f, "{}", num.text),
            Arg::Str { quoted, .. } => write!(f, "{quoted}"),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(f, "{}", self.decl.join(", "))?;
            if self.is_assign {
                write!(f, " = ")?;
            } else {
                write!(f, " := ")?;
            }
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                write!(f, " | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

// ---------- parser ----------

pub(super) struct Trees {
    pub trees: HashMap<Vec<u8>, ListNode>,
}

struct Parser<'a> {
    name: String,
    set: HashMap<Vec<u8>, ListNode>,
    lex: Lexer<'a>,
    token: [Item; 3],
    peek_count: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    action_line: usize,
}

type PResult<T> = Result<T, String>;

fn empty_item() -> Item {
    Item {
        typ: ItemType::Eof,
        pos: 0,
        val: String::new(),
        line: 0,
    }
}

/// Parses `text` into its set of named trees (the top-level one under `name`).
pub(super) fn parse(name: &str, text: &str) -> PResult<Trees> {
    let mut p = Parser {
        name: name.to_string(),
        set: HashMap::new(),
        lex: Lexer::new(text, true, true),
        token: [empty_item(), empty_item(), empty_item()],
        peek_count: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
    };
    let root = p.parse_top()?;
    p.add_tree(name.as_bytes().to_vec(), root)?;
    Ok(Trees { trees: p.set })
}

fn is_empty_tree(l: &ListNode) -> bool {
    l.nodes.iter().all(|n| match n {
        Node::Text(t) => gostr::trim_space(t).is_empty(),
        _ => false,
    })
}

impl<'a> Parser<'a> {
    fn add_tree(&mut self, name: Vec<u8>, root: ListNode) -> PResult<()> {
        match self.set.get(&name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&root) {
                    return self.errorf(format!(
                        "template: multiple definition of template {}",
                        strconv::quote_str(&name)
                    ));
                }
            }
            _ => {
                self.set.insert(name, root);
            }
        }
        Ok(())
    }

    fn err_msg(&self, msg: &str) -> String {
        format!("template: {}:{}: {}", self.name, self.token[0].line, msg)
    }

    fn errorf<T>(&self, msg: String) -> PResult<T> {
        Err(self.err_msg(&msg))
    }

    fn next(&mut self) -> Item {
        if self.peek_count > 0 {
            self.peek_count -= 1;
        } else {
            self.token[0] = self.lex.next_item();
        }
        self.token[self.peek_count].clone()
    }

    fn backup(&mut self) {
        self.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item) {
        self.token[1] = t1;
        self.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item, t1: Item) {
        self.token[1] = t1;
        self.token[2] = t2;
        self.peek_count = 3;
    }

    fn peek(&mut self) -> Item {
        if self.peek_count > 0 {
            return self.token[self.peek_count - 1].clone();
        }
        self.peek_count = 1;
        self.token[0] = self.lex.next_item();
        self.token[0].clone()
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != expected {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return self.errorf("max expression depth exceeded".into());
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn parse_top(&mut self) -> PResult<ListNode> {
        let mut root = ListNode { nodes: Vec::new() };
        loop {
            let t = self.peek();
            if t.typ == ItemType::Eof {
                break;
            }
            if t.typ == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.backup2(delim);
            }
            let n = self.text_or_action()?;
            match n {
                Parsed::End | Parsed::Else => {
                    return self.errorf(format!("unexpected {}", n.describe()));
                }
                Parsed::Node(Some(n)) => root.nodes.push(n),
                Parsed::Node(None) => {}
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let name = self.next_non_space();
        if name.typ != ItemType::String && name.typ != ItemType::RawString {
            return self.unexpected(&name, context);
        }
        let Ok(tname) = strconv::unquote(&name.val) else {
            return self.errorf("invalid syntax".into());
        };
        self.expect(ItemType::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if !matches!(end, Parsed::End) {
            return self.errorf(format!("unexpected {} in {}", end.describe(), context));
        }
        self.add_tree(tname, list)
    }

    /// itemList: textOrAction* terminated by {{end}} or {{else}}.
    fn item_list(&mut self) -> PResult<(ListNode, Parsed)> {
        let mut list = ListNode { nodes: Vec::new() };
        while self.peek_non_space().typ != ItemType::Eof {
            let n = self.text_or_action()?;
            match n {
                Parsed::End | Parsed::Else => return Ok((list, n)),
                Parsed::Node(Some(n)) => list.nodes.push(n),
                Parsed::Node(None) => {}
            }
        }
        self.errorf("unexpected EOF".into())
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Some(Node::Text(
                token.val.into_bytes().into_boxed_slice(),
            )))),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control(),
            ItemType::Break => return self.break_control(true),
            ItemType::Continue => return self.break_control(false),
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => return self.control(Ctl::If).map(|n| Parsed::Node(Some(n))),
            ItemType::Range => return self.control(Ctl::Range).map(|n| Parsed::Node(Some(n))),
            ItemType::Template => return self.template_control(),
            ItemType::With => return self.control(Ctl::With).map(|n| Parsed::Node(Some(n))),
            _ => {}
        }
        self.backup();
        let token = self.peek();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Some(Node::Action {
            pos: token.pos,
            pipe,
        })))
    }

    fn break_control(&mut self, is_break: bool) -> PResult<Parsed> {
        let word = if is_break {
            "{{break}}"
        } else {
            "{{continue}}"
        };
        let token = self.next_non_space();
        if token.typ != ItemType::RightDelim {
            return self.unexpected(&token, word);
        }
        if self.range_depth == 0 {
            return self.errorf(format!("{word} outside {{{{range}}}}"));
        }
        Ok(Parsed::Node(Some(if is_break {
            Node::Break
        } else {
            Node::Continue
        })))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Parsed::Else);
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Else)
    }

    fn control(&mut self, ctl: Ctl) -> PResult<Node> {
        self.enter()?;
        let r = self.control_inner(ctl);
        self.leave();
        r
    }

    fn control_inner(&mut self, ctl: Ctl) -> PResult<Node> {
        let context = match ctl {
            Ctl::If => "if",
            Ctl::Range => "range",
            Ctl::With => "with",
        };
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if ctl == Ctl::Range {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if ctl == Ctl::Range {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        match next {
            Parsed::End => {}
            Parsed::Else => {
                if ctl == Ctl::If && self.peek().typ == ItemType::If {
                    self.next();
                    let n = self.control(Ctl::If)?;
                    else_list = Some(ListNode { nodes: vec![n] });
                } else if ctl == Ctl::With && self.peek().typ == ItemType::With {
                    self.next();
                    let n = self.control(Ctl::With)?;
                    else_list = Some(ListNode { nodes: vec![n] });
                } else {
                    let (l, next2) = self.item_list()?;
                    if !matches!(next2, Parsed::End) {
                        return self.errorf(format!("expected end; found {}", next2.describe()));
                    }
                    else_list = Some(l);
                }
            }
            Parsed::Node(_) => {}
        }
        self.vars.truncate(nvars);
        let pos = pipe.pos;
        Ok(match ctl {
            Ctl::If => Node::If {
                pos,
                pipe,
                list,
                else_list,
            },
            Ctl::Range => Node::Range {
                pos,
                pipe,
                list,
                else_list,
            },
            Ctl::With => Node::With {
                pos,
                pipe,
                list,
                else_list,
            },
        })
    }

    fn parse_template_name(&mut self, token: &Item, context: &str) -> PResult<Vec<u8>> {
        match token.typ {
            ItemType::String | ItemType::RawString => match strconv::unquote(&token.val) {
                Ok(s) => Ok(s),
                Err(()) => self.errorf("invalid syntax".into()),
            },
            _ => self.unexpected(token, context),
        }
    }

    fn template_control(&mut self) -> PResult<Parsed> {
        let context = "template clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, context)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, ItemType::RightDelim)?);
        }
        Ok(Parsed::Node(Some(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })))
    }

    fn block_control(&mut self) -> PResult<Parsed> {
        // {{block "name" pipeline}} list {{end}}: defines the template and
        // executes it in place. The definition is returned through the
        // pending-block list.
        let context = "block clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, context)?;
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.enter()?;
        let r = self.item_list();
        self.leave();
        let (list, end) = r?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if !matches!(end, Parsed::End) {
            return self.errorf(format!("unexpected {} in {}", end.describe(), context));
        }
        self.add_tree(name.clone(), list)?;
        Ok(Parsed::Node(Some(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })))
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe {
            pos: token.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // declarations
        loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            self.next();
            let token_after = self.peek();
            let next = self.peek_non_space();
            if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                pipe.is_assign = next.typ == ItemType::Assign;
                self.next_non_space();
                pipe.decl.push(v.val.clone());
                self.vars.push(v.val.clone());
                break;
            } else if next.typ == ItemType::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push(v.val.clone());
                self.vars.push(v.val.clone());
                if context == "range" && pipe.decl.len() < 2 {
                    let pk = self.peek_non_space().typ;
                    if matches!(
                        pk,
                        ItemType::Variable | ItemType::RightDelim | ItemType::RightParen
                    ) {
                        continue;
                    }
                    return self.errorf("range can only initialize variables".into());
                }
                return self.errorf(format!("too many declarations in {context}"));
            } else if token_after.typ == ItemType::Space {
                self.backup3(v, token_after);
                break;
            } else {
                self.backup2(v);
                break;
            }
        }
        loop {
            let token = self.next_non_space();
            if token.typ == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match token.typ {
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.errorf(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(
                Arg::Bool { .. }
                | Arg::Dot { .. }
                | Arg::Nil { .. }
                | Arg::Number { .. }
                | Arg::Str { .. },
            ) = c.args.first()
            {
                return self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        self.peek_non_space();
        let mut cmd = Command { args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.errorf("empty command".into());
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ == ItemType::Field {
            let pos = self.peek().pos;
            let mut fields = Vec::new();
            while self.peek().typ == ItemType::Field {
                let f = self.next().val;
                fields.push(f[1..].to_string());
            }
            let node = match node {
                Arg::Field { idents, .. } => {
                    let mut idents = idents;
                    idents.extend(fields);
                    Arg::Field { pos, idents }
                }
                Arg::Variable { idents, .. } => {
                    let mut idents = idents;
                    idents.extend(fields);
                    Arg::Variable { pos, idents }
                }
                Arg::Bool { .. }
                | Arg::Str { .. }
                | Arg::Number { .. }
                | Arg::Nil { .. }
                | Arg::Dot { .. } => {
                    let s = node.to_string();
                    return self.errorf(format!(
                        "unexpected . after term {}",
                        strconv::quote_str(s.as_bytes())
                    ));
                }
                other => Arg::Chain {
                    pos,
                    node: Box::new(other),
                    fields,
                },
            };
            return Ok(Some(node));
        }
        Ok(Some(node))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => match table::lookup(&token.val) {
                Some(func) => Arg::Identifier {
                    pos,
                    name: token.val.clone(),
                    func,
                },
                None => {
                    return self.errorf(format!(
                        "function {} not defined",
                        strconv::quote_str(token.val.as_bytes())
                    ));
                }
            },
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => {
                let idents: Vec<String> = token.val.split('.').map(|s| s.to_string()).collect();
                let v0 = idents.first().cloned().unwrap_or_default();
                if !self.vars.contains(&v0) {
                    return self.errorf(format!(
                        "undefined variable {}",
                        strconv::quote_str(v0.as_bytes())
                    ));
                }
                Arg::Variable { pos, idents }
            }
            ItemType::Field => Arg::Field {
                pos,
                idents: token.val[1..].split('.').map(|s| s.to_string()).collect(),
            },
            ItemType::Bool => Arg::Bool {
                pos,
                val: token.val == "true",
            },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                match new_number(&token.val, token.typ) {
                    Ok(n) => Arg::Number {
                        pos,
                        num: Box::new(n),
                    },
                    Err(e) => return self.errorf(e),
                }
            }
            ItemType::LeftParen => {
                self.enter()?;
                let r = self.pipeline("parenthesized pipeline", ItemType::RightParen);
                self.leave();
                Arg::Pipe(Box::new(r?))
            }
            ItemType::String | ItemType::RawString => match strconv::unquote(&token.val) {
                Ok(s) => Arg::Str {
                    pos,
                    quoted: token.val.clone(),
                    text: s.into_boxed_slice(),
                },
                Err(()) => return self.errorf("invalid syntax".into()),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctl {
    If,
    Range,
    With,
}

enum Parsed {
    Node(Option<Node>),
    End,
    /// {{else}}
    Else,
}

impl Parsed {
    fn describe(&self) -> &'static str {
        match self {
            Parsed::End => "{{end}}",
            Parsed::Else => "{{else}}",
            Parsed::Node(_) => "node",
        }
    }
}

fn simplify_complex(n: &mut NumberNode) {
    if n.complex.1 == 0.0 {
        n.is_float = true;
        n.float64 = n.complex.0;
        if n.float64.fract() == 0.0 && n.float64.abs() < TWO63 {
            n.is_int = true;
            n.int64 = n.float64 as i64;
        }
        if n.float64.fract() == 0.0 && n.float64 >= 0.0 && n.float64 < TWO64 {
            n.is_uint = true;
            n.uint64 = n.float64 as u64;
        }
    }
}

/// Go's newNumber.
pub(super) fn new_number(text: &str, typ: ItemType) -> Result<NumberNode, String> {
    let mut n = NumberNode {
        text: text.to_string(),
        is_int: false,
        is_uint: false,
        is_float: false,
        is_complex: false,
        int64: 0,
        uint64: 0,
        float64: 0.0,
        complex: (0.0, 0.0),
    };
    let b = text.as_bytes();
    match typ {
        ItemType::CharConstant => {
            let inner = &b[1..];
            let (r, _, tail) =
                strconv::unquote_char(inner, b'\'').map_err(|_| "invalid syntax".to_string())?;
            if tail != b"'" {
                return Err(format!("malformed character constant: {text}"));
            }
            n.int64 = r as i64;
            n.is_int = true;
            n.uint64 = r as u64;
            n.is_uint = true;
            n.float64 = r as f64;
            n.is_float = true;
            return Ok(n);
        }
        ItemType::Complex => {
            // "re+imi" / "re-imi"
            let body = &b[..b.len() - 1];
            let mut split = None;
            for i in (1..body.len()).rev() {
                if (body[i] == b'+' || body[i] == b'-')
                    && !matches!(body[i - 1], b'e' | b'E' | b'p' | b'P')
                {
                    split = Some(i);
                    break;
                }
            }
            let Some(i) = split else {
                return Err(format!("illegal number syntax: {}", strconv::quote_str(b)));
            };
            let re = strconv::parse_float(&body[..i]);
            let im = strconv::parse_float(&body[i..]);
            match (re, im) {
                (Ok(r), Ok(m)) => {
                    n.is_complex = true;
                    n.complex = (r, m);
                    simplify_complex(&mut n);
                    return Ok(n);
                }
                _ => return Err("expected integer".into()),
            }
        }
        _ => {}
    }
    if b.last() == Some(&b'i')
        && let Ok(f) = strconv::parse_float(&b[..b.len() - 1])
    {
        n.is_complex = true;
        n.complex = (0.0, f);
        simplify_complex(&mut n);
        return Ok(n);
    }
    let u = strconv::parse_uint(b, 0);
    if let Ok(u) = u {
        n.is_uint = true;
        n.uint64 = u;
    }
    if let Ok(i) = strconv::parse_int(b, 0) {
        n.is_int = true;
        n.int64 = i;
        if i == 0 {
            n.is_uint = true;
            n.uint64 = u.unwrap_or(0);
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float64 = n.int64 as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float64 = n.uint64 as f64;
    } else if let Ok(f) = strconv::parse_float(b) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", strconv::quote_str(b)));
        }
        n.is_float = true;
        n.float64 = f;
        if f.fract() == 0.0 && (-TWO63..TWO63).contains(&f) {
            n.is_int = true;
            n.int64 = f as i64;
        }
        if f.fract() == 0.0 && (0.0..TWO64).contains(&f) {
            n.is_uint = true;
            n.uint64 = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", strconv::quote_str(b)));
    }
    Ok(n)
}
