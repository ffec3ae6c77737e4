//! Unit tests per feature (expected values were checked against Go's
//! text/template + sprig via the pipeline oracle).

use super::{Error, Template};

fn run(tpl: &str) -> Result<String, String> {
    run_with(
        tpl,
        serde_json::json!({"Value": "hello World", "Entry": "hello World", "n": "42"}),
    )
}

fn run_with(tpl: &str, data: serde_json::Value) -> Result<String, String> {
    let t = Template::parse("pipeline_template", tpl).map_err(|e: Error| format!("PARSE: {e}"))?;
    t.execute(&data).map_err(|e| e.to_string())
}

fn ok(tpl: &str) -> String {
    match run(tpl) {
        Ok(s) => s,
        Err(e) => panic!("{tpl}: {e}"),
    }
}

fn is_parse_err(tpl: &str) -> bool {
    Template::parse("pipeline_template", tpl).is_err()
}

fn is_exec_err(tpl: &str) -> bool {
    matches!(run(tpl), Err(e) if !e.starts_with("PARSE"))
}

#[test]
fn api_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_eq!(Template::parse("n", "x").unwrap().name(), "n");
}

#[test]
fn text_and_trim_markers() {
    assert_eq!(ok("a  {{- .Entry -}}  b"), "ahello Worldb");
    assert_eq!(ok("a {{- /* c */ -}} b{{/* d */}}c"), "abc");
    assert_eq!(ok("{{- 3}} {{-3}}"), "3 -3");
    assert_eq!(ok("x\n  {{- \"y\" }}"), "xy");
    assert_eq!(ok("{{ if\n .Entry }}multi{{ end }}"), "multi");
}

#[test]
fn parse_errors() {
    for t in [
        "{{ foo }}",
        "{{ $undefined }}",
        "{{ end }}",
        "{{ else }}",
        "{{ if 1 }}",
        "{{ \"unterminated }}",
        "{{/* unclosed",
        "{{ 1 }}{{/* a */ 2 }}",
        "{{ break }}",
        "{{ 1 | 2 }}",
        "{{ range $a, $b, $c := . }}{{end}}",
        "{{ 9223372036854775808 }}x{{ 0x }}",
        "{{ .x.(y) }}",
        "{{ (1 }}",
        "{{ 1) }}",
        "{{ \"a\".x }}",
        "{{ define \"x\" }}a{{ end }}{{ define \"x\" }}b{{ end }}",
    ] {
        assert!(is_parse_err(t), "should not parse: {t}");
    }
    let e = Template::parse("pipeline_template", "{{ foo }}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: pipeline_template:1: function \"foo\" not defined"
    );
    // sprig names all parse, even unsupported ones
    assert!(!is_parse_err(
        "{{ bcrypt \"x\" }}{{ semver \"1.0.0\" }}{{ getHostByName \"x\" }}"
    ));
}

#[test]
fn nesting_limit() {
    let deep = format!("{{{{{}1{}}}}}", "(".repeat(200), ")".repeat(200));
    assert!(is_parse_err(&deep));
    let ok_depth = format!("{{{{{}1{}}}}}", "(".repeat(50), ")".repeat(50));
    assert_eq!(ok(&ok_depth), "1");
}

#[test]
fn missing_values() {
    assert_eq!(ok("{{ .missing }}"), "<no value>");
    assert_eq!(ok("{{ .missing.x }}"), "<no value>");
    assert_eq!(ok("{{ print .missing }}"), "<nil>");
    assert_eq!(ok("{{ html .missing }}"), "&lt;no value&gt;");
    assert!(is_exec_err("{{ upper .missing }}"));
    assert!(is_exec_err("{{ .Entry.x }}"));
    assert!(is_exec_err("{{ (fromJson \"{\\\"a\\\":null}\").a.b }}"));
    assert_eq!(ok("{{ (fromJson \"{}\").a.b }}"), "<no value>");
}

