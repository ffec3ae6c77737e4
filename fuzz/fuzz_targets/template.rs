//! Go templates of the `template` and `replace` stages (and sprig).
//!
//! Invariants: parsing and executing never panic or hang (the engine's
//! step budget, libFuzzer's timeout); output is bounded (1 MiB); an error
//! is a bounded message.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use loki_logdriver::process::gotemplate::Template;

#[derive(Debug, Arbitrary)]
struct Input {
    template: String,
    value: String,
    fields: Vec<(String, String)>,
}

fuzz_target!(|input: Input| {
    let template = match Template::parse("pipeline_template", &input.template) {
        Ok(t) => t,
        Err(err) => {
            assert!(err.to_string().len() < 100_000);
            return;
        }
    };
    let mut data = serde_json::Map::new();
    for (k, v) in input.fields.iter().take(16) {
        data.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    data.insert("Value".into(), serde_json::Value::String(input.value.clone()));
    data.insert("Entry".into(), serde_json::Value::String(input.value));
    match template.execute(&serde_json::Value::Object(data)) {
        Ok(out) => assert!(out.len() <= 1 << 20, "{} bytes of output", out.len()),
        Err(err) => assert!(err.to_string().len() < 100_000),
    }
});
