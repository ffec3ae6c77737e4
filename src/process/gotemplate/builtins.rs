//! Go's text/template builtins (and, or, not, len, index, slice, call,
//! print/printf/println, html, js, urlquery, eq/ne/lt/le/gt/ge), as
//! `template.New` installs them.

use super::func::{Ctx, FnResult, FuncDef, PT, s, too_long};
use super::value::{IntT, MapT, UintT, Value};
use super::{encoding, gostr, printf};

macro_rules! builtin {
    ($name:expr, [$($p:ident),*], $imp:expr) => {
        FuncDef { name: $name, params: &[$(PT::$p),*], variadic: None, imp: $imp, builtin: true }
    };
    ($name:expr, [$($p:ident),*], *$v:ident, $imp:expr) => {
        FuncDef { name: $name, params: &[$(PT::$p),*], variadic: Some(PT::$v), imp: $imp, builtin: true }
    };
}

// ---------------- Go builtins ----------------

pub(super) static FUNCS: &[FuncDef] = &[
    builtin!("and", [RV], *RV, |_, _| Ok(Value::Invalid)),
    builtin!("or", [RV], *RV, |_, _| Ok(Value::Invalid)),
    builtin!("not", [RV], |_, a| Ok(Value::Bool(
        !a[0].clone().indirect_interface().truth()
    ))),
    builtin!("len", [RV], b_len),
    builtin!("index", [RV], *RV, b_index),
    builtin!("slice", [RV], *RV, |_, _| Err("unreachable".into())),
    builtin!("call", [RV], *RV, b_call),
    builtin!("print", [], *Any, |_, a| printf::sprint(&a)
        .map(Value::string)
        .or_else(too_long)),
    builtin!("printf", [Str], *Any, |_, a| {
        printf::sprintf(s(&a[0]), &a[1..])
            .map(Value::string)
            .or_else(too_long)
    }),
    builtin!("println", [], *Any, |_, a| printf::sprintln(&a)
        .map(Value::string)
        .or_else(too_long)),
    builtin!("html", [], *Any, |_, a| Ok(Value::string(
        encoding::html_escape(&eval_args(&a)?)
    ))),
    builtin!("js", [], *Any, |_, a| Ok(Value::string(
        encoding::js_escape(&eval_args(&a)?)
    ))),
    builtin!("urlquery", [], *Any, |_, a| Ok(Value::string(
        encoding::query_escape(&eval_args(&a)?)
    ))),
    builtin!("eq", [RV], *RV, b_eq),
    builtin!("ne", [RV, RV], |_, a| {
        let r = eq(&a[0], &a[1..])?;
        Ok(Value::Bool(!r))
    }),
    builtin!("lt", [RV, RV], |_, a| lt(&a[0], &a[1]).map(Value::Bool)),
    builtin!("le", [RV, RV], |_, a| le(&a[0], &a[1]).map(Value::Bool)),
    builtin!("gt", [RV, RV], |_, a| le(&a[0], &a[1])
        .map(|b| Value::Bool(!b))),
    builtin!("ge", [RV, RV], |_, a| lt(&a[0], &a[1])
        .map(|b| Value::Bool(!b))),
];

/// text/template's evalArgs: fmt.Sprint with <no value> for nils.
fn eval_args(a: &[Value]) -> Result<Vec<u8>, String> {
    if a.len() == 1
        && let Value::Str(s) = &a[0]
    {
        return Ok(s.to_vec());
    }
    let args: Vec<Value> = a
        .iter()
        .map(|v| match v {
            Value::Invalid | Value::Nil => Value::str("<no value>"),
            v => v.clone(),
        })
        .collect();
    printf::sprint(&args).or_else(too_long)
}

#[allow(clippy::needless_late_init)]
fn b_len(_: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    match &a[0] {
        Value::Nil => Err("len of nil pointer".into()),
        Value::Invalid => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        Value::Str(s) => Ok(Value::int(s.len() as i64)),
        Value::List(l) => Ok(Value::int(l.items.len() as i64)),
        Value::Map(m) => Ok(Value::int(m.borrow().items.len() as i64)),
        v => Err(format!("len of type {}", v.type_name())),
    }
}

fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x: i64 = match index {
        Value::Int(i, _) => *i,
        Value::Uint(u, _) => *u as i64,
        Value::Invalid => return Err("cannot index slice/array with nil".into()),
        v => {
            return Err(format!(
                "cannot index slice/array with type {}",
                v.type_name()
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn b_index(_: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    let mut item = a[0].clone().indirect_interface();
    if item.is_invalid() {
        return Err("index of untyped nil".into());
    }
    for idx in &a[1..] {
        let idx = idx.clone().indirect_interface();
        item = match &item {
            Value::Nil => return Err("index of nil pointer".into()),
            Value::Str(s) => {
                let x = index_arg(&idx, s.len())?;
                match s.get(x) {
                    Some(b) => Value::Uint(*b as u64, UintT::Uint8),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Value::List(l) => {
                let x = index_arg(&idx, l.items.len())?;
                match l.items.get(x) {
                    Some(v) => v.clone(),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Value::Map(m) => {
                let key = match &idx {
                    Value::Str(k) => k.clone(),
                    Value::Invalid => return Err("value is nil; should be of type string".into()),
                    v => {
                        return Err(format!(
                            "value has type {}; should be string",
                            v.type_name()
                        ));
                    }
                };
                let m = m.borrow();
                match m.items.get(&key[..]) {
                    Some(v) => v.clone(),
                    None => match m.t {
                        MapT::Iface => Value::Nil,
                        MapT::Str => Value::str(""),
                    },
                }
            }
            v => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

fn b_call(_: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    let f = a[0].clone().indirect_interface();
    if f.is_invalid() {
        return Err("call of nil".into());
    }
    Err(format!("non-function of type {}", f.type_name()))
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum BK {
    Invalid,
    Bool,
    Complex,
    Int,
    Float,
    Str,
    Uint,
}

fn basic_kind(v: &Value) -> BK {
    match v {
        Value::Bool(_) => BK::Bool,
        Value::Int(..) => BK::Int,
        Value::Uint(..) => BK::Uint,
        Value::Float(_) => BK::Float,
        Value::Complex(..) => BK::Complex,
        Value::Str(_) => BK::Str,
        _ => BK::Invalid,
    }
}

fn is_nil(v: &Value) -> bool {
    match v {
        Value::Invalid | Value::Nil => true,
        Value::List(l) => l.nil,
        Value::Map(m) => m.borrow().nil,
        _ => false,
    }
}

/// Same reflect.Kind (a time.Time and a semver.Version are both structs).
fn same_kind(a: &Value, b: &Value) -> bool {
    a.kind_name() == b.kind_name()
}

#[allow(clippy::needless_late_init)]
pub(super) fn eq(arg1: &Value, rest: &[Value]) -> Result<bool, String> {
    let a1 = arg1.clone().indirect_interface();
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(&a1);
    for arg in rest {
        let a = arg.clone().indirect_interface();
        let k2 = basic_kind(&a);
        let truth;
        if k1 != k2 {
            truth = match (&a1, &a) {
                (Value::Int(x, _), Value::Uint(y, _)) => *x >= 0 && *x as u64 == *y,
                (Value::Uint(x, _), Value::Int(y, _)) => *y >= 0 && *x == *y as u64,
                _ => {
                    if !a1.is_invalid() && !a.is_invalid() {
                        return Err(format!(
                            "incompatible types for comparison: {} and {}",
                            a1.type_name(),
                            a.type_name()
                        ));
                    }
                    false
                }
            };
        } else {
            truth = match (&a1, &a) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Complex(r1, i1), Value::Complex(r2, i2)) => r1 == r2 && i1 == i2,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Int(x, _), Value::Int(y, _)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                (Value::Uint(x, _), Value::Uint(y, _)) => x == y,
                _ => {
                    if !(same_kind(&a1, &a) || a1.is_invalid() || a.is_invalid()) {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            show(&a1),
                            a1.type_name(),
                            a.type_name(),
                            show(&a)
                        ));
                    }
                    if is_nil(&a1) || is_nil(&a) {
                        is_nil(&a) == is_nil(&a1)
                    } else {
                        match (&a1, &a) {
                            (Value::Time(t1), Value::Time(t2)) => t1.same(t2),
                            // Pointers by identity, structs by their fields.
                            (Value::Semver(x, true), Value::Semver(y, true)) => {
                                std::rc::Rc::ptr_eq(x, y)
                            }
                            (Value::Semver(x, false), Value::Semver(y, false)) => x == y,
                            // Comparable structs of different types.
                            (Value::Time(_), Value::Semver(..))
                            | (Value::Semver(..), Value::Time(_)) => false,
                            _ => {
                                return Err(format!(
                                    "non-comparable type {}: {}",
                                    show(&a),
                                    a.type_name()
                                ));
                            }
                        }
                    }
                }
            };
        }
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn show(v: &Value) -> String {
    match printf::sprint_v(v) {
        Ok(b) => gostr::to_string_lossy(&b),
        Err(_) => "...".into(),
    }
}

fn b_eq(_: &mut Ctx<'_>, a: Vec<Value>) -> FnResult {
    eq(&a[0], &a[1..]).map(Value::Bool)
}

fn lt(a1: &Value, a2: &Value) -> Result<bool, String> {
    let a1 = a1.clone().indirect_interface();
    let k1 = basic_kind(&a1);
    if k1 == BK::Invalid {
        return Err("invalid type for comparison".into());
    }
    let a2 = a2.clone().indirect_interface();
    let k2 = basic_kind(&a2);
    if k2 == BK::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (&a1, &a2) {
            (Value::Int(x, _), Value::Uint(y, _)) => Ok(*x < 0 || (*x as u64) < *y),
            (Value::Uint(x, _), Value::Int(y, _)) => Ok(*y >= 0 && *x < *y as u64),
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                a1.type_name(),
                a2.type_name()
            )),
        };
    }
    Ok(match (&a1, &a2) {
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Int(x, _), Value::Int(y, _)) => x < y,
        (Value::Str(x), Value::Str(y)) => x < y,
        (Value::Uint(x, _), Value::Uint(y, _)) => x < y,
        _ => return Err("invalid type for comparison".into()),
    })
}

fn le(a1: &Value, a2: &Value) -> Result<bool, String> {
    let l = lt(a1, a2)?;
    if l {
        return Ok(true);
    }
    eq(a1, std::slice::from_ref(a2))
}

#[allow(dead_code)]
pub(super) fn int_kind(v: &Value) -> Option<IntT> {
    match v {
        Value::Int(_, t) => Some(*t),
        _ => None,
    }
}
