//! The dynamic value model: a small mirror of the Go types that templates,
//! Go's builtins and sprig produce.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::version::{self, Version};

pub(super) type Str = Rc<[u8]>;

/// Go integer types that can appear (the full set is kept for type names) (the named time types print via String()).
#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum IntT {
    Int,
    Int64,
    Int32,
    Month,
    Weekday,
    Duration,
}

#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum UintT {
    Uint8,
    Uint32,
    Uint,
    Uint64,
}

/// Element type of a slice.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ListT {
    /// []interface {}
    Iface,
    /// []string
    Str,
    /// []int
    Int,
    /// [][]interface {}
    ListIface,
}

/// Element type of a map (keys are always strings).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum MapT {
    /// map[string]interface {}
    Iface,
    /// map[string]string
    Str,
}

pub(super) struct List {
    pub items: Vec<Value>,
    pub t: ListT,
    /// A nil slice (prints as [], marshals as null).
    pub nil: bool,
}

pub(super) struct Map {
    pub items: BTreeMap<Vec<u8>, Value>,
    pub t: MapT,
    pub nil: bool,
}

pub(super) type MapRef = Rc<RefCell<Map>>;

/// A Go time.Time: an instant, its location, and the monotonic clock
/// reading `time.Now()` adds.
#[derive(Clone)]
pub(super) struct GoTime {
    pub t: super::super::gotime::GoTime,
    pub loc: super::super::gotime::Location,
    pub mono: Option<i64>,
}

impl GoTime {
    /// Go's `==` on two time.Time values (the same instant, location and
    /// monotonic reading; locations compare by name here, not by pointer).
    pub(super) fn same(&self, other: &GoTime) -> bool {
        self.t == other.t && self.loc.name() == other.loc.name() && self.mono == other.mono
    }
}

#[derive(Clone)]
pub(super) enum Value {
    /// The zero reflect.Value (missing map key, nil pipeline result).
    Invalid,
    /// A nil interface{} held in a container or returned by a function.
    Nil,
    Bool(bool),
    Int(i64, IntT),
    Uint(u64, UintT),
    Float(f64),
    Complex(f64, f64),
    Str(Str),
    List(Rc<List>),
    Map(MapRef),
    Time(Rc<GoTime>),
    /// Masterminds' semver version: a `*semver.Version` when the flag is
    /// set (what `semver` returns), else a `semver.Version` (what its
    /// `IncMajor`-like methods return; not addressable, so without the
    /// pointer methods).
    Semver(Rc<Version>, bool),
}