#[test]
fn control_flow() {
    assert_eq!(
        ok("{{if .missing}}a{{else if .Entry}}b{{else}}c{{end}}"),
        "b"
    );
    assert_eq!(
        ok("{{with .missing}}w{{else with .Entry}}{{.}}{{end}}"),
        "hello World"
    );
    assert_eq!(ok("{{$x := 1}}{{$x = 2}}{{$x}}"), "2");
    assert_eq!(
        ok("{{range $i, $c := splitList \" \" .Entry}}{{$i}}={{$c}};{{end}}"),
        "0=hello;1=World;"
    );
    assert_eq!(
        ok("{{range $k, $v := dict \"b\" 2 \"a\" 1}}{{$k}}:{{$v}} {{end}}"),
        "a:1 b:2 "
    );
    assert_eq!(ok("{{range list}}x{{else}}empty{{end}}"), "empty");
    assert_eq!(
        ok("{{range $i := until 5}}{{if eq $i 3}}{{break}}{{end}}{{$i}}{{end}}"),
        "012"
    );
    assert_eq!(
        ok("{{range $i := until 5}}{{if eq $i 1}}{{continue}}{{end}}{{$i}}{{end}}"),
        "0234"
    );
    assert_eq!(ok("{{range 3}}{{.}}{{end}}"), "012");
    assert_eq!(ok("{{range 0}}x{{else}}none{{end}}"), "none");
    assert!(is_exec_err("{{range $i, $e := 3}}{{end}}"));
    assert!(is_exec_err("{{range \"abc\"}}{{end}}"));
    assert_eq!(ok("{{ $ }}").len(), ok("{{ . }}").len());
}

#[test]
fn templates_define_block() {
    assert_eq!(
        ok("{{define \"t\"}}T({{.}}){{end}}{{template \"t\" .Entry}}"),
        "T(hello World)"
    );
    assert_eq!(
        ok("{{block \"b\" .Entry}}B({{.}}){{end}}"),
        "B(hello World)"
    );
    assert_eq!(ok("{{define \"pipeline_template\"}}X{{end}}"), "X");
    assert_eq!(
        ok(
            "{{define \"r\"}}{{if gt . 0}}{{.}}{{template \"r\" sub . 1}}{{end}}{{end}}{{template \"r\" 5}}"
        ),
        "54321"
    );
    assert!(is_exec_err("{{template \"nope\"}}"));
    assert!(is_exec_err(
        "{{define \"a\"}}{{template \"a\" .}}{{end}}{{template \"a\" .}}"
    ));
}

#[test]
fn literals() {
    assert_eq!(
        ok("{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b11 }} {{ 1_000 }} {{ 1e3 }} {{ .5 }} {{ 0x1p4 }}"),
        "31 15 15 3 1000 1000 0.5 16"
    );
    assert_eq!(
        ok("{{ 'a' }} {{ '\\n' }} {{ 1+2i }} {{ true }}"),
        "97 10 (1+2i) true"
    );
    assert_eq!(ok("{{ \"a\\tb\\x41\\u00e9\\101\" }}"), "a\tbAéA");
    assert_eq!(ok("{{ `raw\\n` }}"), "raw\\n");
    assert_eq!(
        ok("{{ 3.0 }} {{ -0.0 }} {{ 1e100 }} {{ 123456789.0 }} {{ 1e6 }} {{ 100000.0 }}"),
        "3 -0 1e+100 1.23456789e+08 1e+06 100000"
    );
    assert!(is_exec_err("{{ 9223372036854775808 }}"));
}

#[test]
fn builtins() {
    assert_eq!(
        ok("{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 \"\" \"x\" }} {{ not 0 }}"),
        "0 2 x true"
    );
    assert_eq!(ok("{{ and .missing (fail \"boom\") }}"), "<no value>");
    assert_eq!(
        ok(
            "{{ len .Entry }} {{ len (list 1 2) }} {{ index .Entry 1 }} {{ index (dict \"k\" \"v\") \"k\" }}"
        ),
        "11 2 101 v"
    );
    assert!(is_exec_err("{{ index (list 1) 5 }}"));
    assert!(is_exec_err("{{ len 3 }}"));
    assert_eq!(
        ok("{{ html \"<a href='x'>&\\\"\" }}"),
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"
    );
    assert_eq!(ok("{{ js \"<a='x'>\" }}"), "\\u003Ca\\u003D\\'x\\'\\u003E");
    assert_eq!(ok("{{ urlquery \"a b&c=d/é\" }}"), "a+b%26c%3Dd%2F%C3%A9");
    assert_eq!(
        ok("{{ print 1 2 \"a\" \"b\" 3 true nil }}"),
        "1 2ab3 true <nil>"
    );
    assert_eq!(ok("{{ println 1 \"a\" }}"), "1 a\n");
    assert!(is_exec_err("{{ call .Entry }}"));
}

