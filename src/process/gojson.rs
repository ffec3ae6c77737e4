//! JSON as Go's `encoding/json.Marshal` writes it, for values a stage puts
//! back into a line or a field (`json` with an object or list result,
//! `pack`): keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped, numbers
//! in Go's float64 form.

use std::fmt::Write;

use jmespath::Variable;

/// Appends `s` as a JSON string, escaped as Go escapes it.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's JSON form of a float64: like `strconv.FormatFloat(f, 'f', -1, 64)`,
/// but with an exponent below 1e-6 and from 1e21 (`1e+21`, `1e-07`).
pub fn write_number(out: &mut String, f: f64) {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e21` / `1e-7`; Go writes `1e+21` / `1e-07`.
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Appends a JMESPath value as Go would marshal the same `interface{}`.
pub fn write_variable(out: &mut String, value: &Variable) {
    match value {
        Variable::Null | Variable::Expref(_) => out.push_str("null"),
        Variable::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Variable::Number(n) => write_number(out, n.as_f64().unwrap_or(0.0)),
        Variable::String(s) => write_string(out, s),
        Variable::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_variable(out, item);
            }
            out.push(']');
        }
        Variable::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_variable(out, v);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escapes_and_number_forms() {
        let mut s = String::new();
        write_string(&mut s, "<a href=\"x\">&\u{1}");
        assert_eq!(s, r#""\u003ca href=\"x\"\u003e\u0026\u0001""#);
        for (f, go) in [
            (1e21, "1e+21"),
            (1e-7, "1e-07"),
            (123.5, "123.5"),
            (1e20, "100000000000000000000"),
            (0.0, "0"),
        ] {
            let mut s = String::new();
            write_number(&mut s, f);
            assert_eq!(s, go);
        }
    }
}
