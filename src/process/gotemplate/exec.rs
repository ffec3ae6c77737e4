//! Executor: a port of Go's text/template/exec.go over the value model.

use std::collections::HashMap;

use super::func::{BUDGET_MSG, Ctx, FuncDef, PT};
use super::limits::{MAX_OUTPUT, MAX_STRING, MAX_TEMPLATE_DEPTH};
use super::parse::{Arg, Command, ListNode, Node, NumberNode, Pipe};
use super::regexp::Cache;
use super::table::{self, Method};
use super::value::{IntT, MapT, Value};
use super::{gostr, printf, strconv};

enum Flow {
    Err(String),
    Break,
    Continue,
}

impl From<String> for Flow {
    fn from(s: String) -> Flow {
        Flow::Err(s)
    }
}

type R<T> = Result<T, Flow>;

#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Pos(usize, &'t str),
    Arg(&'t Arg),
    Pipe(&'t Pipe),
}

/// What execution reads of a parsed template.
#[derive(Clone, Copy)]
pub(super) struct Program<'t> {
    pub name: &'t str,
    pub text: &'t str,
    pub trees: &'t HashMap<Vec<u8>, ListNode>,
    pub regex_cache: &'t Cache,
}

struct State<'t> {
    tmpl: Program<'t>,
    name: &'t [u8],
    vars: Vec<(&'t str, Value)>,
    depth: usize,
    out: Vec<u8>,
    ctx: Ctx<'t>,
    at: At<'t>,
}

/// Runs `t` over `dot`; the error is Go's message.
pub(super) fn execute(t: Program<'_>, dot: Value) -> Result<Vec<u8>, String> {
    let mut s = State {
        tmpl: t,
        name: t.name.as_bytes(),
        vars: vec![("$", dot.clone())],
        depth: 0,
        out: Vec::new(),
        ctx: Ctx::new(t.regex_cache),
        at: At::None,
    };
    let Some(root) = t.trees.get(t.name.as_bytes()) else {
        return Err(format!(
            "template: {}: {} is an incomplete or empty template",
            t.name,
            strconv::quote_str(t.name.as_bytes())
        ));
    };
    match s.walk_list(&dot, root) {
        Ok(()) => Ok(s.out),
        Err(Flow::Err(e)) => Err(e),
        Err(Flow::Break) | Err(Flow::Continue) => Ok(s.out),
    }
}

fn pt_name(t: PT) -> &'static str {
    match t {
        PT::Str => "string",
        PT::Int => "int",
        PT::Float => "float64",
        PT::Bool => "bool",
        PT::Map => "map[string]interface {}",
        PT::Time => "time.Time",
        PT::Version => "*semver.Version",
        PT::Any => "interface {}",
        PT::RV => "reflect.Value",
    }
}

fn value_type_for_msg(v: &Value) -> String {
    match v {
        Value::Nil => "interface {}".into(),
        v => v.type_name(),
    }
}

impl<'t> State<'t> {
    fn errorf(&self, msg: impl Into<String>) -> Flow {
        let msg = msg.into();
        let name = String::from_utf8_lossy(self.name).into_owned();
        let (pos, ctx): (Option<usize>, String) = match self.at {
            At::None => (None, String::new()),
            At::Pos(p, c) => (Some(p), c.to_string()),
            At::Arg(a) => (Some(a.pos()), a.to_string()),
            At::Pipe(p) => (Some(p.pos), p.to_string()),
        };
        match pos {
            None => Flow::Err(format!("template: {name}: {msg}")),
            Some(pos) => {
                let text = self.tmpl.text.as_bytes();
                let pos = pos.min(text.len());
                let before = &text[..pos];
                let line = 1 + before.iter().filter(|b| **b == b'\n').count();
                let col = match before.iter().rposition(|b| *b == b'\n') {
                    None => pos,
                    Some(i) => pos - (i + 1),
                };
                Flow::Err(format!(
                    "template: {}:{}:{}: executing {} at <{}>: {}",
                    self.tmpl.name,
                    line,
                    col,
                    strconv::quote_str(self.name),
                    ctx,
                    msg
                ))
            }
        }
    }

