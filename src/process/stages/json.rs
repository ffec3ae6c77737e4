//! `json`: parses the line (or a field) as a JSON object and sets fields
//! from JMESPath expressions (`level:` alone means the key `level`).
//! Numbers become numbers, objects and lists their JSON text; a line that
//! is not a JSON object passes unchanged, or is dropped with
//! `drop_malformed`.

use std::sync::Arc;

use jmespath::functions::{Function, MaxByFn, MinByFn};
use jmespath::{Expression, Rcvar, Runtime, SearchResult, Variable};

use super::super::fields::Fields;
use super::super::gojson;
use super::super::yaml::Node;
use super::super::{Context, Entry, Stage, Value};

#[derive(Debug, Clone)]
pub struct Json {
    expressions: Arc<Vec<(String, Expression<'static>)>>,
    /// When every expression is a plain key (`level`, `msg`, the common
    /// case): those keys, for reading them without building the whole
    /// document as JMESPath values.
    keys: Option<Arc<Vec<String>>>,
    source: Option<String>,
    drop_malformed: bool,
    reason: Arc<str>,
}

impl Json {
    pub fn new(config: &Node) -> Result<Json, String> {
        if config.is_null() {
            return Err("JMES expression is required".into());
        }
        let mut f = Fields::new(config)?;
        let expressions = f.string_map("expressions")?.unwrap_or_default();
        let source = f.string("source")?;
        let drop_malformed = f.bool("drop_malformed")?.unwrap_or(false);
        f.finish()?;
        if expressions.is_empty() {
            return Err("JMES expression is required".into());
        }
        if source.as_deref() == Some("") {
            return Err("empty source".into());
        }
        let expressions = expressions
            .into_iter()
            .map(|(name, expr)| {
                let text = expr
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| name.clone());
                let compiled = RUNTIME
                    .compile(&text)
                    .map_err(|e| format!("could not compile JMES expression: {e}"))?;
                Ok((name, compiled))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let keys = expressions
            .iter()
            .map(|(_, e)| is_plain_key(e.as_str()).then(|| e.as_str().to_string()))
            .collect::<Option<Vec<_>>>()
            .map(Arc::new);
        Ok(Json {
            keys,
            expressions: Arc::new(expressions),
            source,
            drop_malformed,
            reason: Arc::from("drop_malformed_json"),
        })
    }

    /// Sets the fields; false when the input is not a JSON object.
    fn extract(&self, entry: &mut Entry) -> bool {
        if let Some(keys) = &self.keys {
            return self.extract_keys(entry, keys);
        }
        let parsed = {
            let input: std::borrow::Cow<'_, str> = match &self.source {
                None => std::borrow::Cow::Borrowed(entry.line.as_str()),
                Some(source) => match entry.extracted.get_string(source) {
                    Some(value) => value,
                    // A missing or null source is not an error.
                    None => return true,
                },
            };
            if is_null_document(&input) {
                jmespath::Rcvar::new(Variable::Null)
            } else {
                match go_parse(&input, |text| Variable::from_json(text).ok()) {
                    Some(v @ Variable::Object(_)) => jmespath::Rcvar::new(v),
                    _ => return false,
                }
            }
        };
        for (name, expression) in self.expressions.iter() {
            let mut cx = jmespath::Context::new(expression.as_str(), &RUNTIME);
            let Ok(found) = jmespath::interpret(&parsed, expression.as_ast(), &mut cx) else {
                continue;
            };
            let value = match &*found {
                Variable::Null | Variable::Expref(_) => Value::Null,
                Variable::Bool(b) => Value::Bool(*b),
                Variable::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
                Variable::String(s) => Value::String(s.clone()),
                other => {
                    let mut text = String::new();
                    gojson::write_variable(&mut text, other);
                    Value::String(text)
                }
            };
            entry.extracted.insert(name.clone(), value);
        }
        true
    }
}

impl Json {
    /// [`Json::extract`] for plain keys: the object's members are found
    /// without converting them, and only the wanted ones are converted.
    fn extract_keys(&self, entry: &mut Entry, keys: &[String]) -> bool {
        use serde_json::value::RawValue;
        use std::borrow::Cow;
        use std::collections::HashMap;
        let input: Cow<'_, str> = match &self.source {
            None => Cow::Borrowed(entry.line.as_str()),
            Some(source) => match entry.extracted.get_string(source) {
                Some(value) => Cow::Owned(value.into_owned()),
                None => return true,
            },
        };
        // Go's json.Unmarshal into a map: the last of duplicate keys wins,
        // as it does for serde's maps; `null` is a map with nothing in it.
        let values: Vec<Value> = if is_null_document(&input) {
            vec![Value::Null; keys.len()]
        } else {
            let fixed = fix_surrogates(&input);
            let text = fixed.as_deref().unwrap_or(&input);
            let Ok(members) = serde_json::from_str::<HashMap<Cow<'_, str>, &RawValue>>(text) else {
                return false;
            };
            keys.iter()
                .map(|key| match members.get(key.as_str()) {
                    // JMESPath: a missing key is null.
                    None => Value::Null,
                    Some(raw) => raw_value(raw.get()),
                })
                .collect()
        };
        for ((name, _), value) in self.expressions.iter().zip(values) {
            entry.extracted.insert(name.clone(), value);
        }
        true
    }
}

