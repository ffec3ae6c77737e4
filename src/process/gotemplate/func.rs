//! What a template function is, shared by the function libraries and the
//! interpreter: its definition ([`FuncDef`]: name, Go parameter kinds
//! [`PT`], implementation), its result ([`FnResult`]), the per-execution
//! context it receives ([`Ctx`]: work and stack budget, regex cache), and
//! the argument helpers the implementations use.

use super::limits::{MAX_STACK_BYTES, MAX_STEPS, MAX_STRING};
use super::printf;
use super::regexp::Cache;
use super::value::Value;

/// Per-execution context handed to functions.
pub(super) struct Ctx<'t> {
    steps: u64,
    pub regex_cache: &'t Cache,
    stack_base: usize,
}

/// Error raised inside a function (Go's error value / recovered panic).
pub(super) type FnResult = Result<Value, String>;

pub(super) const BUDGET_MSG: &str = "template execution exceeded its work budget";
pub(super) const STACK_MSG: &str = "template execution exceeded its stack budget";

impl<'t> Ctx<'t> {
    /// A fresh budget; the native stack is measured from the caller's frame.
    #[inline(always)]
    pub(super) fn new(regex_cache: &'t Cache) -> Ctx<'t> {
        Ctx {
            steps: 0,
            regex_cache,
            stack_base: stack_addr(),
        }
    }

    /// Charges `n` units of work; fails once the budget is spent.
    pub(super) fn charge(&mut self, n: u64) -> Result<(), String> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > MAX_STEPS {
            return Err(BUDGET_MSG.to_string());
        }
        Ok(())
    }

    /// Whether the work budget is spent (functions may swallow the error).
    pub(super) fn exhausted(&self) -> bool {
        self.steps > MAX_STEPS
    }

    /// Charges for processing `bytes` bytes.
    pub(super) fn charge_bytes(&mut self, bytes: usize) -> Result<(), String> {
        self.charge(1 + (bytes as u64) / 256)
    }

    pub(super) fn check_stack(&self) -> Result<(), String> {
        let here = stack_addr();
        if here.abs_diff(self.stack_base) > MAX_STACK_BYTES {
            return Err(STACK_MSG.to_string());
        }
        Ok(())
    }
}

#[inline(never)]
fn stack_addr() -> usize {
    let x = 0u8;
    std::hint::black_box(&x) as *const u8 as usize
}

/// Go parameter types that matter for argument checking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PT {
    Str,
    Int,
    Float,
    Bool,
    /// map[string]interface{}
    Map,
    Time,
    /// *semver.Version (Masterminds')
    Version,
    /// interface{}
    Any,
    /// reflect.Value (Go's builtins)
    RV,
}

pub(super) type Imp = fn(&mut Ctx<'_>, Vec<Value>) -> FnResult;

pub(super) struct FuncDef {
    pub name: &'static str,
    pub params: &'static [PT],
    pub variadic: Option<PT>,
    pub imp: Imp,
    pub builtin: bool,
}

impl std::fmt::Debug for FuncDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "func {}", self.name)
    }
}

// ---------------- argument helpers for implementations ----------------

pub(super) fn s(v: &Value) -> &[u8] {
    match v {
        Value::Str(s) => s,
        _ => b"",
    }
}

pub(super) fn i(v: &Value) -> i64 {
    match v {
        Value::Int(i, _) => *i,
        _ => 0,
    }
}

pub(super) fn too_long<T>(_: printf::TooLong) -> Result<T, String> {
    Err("result exceeds the size limit".to_string())
}

pub(super) fn check_len(n: usize) -> Result<(), String> {
    if n > MAX_STRING {
        return Err("result exceeds the size limit".to_string());
    }
    Ok(())
}