#[test]
fn comparisons() {
    assert_eq!(
        ok(
            "{{ eq \"a\" \"b\" \"a\" }} {{ eq (add 1 1) 2 }} {{ eq .missing \"x\" }} {{ eq nil nil }}"
        ),
        "true true false true"
    );
    assert!(is_exec_err("{{ eq 1 1.0 }}"));
    assert!(is_exec_err("{{ lt 1 2.5 }}"));
    assert!(is_exec_err("{{ eq (list 1) (list 1) }}"));
    assert!(is_exec_err("{{ lt true false }}"));
    assert_eq!(
        ok(
            "{{ ne 1 2 }} {{ lt \"a\" \"b\" }} {{ le 2 2 }} {{ gt 3 2 }} {{ ge 1 2 }} {{ eq (index \"a\" 0) 97 }}"
        ),
        "true true true true false true"
    );
}

#[test]
fn printf_verbs() {
    assert_eq!(
        ok("{{ printf \"%v %d %s %q %x\" 1 \"a\" 3 \"b\" \"hi\" }}"),
        "1 %!d(string=a) %!s(int=3) \"b\" 6869"
    );
    assert_eq!(ok("{{ printf \"%d %d\" 1 }}"), "1 %!d(MISSING)");
    assert_eq!(
        ok("{{ printf \"%d\" 1 2 \"x\" }}"),
        "1%!(EXTRA int=2, string=x)"
    );
    assert_eq!(
        ok("{{ printf \"%!\" }} {{ printf \"%\" }} {{ printf \"%z\" 1 }}"),
        "%!!(MISSING) %!(NOVERB) %!z(int=1)"
    );
    assert_eq!(
        ok(
            "{{ printf \"%6.2f|%-8s|%08.3f|%+d|% d|%#x|%#o|%b|%e|%E|%g|%G\" 3.14159 \"ab\" -3.5 5 5 255 8 5 1234.5678 0.000012 1e21 1e-7 }}"
        ),
        "  3.14|ab      |-003.500|+5| 5|0xff|010|101|1.234568e+03|1.200000E-05|1e+21|1E-07"
    );
    assert_eq!(
        ok("{{ printf \"%c %U %q %#U\" 65 0x1F600 'x' 0x1F600 }}"),
        "A U+1F600 'x' U+1F600 '😀'"
    );
    assert_eq!(
        ok("{{ printf \"%T %T %T\" 1 nil (list) }}"),
        "int <nil> []interface {}"
    );
    assert_eq!(
        ok("{{ printf \"%[2]d %[1]d|%*d|%.*f\" 1 2 5 3 2 3.14159 }}"),
        "2 1| 5|%!f(int=002)"
    );
    assert_eq!(
        ok("{{ printf \"%v\" (list 1 \"a\" nil (list 2) (dict \"k\" 1)) }}"),
        "[1 a <nil> [2] map[k:1]]"
    );
    assert_eq!(
        ok("{{ printf \"%#v\" (list \"x\") }}"),
        "[]interface {}{\"x\"}"
    );
    assert_eq!(ok("{{ printf \"%x %X\" 3.5 3.5 }}"), "0x1.cp+01 0X1.CP+01");
    assert_eq!(ok("{{ printf \"%5v\" (list 1 2) }}"), "[    1     2]");
}

#[test]
fn grafana_extras() {
    assert_eq!(
        ok("{{ ToUpper .Value }} {{ ToLower .Value }}"),
        "HELLO WORLD hello world"
    );
    assert_eq!(ok("{{ Replace .Value \"l\" \"L\" 2 }}"), "heLLo World");
    assert_eq!(
        ok(
            "{{ Trim \"!!x!\" \"!\" }}|{{ TrimLeft \"xxa\" \"x\" }}|{{ TrimRight \"axx\" \"x\" }}|{{ TrimPrefix \"ab\" \"a\" }}|{{ TrimSuffix \"ab\" \"b\" }}|{{ TrimSpace \" a \" }}"
        ),
        "x|a|a|b|a|a"
    );
    assert_eq!(ok("{{ Sha2Hash \"x\" \"salt\" }}").len(), 64);
    assert_eq!(ok("{{ Hash \"x\" \"salt\" }}").len(), 64);
    assert_eq!(
        ok("{{ regexReplaceAll \"(\\\\w+) (\\\\w+)\" .Value \"$2 $1\" }}"),
        "World hello"
    );
    assert_eq!(
        ok("{{ regexReplaceAllLiteral \"o\" .Value \"$0\" }}"),
        "hell$0 W$0rld"
    );
    assert!(is_exec_err("{{ regexReplaceAll \"(\" .Value \"x\" }}"));
}

