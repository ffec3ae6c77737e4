//! Grafana's extras to the function map of Loki's `template` stage:
//! strings functions under Go's names, hashes, and the regex replacements.

use super::func::{FuncDef, PT, check_len, i, s};
use super::value::Value;
use super::{encoding, goregex, gostr};

macro_rules! def {
    ($name:expr, [$($p:ident),*], $imp:expr) => {
        FuncDef { name: $name, params: &[$(PT::$p),*], variadic: None, imp: $imp, builtin: false }
    };
}

fn hex(b: &[u8]) -> Vec<u8> {
    encoding::hex_encode(b)
}

pub(super) static FUNCS: &[FuncDef] = &[
    def!("ToLower", [Str], |_, a| Ok(Value::string(gostr::to_lower(
        s(&a[0])
    )))),
    def!("ToUpper", [Str], |_, a| Ok(Value::string(gostr::to_upper(
        s(&a[0])
    )))),
    def!("Replace", [Str, Str, Str, Int], |_, a| {
        let (src, old, new, n) = (s(&a[0]), s(&a[1]), s(&a[2]), i(&a[3]));
        check_len(gostr::replace_len(src, old, new, n))?;
        Ok(Value::string(gostr::replace(src, old, new, n)))
    }),
    def!("Trim", [Str, Str], |_, a| Ok(Value::str(gostr::trim(
        s(&a[0]),
        s(&a[1])
    )))),
    def!("TrimLeft", [Str, Str], |_, a| Ok(Value::str(
        gostr::trim_left(s(&a[0]), s(&a[1]))
    ))),
    def!("TrimRight", [Str, Str], |_, a| Ok(Value::str(
        gostr::trim_right(s(&a[0]), s(&a[1]))
    ))),
    def!("TrimPrefix", [Str, Str], |_, a| Ok(Value::str(
        gostr::trim_prefix(s(&a[0]), s(&a[1]))
    ))),
    def!("TrimSuffix", [Str, Str], |_, a| Ok(Value::str(
        gostr::trim_suffix(s(&a[0]), s(&a[1]))
    ))),
    def!("TrimSpace", [Str], |_, a| Ok(Value::str(
        gostr::trim_space(s(&a[0]))
    ))),
    def!("Hash", [Str, Str], |_, a| {
        use sha3::Digest;
        let mut h = sha3::Sha3_256::new();
        h.update(s(&a[0]));
        h.update(s(&a[1]));
        Ok(Value::string(hex(&h.finalize())))
    }),
    def!("Sha2Hash", [Str, Str], |_, a| {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(s(&a[0]));
        h.update(s(&a[1]));
        Ok(Value::string(hex(&h.finalize())))
    }),
    def!("regexReplaceAll", [Str, Str, Str], |c, a| {
        let re = goregex::must_compile(c, s(&a[0]))?;
        goregex::replace_all(c, &re, s(&a[1]), s(&a[2]), false).map(Value::string)
    }),
    def!("regexReplaceAllLiteral", [Str, Str, Str], |c, a| {
        let re = goregex::must_compile(c, s(&a[0]))?;
        goregex::replace_all(c, &re, s(&a[1]), s(&a[2]), true).map(Value::string)
    }),
];
