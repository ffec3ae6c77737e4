//! Deterministic fuzzing: 20,000 generated and mutated templates are parsed
//! and executed; none may panic, and every execution must end quickly (the
//! engine's work/size/depth limits turn runaway templates into errors).

#[path = "template_cases/engine.rs"]
mod engine;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use loki_logdriver::process::gotemplate::Template;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "call",
    "ToUpper",
    "ToLower",
    "Replace",
    "Trim",
    "TrimLeft",
    "TrimSpace",
    "Hash",
    "Sha2Hash",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "upper",
    "lower",
    "title",
    "repeat",
    "substr",
    "trunc",
    "abbrev",
    "wrap",
    "indent",
    "nindent",
    "replace",
    "split",
    "splitList",
    "join",
    "sortAlpha",
    "atoi",
    "int",
    "int64",
    "float64",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "divf",
    "mulf",
    "max",
    "minf",
    "round",
    "until",
    "untilStep",
    "seq",
    "list",
    "dict",
    "set",
    "get",
    "keys",
    "merge",
    "append",
    "prepend",
    "first",
    "rest",
    "uniq",
    "without",
    "has",
    "concat",
    "reverse",
    "compact",
    "chunk",
    "dig",
    "default",
    "empty",
    "coalesce",
    "ternary",
    "toJson",
    "fromJson",
    "toPrettyJson",
    "b64enc",
    "b64dec",
    "b32dec",
    "sha256sum",
    "regexMatch",
    "regexFindAll",
    "regexSplit",
    "regexFind",
    "quote",
    "cat",
    "snakecase",
    "camelcase",
    "swapcase",
    "initials",
    "nospace",
    "now",
    "date",
    "toDate",
    "dateModify",
    "duration",
    "durationRound",
    "typeOf",
    "kindOf",
    "deepEqual",
    "deepCopy",
    "urlParse",
    "urlJoin",
    "fail",
    "toStrings",
    "pluck",
    "pick",
    "omit",
    "uuidv4",
    "mustRegexMatch",
    "semver",
    "semverCompare",
];

const ARGS: &[&str] = &[
    ".",
    ".Entry",
    ".Value",
    ".missing",
    ".n",
    "$",
    "$x",
    "1",
    "0",
    "-1",
    "3",
    "100",
    "99999",
    "2.5",
    "1e308",
    "'a'",
    "\"a,b\"",
    "\"\"",
    "\"(\"",
    "\"%v%d%s\"",
    "\"x*\"",
    "`raw`",
    "true",
    "false",
    "nil",
    "0x10",
    "(list 1 2)",
    "(dict \"k\" \"v\")",
    "(until 5)",
    "(now)",
    "\"2006-01-02\"",
    "\"1h\"",
    "\"v1.2.3-rc.1+b\"",
    "\">=1.2 <2 || 3.x - 4\"",
    "(semver \"1.2\")",
    "(semver \"1\").IncMajor",
];

fn gen_pipeline(r: &mut Rng, depth: usize) -> String {
    let mut s = String::new();
    let cmds = 1 + r.below(3);
    for c in 0..cmds {
        if c > 0 {
            s.push_str(" | ");
        }
        if r.below(4) == 0 || c > 0 {
            s.push_str(r.pick(FUNCS));
            for _ in 0..r.below(4) {
                s.push(' ');
                if depth < 3 && r.below(6) == 0 {
                    s.push('(');
                    s.push_str(&gen_pipeline(r, depth + 1));
                    s.push(')');
                } else {
                    s.push_str(r.pick(ARGS));
                }
            }
        } else {
            s.push_str(r.pick(ARGS));
        }
    }
    s
}