/// A JSON value as Grafana's json stage keeps it: strings, numbers
/// (float64), booleans and null as they are, objects and lists as their
/// JSON text in Go's form.
fn raw_value(text: &str) -> Value {
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).map_or(Value::Null, Value::String),
        Some(b't') => Value::Bool(true),
        Some(b'f') => Value::Bool(false),
        Some(b'n') | None => Value::Null,
        Some(b'{' | b'[') => match Variable::from_json(text) {
            Ok(variable) => {
                let mut out = String::new();
                gojson::write_variable(&mut out, &variable);
                Value::String(out)
            }
            Err(_) => Value::Null,
        },
        Some(_) => serde_json::from_str::<f64>(text).map_or(Value::Null, Value::Number),
    }
}

/// JMESPath as go-jmespath evaluates it: its builtin functions, where
/// two differ from the Rust crate's: `min_by`/`max_by` of a one-element
/// list give that element whatever the key, and `avg([])` is NaN (shown as
/// Go shows it; JSON numbers cannot hold NaN).
static RUNTIME: std::sync::LazyLock<Runtime> = std::sync::LazyLock::new(|| {
    let mut runtime = Runtime::new();
    runtime.register_builtin_functions();
    runtime.register_function("min_by", Box::new(OneOrBuiltin(Box::new(MinByFn::new()))));
    runtime.register_function("max_by", Box::new(OneOrBuiltin(Box::new(MaxByFn::new()))));
    let avg = runtime.deregister_function("avg").expect("a builtin");
    runtime.register_function("avg", Box::new(EmptyAvgIsNan(avg)));
    runtime
});

/// go-jmespath's `min_by`/`max_by`: a list of one gives its element.
struct OneOrBuiltin(Box<dyn Function>);

impl Function for OneOrBuiltin {
    fn evaluate(&self, args: &[Rcvar], ctx: &mut jmespath::Context<'_>) -> SearchResult {
        if let Some(Variable::Array(items)) = args.first().map(|a| &**a)
            && items.len() == 1
            && args.len() == 2
        {
            return Ok(items[0].clone());
        }
        self.0.evaluate(args, ctx)
    }
}

/// go-jmespath's `avg([])`: 0/0.
struct EmptyAvgIsNan(Box<dyn Function>);

impl Function for EmptyAvgIsNan {
    fn evaluate(&self, args: &[Rcvar], ctx: &mut jmespath::Context<'_>) -> SearchResult {
        if let Some(Variable::Array(items)) = args.first().map(|a| &**a)
            && items.is_empty()
            && args.len() == 1
        {
            return Ok(Rcvar::new(Variable::String("NaN".into())));
        }
        self.0.evaluate(args, ctx)
    }
}