impl Value {
    pub(super) fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Str(Rc::from(s.as_ref()))
    }

    pub(super) fn string(s: Vec<u8>) -> Value {
        Value::Str(Rc::from(s.into_boxed_slice()))
    }

    pub(super) fn int(i: i64) -> Value {
        Value::Int(i, IntT::Int)
    }

    pub(super) fn int64(i: i64) -> Value {
        Value::Int(i, IntT::Int64)
    }

    pub(super) fn list(items: Vec<Value>, t: ListT) -> Value {
        Value::List(Rc::new(List {
            items,
            t,
            nil: false,
        }))
    }

    pub(super) fn nil_list(t: ListT) -> Value {
        Value::List(Rc::new(List {
            items: Vec::new(),
            t,
            nil: true,
        }))
    }

    pub(super) fn str_list(items: Vec<Vec<u8>>) -> Value {
        Value::list(items.into_iter().map(Value::string).collect(), ListT::Str)
    }

    pub(super) fn map(items: BTreeMap<Vec<u8>, Value>, t: MapT) -> Value {
        Value::Map(Rc::new(RefCell::new(Map {
            items,
            t,
            nil: false,
        })))
    }

    pub(super) fn nil_map() -> Value {
        Value::Map(Rc::new(RefCell::new(Map {
            items: BTreeMap::new(),
            t: MapT::Iface,
            nil: true,
        })))
    }

    pub(super) fn is_invalid(&self) -> bool {
        matches!(self, Value::Invalid)
    }

    /// Go's indirectInterface: a nil interface becomes the zero Value.
    pub(super) fn indirect_interface(self) -> Value {
        match self {
            Value::Nil => Value::Invalid,
            v => v,
        }
    }

    /// fmt's %T.
    pub(super) fn type_name(&self) -> String {
        match self {
            Value::Invalid | Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_, t) => match t {
                IntT::Int => "int",
                IntT::Int64 => "int64",
                IntT::Int32 => "int32",
                IntT::Month => "time.Month",
                IntT::Weekday => "time.Weekday",
                IntT::Duration => "time.Duration",
            }
            .into(),
            Value::Uint(_, t) => match t {
                UintT::Uint8 => "uint8",
                UintT::Uint32 => "uint32",
                UintT::Uint => "uint",
                UintT::Uint64 => "uint64",
            }
            .into(),
            Value::Float(_) => "float64".into(),
            Value::Complex(..) => "complex128".into(),
            Value::Str(_) => "string".into(),
            Value::List(l) => list_type_name(l.t).into(),
            Value::Map(m) => map_type_name(m.borrow().t).into(),
            Value::Time(_) => "time.Time".into(),
            Value::Semver(_, p) => version::type_name(*p).into(),
        }
    }

    /// reflect.Kind's String().
    pub(super) fn kind_name(&self) -> &'static str {
        match self {
            Value::Invalid | Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_, t) => match t {
                IntT::Int | IntT::Month | IntT::Weekday => "int",
                IntT::Int64 | IntT::Duration => "int64",
                IntT::Int32 => "int32",
            },
            Value::Uint(_, t) => match t {
                UintT::Uint8 => "uint8",
                UintT::Uint32 => "uint32",
                UintT::Uint => "uint",
                UintT::Uint64 => "uint64",
            },
            Value::Float(_) => "float64",
            Value::Complex(..) => "complex128",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Time(_) => "struct",
            Value::Semver(_, true) => "ptr",
            Value::Semver(_, false) => "struct",
        }
    }

    /// text/template's isTrue (after indirectInterface). Returns None for
    /// values without a truth value (none exist in this model).
    pub(super) fn truth(&self) -> bool {
        match self {
            Value::Invalid | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i, _) => *i != 0,
            Value::Uint(u, _) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Complex(r, i) => *r != 0.0 || *i != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => !m.borrow().items.is_empty(),
            Value::Time(_) | Value::Semver(..) => true,
        }
    }

    /// Approximate size in bytes, for work accounting.
    pub(super) fn weight(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::List(l) => l.items.len() * 8,
            Value::Map(m) => m.borrow().items.len() * 16,
            _ => 8,
        }
    }
}

pub(super) fn list_type_name(t: ListT) -> &'static str {
    match t {
        ListT::Iface => "[]interface {}",
        ListT::Str => "[]string",
        ListT::Int => "[]int",
        ListT::ListIface => "[][]interface {}",
    }
}

pub(super) fn map_type_name(t: MapT) -> &'static str {
    match t {
        MapT::Iface => "map[string]interface {}",
        MapT::Str => "map[string]string",
    }
}

/// Converts the caller's data into template values: objects become
/// map[string]interface{}, arrays []interface{}, integral numbers int,
/// other numbers float64, null nil.
pub(super) fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::int(i)
            } else if let Some(u) = n.as_u64() {
                Value::Uint(u, UintT::Uint64)
            } else {
                Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::str(s.as_bytes()),
        serde_json::Value::Array(a) => Value::list(a.iter().map(from_json).collect(), ListT::Iface),
        serde_json::Value::Object(o) => {
            let mut m = BTreeMap::new();
            for (k, v) in o {
                m.insert(k.as_bytes().to_vec(), from_json(v));
            }
            Value::map(m, MapT::Iface)
        }
    }
}