fn gen_template(r: &mut Rng, depth: usize) -> String {
    let mut s = String::new();
    let n = 1 + r.below(5);
    for _ in 0..n {
        let l = if r.below(5) == 0 { "{{- " } else { "{{ " };
        let rr = if r.below(5) == 0 { " -}}" } else { " }}" };
        match r.below(12) {
            0 => s.push_str(r.pick(&["text ", "\n", "  ", "x", "é😀"])),
            1 if depth < 4 => {
                s.push_str(&format!(
                    "{l}if {}{rr}{}",
                    gen_pipeline(r, 0),
                    gen_template(r, depth + 1)
                ));
                if r.below(2) == 0 {
                    s.push_str(&format!("{{{{ else }}}}{}", gen_template(r, depth + 1)));
                }
                s.push_str("{{ end }}");
            }
            2 if depth < 4 => {
                let v = r.pick(&["", "$x := ", "$i, $x := ", "$x = "]);
                s.push_str(&format!(
                    "{l}range {v}{}{rr}{}",
                    gen_pipeline(r, 0),
                    gen_template(r, depth + 1)
                ));
                if r.below(3) == 0 {
                    s.push_str(r.pick(&["{{ break }}", "{{ continue }}"]));
                }
                s.push_str("{{ end }}");
            }
            3 if depth < 4 => {
                s.push_str(&format!(
                    "{l}with {}{rr}{}{{{{ end }}}}",
                    gen_pipeline(r, 0),
                    gen_template(r, depth + 1)
                ));
            }
            4 => s.push_str(&format!("{l}$x := {}{rr}", gen_pipeline(r, 0))),
            5 if depth == 0 => {
                s.push_str(&format!(
                    "{{{{ define \"t\" }}}}{}{{{{ end }}}}",
                    gen_template(r, depth + 1)
                ));
            }
            6 => s.push_str(&format!("{{{{ template \"t\" {} }}}}", r.pick(ARGS))),
            7 => s.push_str("{{/* c */}}"),
            _ => s.push_str(&format!("{l}{}{rr}", gen_pipeline(r, 0))),
        }
    }
    s
}

fn mutate(r: &mut Rng, seed: &str) -> String {
    let mut b: Vec<u8> = seed.as_bytes().to_vec();
    for _ in 0..1 + r.below(4) {
        if b.is_empty() {
            break;
        }
        let i = r.below(b.len());
        match r.below(6) {
            0 => {
                b.remove(i);
            }
            1 => b.insert(
                i,
                *b"{}()|$.\"`'-:= \n9aZ".get(r.below(18)).unwrap_or(&b'x'),
            ),
            2 => {
                let j = (i + r.below(16)).min(b.len());
                let chunk: Vec<u8> = b[i..j].to_vec();
                let k = r.below(b.len());
                b.splice(k..k, chunk);
            }
            3 => b.truncate(i),
            4 => b[i] = (r.next() & 0x7f) as u8,
            _ => {
                let f = r.pick(FUNCS);
                b.splice(i..i, f.bytes().chain(std::iter::once(b' ')));
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn fuzz_no_panic_and_bounded_time() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut r = Rng(seed.max(1));
    let seeds = engine::CASES;
    let data = serde_json::json!({
        "Value": "hello World", "Entry": "{\"a\":[1,2,{\"b\":\"c\"}],\"n\":5}", "n": "42",
        "container_name": "app", "host": "h"
    });
    let total: usize = std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut parsed = 0;
    let mut executed_ok = 0;
    let mut slowest = Duration::ZERO;
    let mut slowest_tpl = String::new();
    let start = Instant::now();
    for k in 0..total {
        let tpl = if k % 2 == 0 {
            gen_template(&mut r, 0)
        } else {
            let s = seeds[r.below(seeds.len())];
            mutate(&mut r, s)
        };
        let t0 = Instant::now();
        let res = catch_unwind(AssertUnwindSafe(|| {
            let t = Template::parse("pipeline_template", &tpl)?;
            t.execute(&data).map(|_| true)
        }));
        let el = t0.elapsed();
        match res {
            Err(_) => panic!("panic on template {tpl:?}"),
            Ok(Ok(_)) => {
                parsed += 1;
                executed_ok += 1;
            }
            Ok(Err(e)) => {
                if !e.to_string().contains(":1: ") || e.to_string().contains("executing") {
                    parsed += 1;
                }
            }
        }
        if el > slowest {
            slowest = el;
            slowest_tpl = tpl.clone();
        }
        assert!(el < Duration::from_secs(5), "took {el:?}: {tpl:?}");
    }
    eprintln!(
        "fuzz: {total} templates, ~{parsed} parsed, {executed_ok} executed without error, total {:?}, slowest {:?}: {:.120}",
        start.elapsed(),
        slowest,
        slowest_tpl
    );
}