/// Go's `json.Unmarshal` accepts `null` for a map (and leaves it empty).
fn is_null_document(input: &str) -> bool {
    input.trim_matches([' ', '\t', '\n', '\r']) == "null"
}

/// Parses `input` with `parse`, and if that fails because of an escaped
/// surrogate without its pair, again with those as U+FFFD, as Go decodes
/// them.
fn go_parse<T>(input: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    parse(input).or_else(|| parse(fix_surrogates(input)?.as_str()))
}

/// `input` with every `\uD800`–`\uDFFF` escape that is not part of a
/// surrogate pair replaced by `\uFFFD`; `None` when there is none.
fn fix_surrogates(input: &str) -> Option<String> {
    if !input.contains("\\u") {
        return None;
    }
    let b = input.as_bytes();
    let hex = |at: usize| -> Option<u16> {
        let digits = input.get(at..at + 4)?;
        u16::from_str_radix(digits, 16).ok()
    };
    let escape_at = |at: usize| b.get(at) == Some(&b'\\') && b.get(at + 1) == Some(&b'u');
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] != b'u' {
            i += 2;
            continue;
        }
        if escape_at(i)
            && let Some(unit) = hex(i + 2)
        {
            let high = (0xD800..0xDC00).contains(&unit);
            let paired = high
                && escape_at(i + 6)
                && hex(i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
            if paired {
                i += 12;
                continue;
            }
            if (0xD800..0xE000).contains(&unit) {
                let out = out.get_or_insert_with(String::new);
                out.push_str(&input[copied..i]);
                out.push_str("\\ufffd");
                copied = i + 6;
            }
            i += 6;
            continue;
        }
        i += 1;
    }
    let mut out = out?;
    out.push_str(&input[copied..]);
    Some(out)
}

/// A JMESPath expression that only names a key: an unquoted identifier.
fn is_plain_key(expression: &str) -> bool {
    let mut chars = expression.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Stage for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        entries.retain_mut(|entry| {
            let ok = self.extract(entry);
            if !ok && self.drop_malformed {
                cx.filter(entry, &self.reason);
                return false;
            }
            true
        });
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{refused, run};

    #[test]
    fn fields_from_jmespath() {
        let out = run(
            r#"[{"json":{"expressions":{"level":"","user":"ctx.user","tags":"tags","n":"n","ok":"ok","nil":"nil"}}},{"labels":{"level":"","user":""}}]"#,
            &[
                r#"{"level":"info","ctx":{"user":"ann"},"tags":["a","<b>"],"n":12.50,"ok":true,"nil":null}"#,
            ],
        );
        let e = &out[0];
        assert_eq!(e.labels.get("level").map(String::as_str), Some("info"));
        assert_eq!(e.labels.get("user").map(String::as_str), Some("ann"));
        assert_eq!(
            e.extracted.get_string("tags").as_deref(),
            Some(r#"["a","\u003cb\u003e"]"#)
        );
        assert_eq!(e.extracted.get_string("n").as_deref(), Some("12.5"));
        assert_eq!(e.extracted.get_string("ok").as_deref(), Some("true"));
        assert!(e.extracted.contains("nil") && e.extracted.get_string("nil").is_none());
    }

    #[test]
    fn malformed_lines_pass_or_are_dropped() {
        let out = run(
            r#"[{"json":{"expressions":{"a":""}}}]"#,
            &["not json", "[1]"],
        );
        assert_eq!(out.len(), 2);
        let out = run(
            r#"[{"json":{"expressions":{"a":""},"drop_malformed":true}}]"#,
            &["not json", "{}"],
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(refused("[{json: {}}]").contains("JMES expression is required"));
        assert!(refused("[{json: {expressions: {a: 'foo[?'}}}]").contains("could not compile"));
        assert!(refused("[{json: {expressions: {a: b}, source: ''}}]").contains("empty source"));
        assert!(refused("[{json: {expressions: {a: b}, sauce: x}}]").contains("unknown setting"));
    }
}