#[test]
fn sprig_strings() {
    assert_eq!(
        ok(
            "{{ abbrev 5 \"hello world\" }} {{ trunc -5 \"hello world\" }} {{ substr 1 3 \"hello\" }}"
        ),
        "he... world el"
    );
    assert_eq!(
        ok(
            "{{ title \"hello wOrld\" }} {{ untitle \"Hello World\" }} {{ swapcase \"Hello World\" }}"
        ),
        "Hello WOrld hello world hELLO wORLD"
    );
    assert_eq!(
        ok(
            "{{ snakecase \"HTTPServer\" }} {{ kebabcase \"FooBarBaz\" }} {{ camelcase \"foo_bar\" }}"
        ),
        "http_server foo-bar-baz FooBar"
    );
    assert_eq!(ok("{{ wrap 5 \"hello world foo\" }}"), "hello\nworld\nfoo");
    assert_eq!(
        ok("{{ quote \"a\" 1 nil }} {{ squote \"a\" }} {{ cat \"a\" 1 nil \"b\" }}"),
        "\"a\" \"1\" 'a' a 1 b"
    );
    assert_eq!(
        ok("{{ indent 2 \"a\\nb\" }}|{{ nindent 1 \"a\" }}"),
        "  a\n  b|\n a"
    );
    assert_eq!(
        ok(
            "{{ replace \" \" \"-\" \"a b c\" }} {{ plural \"one\" \"many\" 2 }} {{ repeat 3 \"ab\" }}"
        ),
        "a-b-c many ababab"
    );
    assert_eq!(
        ok(
            "{{ split \",\" \"a,b\" }} {{ splitList \",\" \"a,,b\" }} {{ join \"-\" (list 1 \"a\") }} {{ sortAlpha (list \"b\" \"a\") }}"
        ),
        "map[_0:a _1:b] [a  b] 1-a [a b]"
    );
    assert_eq!(
        ok("{{ initials \"hello big world\" }} {{ nospace \"a b\\tc\" }} {{ toString 1.5 }}"),
        "hbw abc 1.5"
    );
    assert!(is_exec_err("{{ substr 4 2 \"hello\" }}"));
    assert!(is_exec_err("{{ repeat -1 \"x\" }}"));
}

#[test]
fn sprig_conversions_and_math() {
    assert_eq!(
        ok(
            "{{ int64 \"08\" }} {{ int64 \"010\" }} {{ int64 \"0x1F\" }} {{ int64 \"1.5\" }} {{ int \"\" }} {{ atoi \"08\" }}"
        ),
        "0 8 31 1 0 8"
    );
    assert_eq!(
        ok("{{ float64 \"1e3\" }} {{ float64 \"inf\" }} {{ float64 \"0x10\" }}"),
        "1000 +Inf 0"
    );
    assert_eq!(
        ok(
            "{{ add 1 2 3 }} {{ sub 5 2 }} {{ div 7 2 }} {{ mod -7 3 }} {{ mul 2 3 4 }} {{ add1 \"5\" }}"
        ),
        "6 3 3 -1 24 6"
    );
    assert_eq!(
        ok("{{ addf 0.1 0.2 }} {{ divf 1 3 }} {{ mulf 1.1 3 }} {{ subf 1 0.9 }}"),
        "0.3 0.3333333333333333 3.3 0.1"
    );
    assert_eq!(
        ok(
            "{{ max 1 \"5\" 3 }} {{ min 5 -2 }} {{ maxf 1 2.5 }} {{ round 2.555 2 }} {{ floor 1.9 }} {{ ceil 1.1 }}"
        ),
        "5 -2 2.5 2.56 1 2"
    );
    assert_eq!(
        ok("{{ add 9223372036854775807 1 }}"),
        "-9223372036854775808"
    );
    assert!(is_exec_err("{{ div 1 0 }}"));
    assert!(is_exec_err("{{ divf 1 0 }}"));
    assert!(is_exec_err("{{ repeat (add 1 1) \"x\" }}"));
    assert_eq!(ok("{{ repeat 2.0 \"x\" }}"), "xx");
    assert_eq!(
        ok(
            "{{ seq 5 }}|{{ seq 1 2 10 }}|{{ until 3 }}|{{ untilStep 10 0 -4 }}|{{ toDecimal \"0777\" }}"
        ),
        "1 2 3 4 5|1 3 5 7 9|[0 1 2]|[10 6 2]|511"
    );
}