    fn step(&mut self) -> R<()> {
        self.ctx.charge(1)?;
        Ok(())
    }

    fn write(&mut self, b: &[u8]) -> R<()> {
        if self.out.len() + b.len() > MAX_OUTPUT {
            return Err(Flow::Err(format!(
                "template: {}: output exceeds {} bytes",
                String::from_utf8_lossy(self.name),
                MAX_OUTPUT
            )));
        }
        self.out.extend_from_slice(b);
        self.ctx.charge_bytes(b.len())?;
        Ok(())
    }

    fn mark(&self) -> usize {
        self.vars.len()
    }

    fn pop(&mut self, mark: usize) {
        self.vars.truncate(mark);
    }

    fn set_var(&mut self, name: &str, v: Value) -> R<()> {
        for i in (0..self.vars.len()).rev() {
            if self.vars[i].0 == name {
                self.vars[i].1 = v;
                return Ok(());
            }
        }
        Err(self.errorf(format!("undefined variable: {name}")))
    }

    fn set_top_var(&mut self, n: usize, v: Value) {
        let l = self.vars.len();
        if n <= l {
            self.vars[l - n].1 = v;
        }
    }

    fn var_value(&self, name: &str) -> R<Value> {
        for i in (0..self.vars.len()).rev() {
            if self.vars[i].0 == name {
                return Ok(self.vars[i].1.clone());
            }
        }
        Err(self.errorf(format!("undefined variable: {name}")))
    }

