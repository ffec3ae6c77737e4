//! A faithful Go `text/template` engine, with the function map Grafana's
//! Loki `template` stage uses (sprig's TxtFuncMap plus Grafana's extras).
//!
//! Built on the plugin's ports of Go's packages: `goregex::syntax` parses
//! the patterns of the regex functions, `gotime` holds times and does Go's
//! layouts, `goduration` parses durations. Times are in Go's `Local` as
//! `gotime` takes it: UTC, named "Local".
//!
//! A stage runs a template over its fields with [`Template::execute_data`];
//! the output is a Rust string, so bytes Go's functions can leave that are
//! not UTF-8 (`substr` cutting a character) become U+FFFD, one per byte,
//! where Go keeps the bytes (a later stage sees the difference: `len`).
//!
//! Hostile templates are bounded: parse nesting depth, template call depth,
//! native stack use, work steps per execution, output and string sizes,
//! list sizes and value nesting all have limits (the constants below, from
//! `limits`); exceeding one makes `execute` return an [`Error`], never a
//! panic or hang.
//!
//! # Layers
//!
//! The files form layers: each imports only from layers below it (within
//! a layer, only along the arrows), so no files import each other in a
//! circle.
//!
//! ```text
//!  API          mod.rs: Template, Data, Error
//!  ────────────────────────────────────────────────────────────────────
//!  interpreter  exec ──▶ parse ──▶ lex
//!  ────────────────────────────────────────────────────────────────────
//!  table        table: the function map by name, the method sets
//!  ────────────────────────────────────────────────────────────────────
//!  libraries    grafana  sprig  builtins  dates  semver
//!                  └───┬───┴───────┘
//!                      ▼
//!               goregex  json  encoding
//!  ────────────────────────────────────────────────────────────────────
//!  core         func ──▶ printf ──▶ timefmt ──▶ value
//!  ────────────────────────────────────────────────────────────────────
//!  helpers      regexp   version ──▶ strconv ──▶ gostr ──▶ unicode
//!               limits
//! ```
//!
//! - helpers: Go's strings and UTF-8 (`gostr`), strconv's parsing,
//!   quoting and float formatting (`strconv`), unicode classes, Go's
//!   `regexp.Compile` and its per-template cache (`regexp`), Masterminds'
//!   `semver.Version` (`version`), the bounds (`limits`).
//! - core: the value model (`value`), time printing (`timefmt`), fmt over
//!   values (`printf`), and what a function is and receives (`func`:
//!   `FuncDef`, the parameter kinds `PT`, `FnResult`, the context `Ctx`
//!   with the work and stack budget and the regex cache).
//! - libraries: the function tables and the helpers they share; none
//!   imports the interpreter, the table, or a library that imports it.
//! - table: `lookup` for the parser, `method` for the interpreter.
//! - interpreter: the lexer (the token types are `lex`'s), the parser, the
//!   executor.

mod builtins;
mod dates;
mod encoding;
mod exec;
mod func;
mod goregex;
mod gostr;
mod grafana;
mod json;
mod lex;
mod limits;
mod parse;
mod printf;
mod regexp;
mod semver;
mod sprig;
mod strconv;
mod table;
mod timefmt;
mod unicode;
mod value;
mod version;

use std::collections::HashMap;
use std::fmt;

pub use limits::{
    MAX_LIST, MAX_OUTPUT, MAX_PARSE_DEPTH, MAX_REGEX_SIZE, MAX_STACK_BYTES, MAX_STEPS, MAX_STRING,
    MAX_TEMPLATE_DEPTH, MAX_VALUE_DEPTH,
};

/// A template error, parse-time or execution-time; Display is Go's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A parsed template set (the named template plus its {{define}}/{{block}}s).
/// Immutable, `Send + Sync`.
pub struct Template {
    name: String,
    text: String,
    trees: HashMap<Vec<u8>, parse::ListNode>,
    regex_cache: regexp::Cache,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .finish()
    }
}

impl Template {
    /// Parses `text` as Go's
    /// `template.New(name).Funcs(functionMap).Parse(text)` would.
    pub fn parse(name: &str, text: &str) -> Result<Template, Error> {
        let trees = parse::parse(name, text).map_err(Error)?;
        Ok(Template {
            name: name.to_string(),
            text: text.to_string(),
            trees: trees.trees,
            regex_cache: regexp::Cache::default(),
        })
    }

    /// Executes over `data` (the dot), returning the output or Go's
    /// execution error. JSON objects become `map[string]interface{}`,
    /// arrays `[]interface{}`, integral numbers `int`, other numbers
    /// `float64`, null `nil`.
    pub fn execute(&self, data: &serde_json::Value) -> Result<String, Error> {
        let out = self.execute_bytes(data)?;
        Ok(gostr::to_string_lossy(&out))
    }

    /// Like [`Template::execute`] but returns Go's raw bytes (which may be
    /// invalid UTF-8, e.g. after slicing a multi-byte character).
    pub fn execute_bytes(&self, data: &serde_json::Value) -> Result<Vec<u8>, Error> {
        let dot = value::from_json(data);
        exec::execute(self.program(), dot).map_err(Error)
    }

    /// Executes over a pipeline stage's fields ([`Data`]), returning the
    /// output as a Rust string (bytes that are not UTF-8 become U+FFFD, one
    /// per byte, as Go's JSON encoder writes them).
    pub fn execute_data(&self, data: &Data) -> Result<String, Error> {
        let out = exec::execute(self.program(), data.map.clone()).map_err(Error)?;
        Ok(gostr::to_string_lossy(&out))
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the executor reads of the template.
    fn program(&self) -> exec::Program<'_> {
        exec::Program {
            name: &self.name,
            text: &self.text,
            trees: &self.trees,
            regex_cache: &self.regex_cache,
        }
    }
}

/// The dot of a pipeline stage: a map of string fields, as Grafana's
/// `template` stage builds it (`map[string]interface{}` holding strings)
/// or its `replace` stage (`map[string]string`: functions that take a
/// `map[string]interface{}`, such as sprig's `keys`, refuse it).
pub struct Data {
    map: value::Value,
}

impl Data {
    /// An empty `map[string]interface{}`.
    pub fn new() -> Data {
        Data::of(value::MapT::Iface)
    }

    /// An empty `map[string]string`.
    pub fn string_map() -> Data {
        Data::of(value::MapT::Str)
    }

    fn of(t: value::MapT) -> Data {
        Data {
            map: value::Value::map(Default::default(), t),
        }
    }

    /// Sets `key` to the string `value`.
    pub fn insert(&mut self, key: &str, value: &str) {
        if let value::Value::Map(m) = &self.map {
            m.borrow_mut()
                .items
                .insert(key.as_bytes().to_vec(), value::Value::str(value));
        }
    }
}

impl Default for Data {
    fn default() -> Data {
        Data::new()
    }
}

#[cfg(test)]
mod tests;