#[test]
fn sprig_collections() {
    assert_eq!(
        ok(
            "{{ default \"d\" \"\" }} {{ .missing | default \"dd\" }} {{ empty 0 }} {{ coalesce \"\" 0 \"x\" }} {{ ternary \"y\" \"n\" false }}"
        ),
        "d dd true x n"
    );
    assert_eq!(
        ok(
            "{{ first (list 1 2) }} {{ last (list 1 2) }} {{ rest (list 1 2 3) }} {{ initial (list 1 2 3) }} {{ first list }}"
        ),
        "1 2 [2 3] [1 2] <no value>"
    );
    assert_eq!(
        ok(
            "{{ append (list 1) 2 }} {{ prepend (list 1) 0 }} {{ concat (list 1) (list 2) }} {{ reverse (list 1 2) }} {{ uniq (list 1 1 2) }} {{ without (list 1 2) 2 }} {{ has 2 (list 1 2) }}"
        ),
        "[1 2] [0 1] [1 2] [2 1] [1 2] [1] true"
    );
    assert_eq!(
        ok(
            "{{ slice (list 1 2 3 4) 1 3 }} {{ chunk 2 (list 1 2 3) }} {{ compact (list 1 0 \"\" \"a\") }}"
        ),
        "[2 3] [[1 2] [3]] [1 a]"
    );
    assert_eq!(
        ok(
            "{{ $d := dict \"a\" 1 }}{{ $_ := set $d \"b\" 2 }}{{ $d }} {{ get $d \"a\" }} {{ hasKey $d \"z\" }} {{ keys $d | sortAlpha }} {{ pick $d \"b\" }} {{ omit $d \"b\" }}"
        ),
        "map[a:1 b:2] 1 false [a b] map[b:2] map[a:1]"
    );
    assert_eq!(
        ok(
            "{{ merge (dict \"a\" 1 \"b\" \"\") (dict \"b\" 2 \"c\" 3) }} {{ mergeOverwrite (dict \"a\" 1) (dict \"a\" 2) }}"
        ),
        "map[a:1 b:2 c:3] map[a:2]"
    );
    assert_eq!(
        ok(
            "{{ dig \"a\" \"b\" \"def\" (dict \"a\" (dict \"b\" \"found\")) }} {{ pluck \"a\" (dict \"a\" 1) (dict \"a\" 2) }}"
        ),
        "found [1 2]"
    );
    assert_eq!(
        ok(
            "{{ deepEqual (list 1 (dict \"a\" 2)) (list 1 (dict \"a\" 2)) }} {{ deepEqual 1 (int64 1) }}"
        ),
        "true false"
    );
    assert_eq!(
        ok(
            "{{ typeOf (until 3) }} {{ kindOf (dict) }} {{ typeIs \"int\" 1 }} {{ kindIs \"slice\" (list) }}"
        ),
        "[]int map true true"
    );
    assert!(is_exec_err("{{ append \"x\" 1 }}"));
}