    fn walk_list(&mut self, dot: &Value, list: &'t ListNode) -> R<()> {
        for n in &list.nodes {
            self.walk(dot, n)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> R<()> {
        self.step()?;
        self.ctx.check_stack()?;
        match node {
            Node::Text(t) => self.write(t),
            Node::Action { pipe, .. } => {
                self.at = At::Pipe(pipe);
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at = At::Pipe(pipe);
                    self.print_value(&v)?;
                }
                Ok(())
            }
            Node::If {
                pipe,
                list,
                else_list,
                ..
            } => self.walk_if_or_with(false, dot, pipe, list, else_list.as_ref()),
            Node::With {
                pipe,
                list,
                else_list,
                ..
            } => self.walk_if_or_with(true, dot, pipe, list, else_list.as_ref()),
            Node::Range {
                pipe,
                list,
                else_list,
                ..
            } => self.walk_range(dot, pipe, list, else_list.as_ref()),
            Node::Template { pos, name, pipe } => {
                self.walk_template(dot, *pos, name, pipe.as_ref())
            }
            Node::Break => Err(Flow::Break),
            Node::Continue => Err(Flow::Continue),
        }
    }

    fn print_value(&mut self, v: &Value) -> R<()> {
        let bytes = match v {
            Value::Invalid => b"<no value>".to_vec(),
            Value::Str(s) => {
                let s = s.clone();
                return self.write(&s);
            }
            v => match printf::sprint(std::slice::from_ref(v)) {
                Ok(b) => b,
                Err(_) => {
                    return Err(self.errorf("printed value is too large or too deeply nested"));
                }
            },
        };
        self.write(&bytes)
    }

    fn walk_if_or_with(
        &mut self,
        is_with: bool,
        dot: &Value,
        pipe: &'t Pipe,
        list: &'t ListNode,
        else_list: Option<&'t ListNode>,
    ) -> R<()> {
        let mark = self.mark();
        let r = (|| -> R<()> {
            let val = self.eval_pipeline(dot, pipe)?;
            let truth = val.clone().indirect_interface().truth();
            if truth {
                if is_with {
                    self.walk_list(&val, list)
                } else {
                    self.walk_list(dot, list)
                }
            } else if let Some(e) = else_list {
                self.walk_list(dot, e)
            } else {
                Ok(())
            }
        })();
        self.pop(mark);
        r
    }

    fn walk_range(
        &mut self,
        dot: &Value,
        pipe: &'t Pipe,
        list: &'t ListNode,
        else_list: Option<&'t ListNode>,
    ) -> R<()> {
        let mark0 = self.mark();
        let r = self.walk_range_inner(dot, pipe, list, else_list);
        self.pop(mark0);
        match r {
            Err(Flow::Break) => Ok(()),
            r => r,
        }
    }

    fn one_iteration(
        &mut self,
        pipe: &'t Pipe,
        list: &'t ListNode,
        mark: usize,
        index: Value,
        elem: Value,
    ) -> R<()> {
        self.step()?;
        let nd = pipe.decl.len();
        if nd > 0 {
            if pipe.is_assign {
                if nd > 1 {
                    self.set_var(&pipe.decl[0], index.clone())?;
                } else {
                    self.set_var(&pipe.decl[0], elem.clone())?;
                }
            } else {
                self.set_top_var(1, elem.clone());
            }
        }
        if nd > 1 {
            if pipe.is_assign {
                self.set_var(&pipe.decl[1], elem.clone())?;
            } else {
                self.set_top_var(2, index);
            }
        }
        let r = self.walk_list(&elem, list);
        self.pop(mark);
        match r {
            Err(Flow::Continue) => Ok(()),
            r => r,
        }
    }

    fn walk_range_inner(
        &mut self,
        dot: &Value,
        pipe: &'t Pipe,
        list: &'t ListNode,
        else_list: Option<&'t ListNode>,
    ) -> R<()> {
        self.at = At::Pipe(pipe);
        let val = self.eval_pipeline(dot, pipe)?;
        let mark = self.mark();
        let mut ran = false;
        match &val {
            Value::Int(n, t) => {
                if pipe.decl.len() > 1 {
                    return Err(self.errorf(format!(
                        "can't use {} to iterate over more than one variable",
                        show_v(&val)
                    )));
                }
                let t = *t;
                let n = *n;
                let mut i: i64 = 0;
                while i < n {
                    ran = true;
                    self.one_iteration(pipe, list, mark, Value::Invalid, Value::Int(i, t))?;
                    i += 1;
                }
            }
            Value::Uint(n, t) => {
                if pipe.decl.len() > 1 {
                    return Err(self.errorf(format!(
                        "can't use {} to iterate over more than one variable",
                        show_v(&val)
                    )));
                }
                let (n, t) = (*n, *t);
                let mut i: u64 = 0;
                while i < n {
                    ran = true;
                    self.one_iteration(pipe, list, mark, Value::Invalid, Value::Uint(i, t))?;
                    i += 1;
                }
            }
            Value::List(l) => {
                let l = l.clone();
                for (i, e) in l.items.iter().enumerate() {
                    ran = true;
                    self.one_iteration(pipe, list, mark, Value::int(i as i64), e.clone())?;
                }
            }
            Value::Map(m) => {
                let snapshot: Vec<(Vec<u8>, Value)> = m
                    .borrow()
                    .items
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.ctx.charge(snapshot.len() as u64)?;
                for (k, v) in snapshot {
                    ran = true;
                    self.one_iteration(pipe, list, mark, Value::string(k), v)?;
                }
            }
            Value::Invalid => {}
            _ => {
                return Err(self.errorf(format!("range can't iterate over {}", show_v(&val))));
            }
        }
        if !ran && let Some(e) = else_list {
            return self.walk_list(dot, e);
        }
        Ok(())
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &'t [u8],
        pipe: Option<&'t Pipe>,
    ) -> R<()> {
        self.at = At::Pos(pos, "template");
        let Some(tree) = self.tmpl.trees.get(name) else {
            return Err(self.errorf(format!("template {} not defined", strconv::quote_str(name))));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.errorf(format!(
                "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
            )));
        }
        let newdot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Invalid,
        };
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", newdot.clone())]);
        let saved_name = std::mem::replace(&mut self.name, name);
        self.depth += 1;
        let r = self.walk_list(&newdot, tree);
        self.depth -= 1;
        self.name = saved_name;
        self.vars = saved_vars;
        match r {
            Err(Flow::Break) | Err(Flow::Continue) => Ok(()),
            r => r,
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t Pipe) -> R<Value> {
        self.ctx.check_stack()?;
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(v.indirect_interface());
        }
        let value = value.unwrap_or(Value::Invalid);
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(var, value.clone())?;
            } else {
                self.vars.push((var.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &'t [Arg], final_: &Option<Value>) -> R<()> {
        if args.len() > 1 || final_.is_some() {
            return Err(self.errorf(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Command, final_: Option<Value>) -> R<Value> {
        self.step()?;
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at = At::Arg(first);
                return self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, final_);
            }
            Arg::Chain { .. } => return self.eval_chain_node(dot, first, &cmd.args, final_),
            Arg::Identifier { func, name, .. } => {
                self.at = At::Arg(first);
                return self.eval_call(dot, func, name, None, first, &cmd.args, final_);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &final_)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { .. } => return self.eval_variable_node(dot, first, &cmd.args, final_),
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(&cmd.args, &final_)?;
        match first {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.errorf("nil is not a command")),
            Arg::Number { num, .. } => self.ideal_constant(num),
            Arg::Str { text, .. } => Ok(Value::str(&text[..])),
            _ => Err(self.errorf(format!(
                "can't evaluate command {}",
                strconv::quote_str(first.to_string().as_bytes())
            ))),
        }
    }

    fn ideal_constant(&self, n: &NumberNode) -> R<Value> {
        let t = n.text.as_bytes();
        let is_hex_int = t.len() > 2
            && t[0] == b'0'
            && (t[1] == b'x' || t[1] == b'X')
            && !n.text.contains(['p', 'P']);
        let is_rune = t.first() == Some(&b'\'');
        if n.is_complex {
            return Ok(Value::Complex(n.complex.0, n.complex.1));
        }
        if n.is_float && !is_hex_int && !is_rune && n.text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float64));
        }
        if n.is_int {
            return Ok(Value::int(n.int64));
        }
        if n.is_uint {
            return Err(self.errorf(format!("{} overflows int", n.text)));
        }
        Ok(Value::Invalid)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Value,
        chain: &'t Arg,
        args: &'t [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        self.at = At::Arg(chain);
        let Arg::Chain { node, fields, .. } = chain else {
            return Err(self.errorf("internal error: not a chain"));
        };
        if fields.is_empty() {
            return Err(self.errorf("internal error: no fields in evalChainNode"));
        }
        if let Arg::Nil { .. } = node.as_ref() {
            return Err(self.errorf(format!("indirection through explicit nil in {chain}")));
        }
        let pipe = self.eval_arg(dot, PT::Any, node, true)?;
        self.eval_field_chain(dot, pipe, chain, fields, args, final_)
    }

    fn eval_variable_node(
        &mut self,
        dot: &Value,
        var: &'t Arg,
        args: &'t [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        self.at = At::Arg(var);
        let Arg::Variable { idents, .. } = var else {
            return Err(self.errorf("internal error: not a variable"));
        };
        let value = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            if !args.is_empty() {
                self.not_a_function(args, &final_)?;
            } else if final_.is_some() {
                return Err(self.errorf(format!("can't give argument to non-function {var}")));
            }
            return Ok(value);
        }
        self.eval_field_chain(dot, value, var, &idents[1..], args, final_)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut receiver: Value,
        node: &'t Arg,
        idents: &'t [String],
        args: &'t [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            receiver = self.eval_field(dot, ident, node, &[], None, receiver)?;
        }
        self.eval_field(dot, &idents[n - 1], node, args, final_, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        field: &'t str,
        node: &'t Arg,
        args: &'t [Arg],
        final_: Option<Value>,
        receiver: Value,
    ) -> R<Value> {
        self.step()?;
        self.at = At::Arg(node);
        match &receiver {
            Value::Invalid => return Ok(Value::Invalid),
            Value::Nil => {
                return Err(self.errorf(format!("nil pointer evaluating interface {{}}.{field}")));
            }
            _ => {}
        }
        match table::method(&receiver, field) {
            Method::Found(m) => {
                return self.eval_call(dot, m, field, Some(receiver.clone()), node, args, final_);
            }
            Method::Missing(e) => return Err(self.errorf(e)),
            Method::Fields => {}
        }
        let has_args = args.len() > 1 || final_.is_some();
        if let Value::Map(m) = &receiver {
            if has_args {
                return Err(self.errorf(format!("{field} is not a method but has arguments")));
            }
            let m = m.borrow();
            return Ok(m
                .items
                .get(field.as_bytes())
                .cloned()
                .unwrap_or(Value::Invalid));
        }
        Err(self.errorf(format!(
            "can't evaluate field {field} in type {}",
            receiver.type_name()
        )))
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_call(
        &mut self,
        dot: &Value,
        fun: &'static FuncDef,
        name: &'t str,
        receiver: Option<Value>,
        node: &'t Arg,
        args: &'t [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let args: &'t [Arg] = if args.is_empty() { args } else { &args[1..] };
        let num_in = args.len() + usize::from(final_.is_some());
        let num_fixed;
        if fun.variadic.is_some() {
            num_fixed = fun.params.len();
            if num_in < num_fixed {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    fun.params.len(),
                    args.len()
                )));
            }
        } else {
            num_fixed = args.len();
            if num_in != fun.params.len() {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want {} got {}",
                    fun.params.len(),
                    num_in
                )));
            }
        }
        if fun.builtin && (fun.name == "and" || fun.name == "or") {
            let want = fun.name == "or";
            let mut v = Value::Invalid;
            for a in args {
                v = self.eval_arg(dot, PT::RV, a, false)?;
                if v.clone().indirect_interface().truth() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = f;
            }
            return Ok(v);
        }
        let mut argv: Vec<Value> = Vec::with_capacity(num_in + 1);
        if let Some(r) = receiver {
            argv.push(r);
        }
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            let v = self.eval_arg(dot, fun.params[i], &args[i], false)?;
            argv.push(v);
            i += 1;
        }
        if let Some(vt) = fun.variadic {
            while i < args.len() {
                let v = self.eval_arg(dot, vt, &args[i], false)?;
                argv.push(v);
                i += 1;
            }
        }
        if let Some(f) = final_ {
            let t = match fun.variadic {
                Some(vt) => {
                    if num_in - 1 < num_fixed {
                        fun.params[num_in - 1]
                    } else {
                        vt
                    }
                }
                None => fun.params[fun.params.len() - 1],
            };
            let v = self.validate_type(f, t)?;
            argv.push(v);
        }
        self.at = At::Arg(node);
        // work accounting for the bytes a function reads
        let w: usize = argv.iter().map(|v| v.weight()).sum();
        self.ctx.charge_bytes(w)?;
        let r = (fun.imp)(&mut self.ctx, argv);
        if self.ctx.exhausted() {
            return Err(Flow::Err(BUDGET_MSG.to_string()));
        }
        match r {
            Ok(v) => {
                if let Value::Str(s) = &v
                    && s.len() > MAX_STRING
                {
                    return Err(self.errorf(format!(
                        "error calling {name}: result exceeds the size limit"
                    )));
                }
                self.ctx.charge_bytes(v.weight())?;
                Ok(v)
            }
            Err(e) => {
                self.at = At::Arg(node);
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }

    fn validate_type(&self, value: Value, typ: PT) -> R<Value> {
        match value {
            Value::Invalid => match typ {
                PT::Any => Ok(Value::Nil),
                PT::RV => Ok(Value::Invalid),
                PT::Map => Ok(Value::nil_map()),
                // A nil *semver.Version.
                PT::Version => Ok(Value::Nil),
                _ => Err(self.errorf(format!("invalid value; expected {}", pt_name(typ)))),
            },
            v => {
                let ok = match typ {
                    PT::Any | PT::RV => true,
                    PT::Str => matches!(v, Value::Str(_)),
                    PT::Int => matches!(v, Value::Int(_, IntT::Int)),
                    PT::Float => matches!(v, Value::Float(_)),
                    PT::Bool => matches!(v, Value::Bool(_)),
                    PT::Map => match &v {
                        Value::Map(m) => m.borrow().t == MapT::Iface,
                        _ => false,
                    },
                    PT::Time => matches!(v, Value::Time(_)),
                    PT::Version => matches!(v, Value::Semver(_, true)),
                };
                if ok {
                    Ok(v)
                } else {
                    Err(self.errorf(format!(
                        "wrong type for value; expected {}; got {}",
                        pt_name(typ),
                        value_type_for_msg(&v)
                    )))
                }
            }
        }
    }

    /// evalArg. `chain_receiver`: called for the receiver of a chain
    /// (Go passes a nil type there: no validation).
    fn eval_arg(&mut self, dot: &Value, typ: PT, n: &'t Arg, chain_receiver: bool) -> R<Value> {
        self.step()?;
        self.at = At::Arg(n);
        let validate = |s: &Self, v: Value| -> R<Value> {
            if chain_receiver {
                Ok(v)
            } else {
                s.validate_type(v, typ)
            }
        };
        match n {
            Arg::Dot { .. } => return validate(self, dot.clone()),
            Arg::Nil { .. } => {
                return match typ {
                    PT::Any => Ok(Value::Nil),
                    PT::RV => Ok(Value::Invalid),
                    PT::Map => Ok(Value::nil_map()),
                    PT::Version => Ok(Value::Nil),
                    _ => Err(self.errorf(format!("cannot assign nil to {}", pt_name(typ)))),
                };
            }
            Arg::Field { idents, .. } => {
                let v = self.eval_field_chain(
                    dot,
                    dot.clone(),
                    n,
                    idents,
                    std::slice::from_ref(n),
                    None,
                )?;
                return validate(self, v);
            }
            Arg::Variable { .. } => {
                let v = self.eval_variable_node(dot, n, &[], None)?;
                return validate(self, v);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return validate(self, v);
            }
            Arg::Identifier { func, name, .. } => {
                let v = self.eval_call(dot, func, name, None, n, &[], None)?;
                return validate(self, v);
            }
            Arg::Chain { .. } => {
                let v = self.eval_chain_node(dot, n, &[], None)?;
                return validate(self, v);
            }
            _ => {}
        }
        match typ {
            PT::Bool => match n {
                Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
                _ => Err(self.errorf(format!("expected bool; found {n}"))),
            },
            PT::Float => match n {
                Arg::Number { num, .. } if num.is_float => Ok(Value::Float(num.float64)),
                _ => Err(self.errorf(format!("expected float; found {n}"))),
            },
            PT::Int => match n {
                Arg::Number { num, .. } if num.is_int => Ok(Value::int(num.int64)),
                _ => Err(self.errorf(format!("expected integer; found {n}"))),
            },
            PT::Str => match n {
                Arg::Str { text, .. } => Ok(Value::str(&text[..])),
                _ => Err(self.errorf(format!("expected string; found {n}"))),
            },
            PT::Any | PT::RV => match n {
                Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
                Arg::Number { num, .. } => self.ideal_constant(num),
                Arg::Str { text, .. } => Ok(Value::str(&text[..])),
                _ => Err(self.errorf(format!(
                    "can't handle assignment of {n} to empty interface argument"
                ))),
            },
            PT::Map | PT::Time | PT::Version => {
                Err(self.errorf(format!("can't handle {n} for arg of type {}", pt_name(typ))))
            }
        }
    }
}

fn show_v(v: &Value) -> String {
    match printf::sprint_v(v) {
        Ok(b) => gostr::to_string_lossy(&b),
        Err(_) => "<value>".into(),
    }
}
