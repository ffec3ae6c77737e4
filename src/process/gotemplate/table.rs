//! The function map and the method sets: what the parser and the
//! interpreter find by name, above every function library. Grafana's
//! extras override sprig's, sprig's override Go's builtins, as in
//! `template.New(..).Funcs(functionMap)`.

use super::func::FuncDef;
use super::value::{IntT, Value};
use super::{builtins, dates, grafana, semver, sprig};

/// Looks a function up by name at parse time.
pub(super) fn lookup(name: &str) -> Option<&'static FuncDef> {
    grafana::FUNCS
        .iter()
        .find(|f| f.name == name)
        .or_else(|| sprig::FUNCS.iter().find(|f| f.name == name))
        .or_else(|| semver::FUNCS.iter().find(|f| f.name == name))
        .or_else(|| dates::FUNCS.iter().find(|f| f.name == name))
        .or_else(|| builtins::FUNCS.iter().find(|f| f.name == name))
}

/// What `.name` on a value of a type with methods finds.
pub(super) enum Method {
    /// The method to call with the value as its receiver.
    Found(&'static FuncDef),
    /// No such method and no field to read: Go's error.
    Missing(String),
    /// No such method: look among the value's fields (if it has any).
    Fields,
}

/// The method `name` of `receiver`: time.Time's, time.Duration's,
/// time.Month's and time.Weekday's, (*)semver.Version's.
pub(super) fn method(receiver: &Value, name: &str) -> Method {
    let found = match receiver {
        Value::Time(_) => dates::time_method(name),
        Value::Semver(_, pointer) => {
            return match semver::method(*pointer, name) {
                Some(m) => Method::Found(m),
                None => Method::Missing(semver::field_error(*pointer, name)),
            };
        }
        Value::Int(_, IntT::Duration | IntT::Month | IntT::Weekday) => {
            dates::int_method(receiver, name)
        }
        _ => None,
    };
    found.map_or(Method::Fields, Method::Found)
}