#[test]
fn sprig_json_encoding_regex() {
    assert_eq!(
        ok("{{ toJson (dict \"b\" 1 \"a\" (list 1 2.5 \"x\" nil true) \"h\" \"<&>\") }}"),
        r#"{"a":[1,2.5,"x",null,true],"b":1,"h":"\u003c\u0026\u003e"}"#
    );
    assert_eq!(ok("{{ toRawJson (dict \"h\" \"<&>\") }}"), r#"{"h":"<&>"}"#);
    assert_eq!(
        ok("{{ toPrettyJson (dict \"a\" (list 1)) }}"),
        "{\n  \"a\": [\n    1\n  ]\n}"
    );
    assert_eq!(
        ok("{{ toJson (rest list) }} {{ toJson 1e21 }} {{ toJson 1e-7 }}"),
        "null 1e+21 1e-7"
    );
    assert_eq!(
        ok("{{ (fromJson \"{\\\"a\\\":[1,2]}\").a }} {{ fromJson \"bad\" }}"),
        "[1 2] <no value>"
    );
    assert!(is_exec_err("{{ mustFromJson \"bad\" }}"));
    assert_eq!(
        ok("{{ b64enc \"hello\" }} {{ b64dec \"aGVsbG8=\" }} {{ b64dec \"!!!\" }}"),
        "aGVsbG8= hello illegal base64 data at input byte 0"
    );
    assert_eq!(
        ok("{{ b32enc \"hello\" }} {{ b32dec \"NBSWY3DP\" }}"),
        "NBSWY3DP hello"
    );
    assert_eq!(
        ok("{{ sha256sum \"x\" | trunc 8 }} {{ adler32sum \"hello\" }}"),
        "2d711642 103547413"
    );
    assert_eq!(
        ok(
            "{{ regexFindAll \"o.\" .Entry -1 }} {{ regexFind \"[A-Z]\\\\w+\" .Entry }} {{ regexSplit \"o\" .Entry -1 }}"
        ),
        "[o  or] World [hell  W rld]"
    );
    assert_eq!(
        ok("{{ regexReplaceAll \"a*\" \"baaac\" \"X\" }} {{ regexFindAll \"a*\" \"baaac\" -1 }}"),
        "XbXcX [ aaa ]"
    );
    assert_eq!(
        ok(
            "{{ regexMatch \"(\" \"x\" }} {{ regexMatch \"\\\\bWorld\\\\b\" .Entry }} {{ regexQuoteMeta \"a.b\" }}"
        ),
        "false true a\\.b"
    );
    for bad in ["a**", "(?x) a", "a{1001}", "\\1", "(?=a)"] {
        assert!(
            is_exec_err(&format!("{{{{ mustRegexMatch {:?} \"a\" }}}}", bad)),
            "{bad}"
        );
    }
}

#[test]
fn dates() {
    assert_eq!(
        ok("{{ toDate \"2006-01-02\" \"2024-03-05\" | date \"Jan _2 2006 Mon\" }}"),
        "Mar  5 2024 Tue"
    );
    assert_eq!(
        ok("{{ (toDate \"2006-01-02T15:04:05Z07:00\" \"2024-03-05T10:11:12+02:00\") }}"),
        "2024-03-05 10:11:12 +0200 +0200"
    );
    assert_eq!(
        ok(
            "{{ toDate \"02/Jan/2006:15:04:05 -0700\" \"10/Oct/2000:13:55:36 -0700\" | unixEpoch }}"
        ),
        "971211336"
    );
    assert_eq!(
        ok("{{ toDate \"2006-01-02\" \"bad\" }}"),
        "0001-01-01 00:00:00 +0000 UTC"
    );
    assert!(is_exec_err("{{ mustToDate \"2006-01-02\" \"bad\" }}"));
    assert_eq!(
        ok(
            "{{ dateInZone \"2006-01-02 15:04 MST\" (toDate \"2006-01-02\" \"2024-07-01\") \"Europe/Paris\" }}"
        ),
        "2024-07-01 02:00 CEST"
    );
    assert_eq!(
        ok("{{ date \"2006-01-02 15:04:05\" 1700000000 }}"),
        "2023-11-14 22:13:20"
    );
    assert_eq!(
        ok("{{ dateModify \"1h30m\" (toDate \"2006-01-02\" \"2024-01-01\") | date \"15:04\" }}"),
        "01:30"
    );
    assert_eq!(
        ok("{{ duration \"3661\" }} {{ durationRound \"2h10m\" }} {{ durationRound \"400h\" }}"),
        "1h1m1s 2h 16d"
    );
    assert_eq!(
        ok(
            "{{ (toDate \"2006-01-02\" \"2024-03-05\").Month }} {{ (toDate \"2006-01-02\" \"2024-03-05\").Format \"Jan 2\" }}"
        ),
        "March Mar 5"
    );
    assert_eq!(
        ok("{{ now | typeOf }} {{ now.Year | typeOf }}"),
        "time.Time int"
    );
}

#[test]
fn invalid_utf8_is_go_like() {
    // slicing a multi-byte character yields Go's bytes; execute() maps each
    // invalid byte to U+FFFD like Go's JSON encoder.
    let t = Template::parse("t", "{{ substr 0 1 \"é\" }}").unwrap();
    let data = serde_json::json!({});
    assert_eq!(t.execute_bytes(&data).unwrap(), vec![0xC3]);
    assert_eq!(t.execute(&data).unwrap(), "\u{FFFD}");
    assert_eq!(ok("{{ printf \"%q\" (substr 0 1 \"é\") }}"), "\"\\xc3\"");
}

#[test]
fn limits_fail_fast() {
    let t0 = std::time::Instant::now();
    for t in [
        "{{range $i := until 100000}}{{range $j := until 100000}}x{{end}}{{end}}",
        "{{range 1000000000}}{{end}}",
        "{{ repeat 100000000 \"x\" }}",
        "{{ $x := \"x\" }}{{ range until 30 }}{{ $x = print $x $x }}{{ end }}",
        "{{ $l := list 1 }}{{ range until 40 }}{{ $l = list $l $l }}{{ end }}{{ toJson $l }}",
        "{{ $l := list 1 }}{{ range until 200 }}{{ $l = list $l }}{{ end }}{{ $l }}",
        "{{ $d := dict }}{{ $_ := set $d \"self\" $d }}{{ $d }}",
        "{{ range until 100 }}{{ printf \"%999999d\" 1 }}{{ end }}",
        "{{ until 100000000 }}",
        "{{ indent 1000000000 \"x\" }}",
        "{{define \"a\"}}{{template \"a\" .}}{{end}}{{template \"a\" .}}",
    ] {
        assert!(is_exec_err(t), "should fail: {t}");
    }
    assert!(t0.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn data_types_from_json() {
    let d = serde_json::json!({"i": 3, "f": 1.5, "b": true, "l": [1, "a"], "m": {"k": null}});
    assert_eq!(
        run_with(
            "{{ .i }} {{ typeOf .i }} {{ .f }} {{ .b }} {{ .l }} {{ .m }}",
            d
        )
        .unwrap(),
        "3 int 1.5 true [1 a] map[k:<nil>]"
    );
}

#[test]
fn deep_regexes_at_the_stack_budget_fail_without_crashing() {
    // Stages run on threads of 2 MiB stacks; the executor's own budget is
    // half of that, and a regex compiled at its deepest recursion must fit
    // in the rest (debug frames are the largest).
    for pattern in [
        format!("{}a{}", "(".repeat(240), ")".repeat(240)),
        format!("{}a{}", "(?:b*".repeat(124), ")*".repeat(124)),
        format!("{}a{}", "(?:b|".repeat(600), ")".repeat(600)),
    ] {
        for depth in [0, 200, 250, 280] {
            let tpl = format!(
                "{{{{define \"r\"}}}}{{{{if gt . 0}}}}{{{{template \"r\" sub . 1}}}}{{{{else}}}}{{{{regexMatch `{pattern}` \"a\"}}}}{{{{end}}}}{{{{end}}}}{{{{template \"r\" {depth}}}}}"
            );
            let worker = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || run(&tpl))
                .expect("thread");
            let _ = worker.join().expect("no crash");
        }
    }
}

/// Error texts the oracle cannot show (a template stage drops the error):
/// as Go's text/template and Masterminds/semver word them.
#[test]
fn semver_errors_as_go() {
    let err = |tpl: &str| match run(tpl) {
        Err(e) => e
            .split_once(">: ")
            .map_or(e.clone(), |(_, m)| m.to_string()),
        Ok(s) => panic!("{tpl}: no error, {s:?}"),
    };
    for (tpl, want) in [
        (
            "{{ semver \"x\" }}",
            "error calling semver: invalid semantic version",
        ),
        (
            "{{ semver \"1.2.3-01\" }}",
            "error calling semver: version segment starts with 0",
        ),
        (
            "{{ semver \"1.99999999999999999999\" }}",
            "error calling semver: error parsing version segment: strconv.ParseUint: parsing \"99999999999999999999\": value out of range",
        ),
        (
            "{{ semverCompare \">1 || x y\" \"1\" }}",
            "error calling semverCompare: improper constraint:  x y",
        ),
        (
            "{{ semverCompare \"1 - 2 - 5 || 2 - 5\" \"1\" }}",
            "error calling semverCompare: improper constraint: >= 1, <=>= 2, <= 5  ",
        ),
        (
            "{{ semverCompare \"1x\" \"1\" }}",
            "error calling semverCompare: constraint parser error",
        ),
        (
            "{{ semverCompare \"1\" \"x\" }}",
            "error calling semverCompare: invalid semantic version",
        ),
        (
            "{{ (semver \"1\").Compare nil }}",
            "error calling Compare: runtime error: invalid memory address or nil pointer dereference",
        ),
        (
            "{{ (semver \"1\").Compare \"1\" }}",
            "can't handle \"1\" for arg of type *semver.Version",
        ),
        (
            "{{ (semver \"1\").Compare (semver \"1\").IncMajor }}",
            "wrong type for value; expected *semver.Version; got semver.Version",
        ),
        (
            "{{ (semver \"1\").IncMajor.Original }}",
            "can't evaluate field Original in type semver.Version",
        ),
        (
            "{{ (semver \"1\").major }}",
            "major is an unexported field of struct type *semver.Version",
        ),
        (
            "{{ (semver \"1\").Nope }}",
            "can't evaluate field Nope in type *semver.Version",
        ),
        (
            "{{ (semver \"1\").SetPrerelease \"a..b\" }}",
            "error calling SetPrerelease: invalid prerelease string",
        ),
        (
            "{{ (semver \"1\").SetMetadata \"a+b\" }}",
            "error calling SetMetadata: invalid metadata string",
        ),
        (
            "{{ eq (semver \"1\") (semver \"1\").IncMajor }}",
            "error calling eq: non-comparable types 1.0.0: *semver.Version, semver.Version: 2.0.0",
        ),
        (
            "{{ len (semver \"1\") }}",
            "error calling len: len of type *semver.Version",
        ),
    ] {
        assert_eq!(err(tpl), want, "{tpl}");
    }
    assert_eq!(ok("{{ (semver \"1\").Equal nil }}"), "false");
}

/// Hostile constraints end quickly: with an answer, or with an error once
/// Go's quadratic range rewriting would exceed the work budget.
#[test]
fn semver_hostile_inputs_are_bounded() {
    let started = std::time::Instant::now();
    let cases = [
        "||".repeat(100_000),
        "1.2.3 || ".repeat(20_000) + "*",
        ">=1.0.0 ".repeat(20_000),
        "9".repeat(200_000),
        "1".repeat(100_000) + "y" + &"1".repeat(100_000) + " - 2",
        "1 - 2 ".repeat(40_000),
    ];
    for c in &cases {
        let _ = run_with(
            "{{ semverCompare .c .v }}{{ semver .c }}",
            serde_json::json!({"c": c, "v": "1.2.3"}),
        );
    }
    assert_eq!(
        run_with(
            "{{ semverCompare .c .v }}",
            serde_json::json!({"c": cases[1], "v": "1.2.3"})
        )
        .as_deref(),
        Ok("true")
    );
    assert!(
        run_with(
            "{{ semverCompare .c .v }}",
            serde_json::json!({"c": cases[5], "v": "1.2.3"})
        )
        .is_err_and(|e| e.contains("work budget"))
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// Found by fuzzing: a precision over 65,535 made Rust's formatter panic.
#[test]
fn huge_float_precisions_are_formatted_or_refused_never_a_panic() {
    for text in [
        r#"{{ printf "%05.0900000Y" 3.14159 }}"#,
        r#"{{ printf "%.70000e" 1.5 }}"#,
        r#"{{ printf "%.70000f" 1.5 }}"#,
        r#"{{ printf "%.70000g" 1.5 }}"#,
    ] {
        let t = Template::parse("t", text).unwrap();
        let _ = t.execute(&serde_json::json!({}));
    }
    let t = Template::parse("t", r#"{{ printf "%.2000f" 0.1 }}"#).unwrap();
    let out = t.execute(&serde_json::json!({})).unwrap();
    assert_eq!(out.len(), 2002);
    assert!(out.starts_with("0.1000000000000000055511151231257827"));
    assert!(out.ends_with("000"));
}
