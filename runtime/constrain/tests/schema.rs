//! JSON Schema to grammar: what validates is accepted, what does not is rejected, and every keyword we cannot
//! enforce is refused with its pointer.

mod common;

use std::sync::Arc;

use common::{matches, schema, schema_err};
use flint_constrain::Grammar;
use serde_json::json;

fn check(g: &Arc<Grammar>, good: &[&str], bad: &[&str]) {
    for s in good {
        assert!(
            serde_json::from_str::<serde_json::Value>(s).is_ok(),
            "test bug: {s} is not JSON"
        );
        assert!(
            matches(g, s.as_bytes()),
            "should accept {s}\n{}",
            g.to_gbnf()
        );
    }
    for s in bad {
        assert!(
            !matches(g, s.as_bytes()),
            "should reject {s}\n{}",
            g.to_gbnf()
        );
    }
}

fn from_text(text: &str) -> Arc<Grammar> {
    Arc::new(Grammar::from_json_schema_str(text).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn object_with_required_and_optional_fields_in_text_order() {
    let g = from_text(
        r#"{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
            "email": {"type": "string"}}, "required": ["name"]}"#,
    );
    check(
        &g,
        &[
            r#"{"name":"A"}"#,
            r#"{"name": "A", "age": 3}"#,
            r#"{"name":"A","email":"e"}"#,
            r#"{"name":"A","age":-3,"email":"e"}"#,
            "{\n  \"name\": \"A\",\n  \"age\": 3\n}",
            r#"{ "name" : "A" }"#,
        ],
        &[
            r#"{}"#,
            r#"{"age":3}"#,
            r#"{"name":1}"#,
            r#"{"name":"A","extra":1}"#,
            r#"{"name":"A",}"#,
            r#"{"name":"A" "age":3}"#,
            r#"{"age":3,"name":"A"}"#,
            r#"{"name":"A","age":3.5}"#,
            r#"{"name":"A","name":"B"}"#,
        ],
    );
}

/// An object's text with `pairs` in the order `props` (a schema's `properties`) iterates: sorted, or as written
/// when serde_json's `preserve_order` is on.
fn in_map_order(props: &serde_json::Value, pairs: &[(&str, &str)]) -> String {
    let order: Vec<&String> = props.as_object().unwrap().keys().collect();
    let mut pairs = pairs.to_vec();
    pairs.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

#[test]
fn object_from_a_value_follows_map_order() {
    let props = json!({"name": {"type": "string"}, "age": {"type": "integer"}, "email": {"type": "string"}});
    let g = schema(json!({"type": "object", "properties": props, "required": ["name", "age"]}));
    let good = [
        in_map_order(&props, &[("age", "1"), ("name", "\"x\"")]),
        in_map_order(
            &props,
            &[("age", "1"), ("email", "\"\""), ("name", "\"x\"")],
        ),
    ];
    check(
        &g,
        &[&good[0], &good[1]],
        &[r#"{"name":"x"}"#, r#"{"age":1}"#],
    );
}

#[test]
fn all_optional_fields() {
    let g = from_text(
        r#"{"properties": {"a": {"type": "boolean"}, "b": {"type": "null"}, "c": {}}, "additionalProperties": false}"#,
    );
    check(
        &g,
        &[
            r#"{}"#,
            r#"{ }"#,
            r#"{"a":true}"#,
            r#"{"b":null}"#,
            r#"{"c":[1,{"x":"y"}]}"#,
            r#"{"a":false,"c":1}"#,
            r#"{"a":true,"b":null,"c":"s"}"#,
        ],
        &[
            r#"{,}"#,
            r#"{"b":null,"a":true}"#,
            r#"{"a":1}"#,
            r#"{"d":1}"#,
            r#"{"a":true,}"#,
            r#"{,"a":true}"#,
        ],
    );
}

#[test]
fn arrays_with_min_and_max_items() {
    let g = schema(
        json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}),
    );
    check(
        &g,
        &["[1]", "[1,2,3]", "[ 1, 2 ]", "[\n  1,\n  2\n]"],
        &["[]", "[1,2,3,4]", "[\"a\"]", "[1,]", "[,1]"],
    );
    let g = schema(json!({"type": "array", "maxItems": 0}));
    check(&g, &["[]", "[ ]"], &["[1]"]);
    let g = schema(json!({"type": "array", "items": {"type": "string"}, "minItems": 2}));
    check(
        &g,
        &[r#"["a","b"]"#, r#"["a","b","c","d"]"#],
        &[r#"["a"]"#, r#"[]"#],
    );
}

#[test]
fn prefix_items() {
    let g =
        schema(json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}));
    check(
        &g,
        &["[]", r#"["a"]"#, r#"["a",1]"#],
        &[r#"["a",1,2]"#, "[1]", r#"["a","b"]"#],
    );
    let g = schema(
        json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": {"type": "boolean"}, "minItems": 2}),
    );
    check(
        &g,
        &[r#"["a",1]"#, r#"["a",1,true,false]"#],
        &[r#"["a"]"#, r#"["a",1,2]"#],
    );
    let g =
        schema(json!({"prefixItems": [{"const": 1}, {"const": 2}, {"const": 3}], "maxItems": 2}));
    check(&g, &["[]", "[1]", "[1,2]"], &["[1,2,3]", "[2]"]);
}

#[test]
fn enums_and_consts() {
    let g = schema(json!({"enum": ["red", "green", 3, null, {"a": [1]}]}));
    check(
        &g,
        &[r#""red""#, r#""green""#, "3", "null", r#"{"a":[1]}"#],
        &[r#""blue""#, r#""Red""#, "4", r#"{"a": [1]}"#],
    );
    let g = schema(json!({"type": "string", "enum": ["a", 1, "b"]}));
    check(&g, &[r#""a""#, r#""b""#], &["1"]);
    let g = schema(json!({"const": "only"}));
    check(&g, &[r#""only""#], &[r#""other""#]);
    let g = schema(json!({"type": "integer", "enum": [1, 2.0, 2.5]}));
    check(&g, &["1", "2.0"], &["2.5"]);
}

#[test]
fn integer_ranges_are_exact() {
    let cases: &[(Option<i64>, Option<i64>)] = &[
        (Some(-15), Some(123)),
        (Some(0), Some(9)),
        (Some(7), Some(7)),
        (Some(95), None),
        (None, Some(-7)),
        (None, Some(42)),
        (Some(-120), Some(-3)),
        (Some(-9), Some(0)),
        (Some(10), Some(1000)),
        (Some(199), Some(201)),
        (Some(1), Some(1099)),
    ];
    for &(lo, hi) in cases {
        let mut s = serde_json::Map::new();
        s.insert("type".into(), json!("integer"));
        if let Some(lo) = lo {
            s.insert("minimum".into(), json!(lo));
        }
        if let Some(hi) = hi {
            s.insert("maximum".into(), json!(hi));
        }
        let g = schema(serde_json::Value::Object(s));
        for x in -150i64..1200 {
            let inside = lo.is_none_or(|l| x >= l) && hi.is_none_or(|h| x <= h);
            assert_eq!(
                matches(&g, x.to_string().as_bytes()),
                inside,
                "{x} in {lo:?}..={hi:?}"
            );
        }
        for bad in ["-0", "01", "+1", "1.0", "1e2", " 1", "--1"] {
            assert!(!matches(&g, bad.as_bytes()), "{bad}");
        }
    }
    // Far bounds.
    let g = schema(json!({"type": "integer", "minimum": -1000000, "maximum": 123456789}));
    check(
        &g,
        &["-1000000", "123456789", "0", "99999999", "-999999"],
        &["-1000001", "123456790", "1234567890"],
    );
}

#[test]
fn integer_bounds_exclusive_and_fractional() {
    let g = schema(json!({"type": "integer", "exclusiveMinimum": -5, "exclusiveMaximum": 5}));
    check(&g, &["-4", "0", "4"], &["-5", "5", "-6"]);
    let g = schema(json!({"type": "integer", "minimum": 1.5, "maximum": 7.9}));
    check(&g, &["2", "7"], &["1", "8"]);
    let g = schema(
        json!({"type": "integer", "minimum": -3, "exclusiveMinimum": true, "maximum": 3, "exclusiveMaximum": true}),
    );
    check(&g, &["-2", "2"], &["-3", "3"]);
    let g = schema(json!({"type": "integer", "minimum": 0}));
    check(
        &g,
        &["0", "1", "123456789012345678"],
        &["-1", "-0", "00", "1234567890123456789"],
    );
    let g = schema(json!({"type": "integer", "maximum": 18446744073709551615u64}));
    check(
        &g,
        &["18446744073709551615", "-999999999999999999"],
        &["18446744073709551616", "-1000000000000000000"],
    );
    let g = schema(json!({"type": "integer"}));
    check(
        &g,
        &["0", "-0", "-12", "77", "-999999999999999999"],
        &["1.5", "012", "1e3", "1000000000000000000"],
    );
}

/// `x` (a decimal with at most 3 fraction digits) as thousandths.
fn thousandths(x: &str) -> i64 {
    let neg = x.starts_with('-');
    let x = x.trim_start_matches('-');
    let (i, f) = x.split_once('.').unwrap_or((x, ""));
    let f = format!("{f:0<3}");
    let v = i.parse::<i64>().unwrap() * 1000 + f[..3].parse::<i64>().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

#[test]
fn number_ranges_with_integer_bounds_are_exact() {
    // (minimum or exclusiveMinimum, maximum or exclusiveMaximum)
    type Side = Option<(i64, bool)>;
    let cases: &[(Side, Side)] = &[
        (Some((-1, false)), Some((2, true))),
        (Some((-1, true)), Some((2, false))),
        (Some((0, false)), None),
        (Some((0, true)), None),
        (None, Some((0, false))),
        (None, Some((0, true))),
        (Some((-3, false)), Some((-1, false))),
        (Some((-3, true)), Some((-1, true))),
        (Some((1, false)), Some((1, false))),
        (Some((0, false)), Some((10, false))),
        (None, Some((-2, true))),
    ];
    let mut samples = Vec::new();
    for i in -12i64..=12 {
        let i_abs = i.abs();
        let sign = if i < 0 { "-" } else { "" };
        samples.push(format!("{sign}{i_abs}"));
        for f in ["0", "00", "5", "25", "001", "999", "100"] {
            samples.push(format!("{sign}{i_abs}.{f}"));
        }
    }
    samples.extend(["-0.5".to_string(), "-0.001".to_string(), "-0.0".to_string()]);
    for &(lo, hi) in cases {
        let mut s = serde_json::Map::new();
        s.insert("type".into(), json!("number"));
        if let Some((v, ex)) = lo {
            s.insert(
                if ex { "exclusiveMinimum" } else { "minimum" }.into(),
                json!(v),
            );
        }
        if let Some((v, ex)) = hi {
            s.insert(
                if ex { "exclusiveMaximum" } else { "maximum" }.into(),
                json!(v),
            );
        }
        let g = schema(serde_json::Value::Object(s));
        for x in &samples {
            let t = thousandths(x);
            let above = lo.is_none_or(|(v, ex)| if ex { t > v * 1000 } else { t >= v * 1000 });
            let below = hi.is_none_or(|(v, ex)| if ex { t < v * 1000 } else { t <= v * 1000 });
            let got = matches(&g, x.as_bytes());
            if got {
                assert!(above && below, "{x} accepted outside {lo:?}..{hi:?}");
            } else if above && below {
                // We never write -0 (or -0.0): the only in-range values we may refuse.
                assert!(
                    x.starts_with("-0") && t == 0,
                    "{x} refused inside {lo:?}..{hi:?}"
                );
            }
        }
        for bad in ["1e2", "1.", ".5", "01.5", "+1"] {
            assert!(!matches(&g, bad.as_bytes()), "{bad}");
        }
    }
    let g = schema(json!({"type": "number"}));
    check(
        &g,
        &["0", "-0.5", "1e10", "1.5E-3", "-2e+2"],
        &["1.", ".5", "01", "1e", "--1"],
    );
}

#[test]
fn nested_objects() {
    let g = from_text(
        r#"{"type":"object","properties":{"id":{"type":"integer","minimum":1},
            "address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string","maxLength":5}},
            "required":["city"]}},"required":["id","address"]}"#,
    );
    check(
        &g,
        &[
            r#"{"id":1,"address":{"city":"Rome"}}"#,
            r#"{"id":2,"address":{"city":"","zip":"00100"}}"#,
        ],
        &[
            r#"{"id":1,"address":{}}"#,
            r#"{"id":1}"#,
            r#"{"id":0,"address":{"city":"R"}}"#,
            r#"{"id":1,"address":{"city":"R","zip":"001000"}}"#,
        ],
    );
}

#[test]
fn any_of_and_type_lists() {
    let g = schema(
        json!({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 0}]}),
    );
    check(&g, &[r#""ab""#, "0", "17"], &[r#""abc""#, "-1", "null"]);
    let g = schema(json!({"type": ["string", "null"]}));
    check(&g, &[r#""x""#, "null"], &["1", "true"]);
    let g = schema(json!({"type": ["integer", "number", "boolean"], "maximum": 3}));
    check(&g, &["3", "2.5", "true", "-100"], &["3.5", "4", "null"]);
}

#[test]
fn refs_and_recursion() {
    let tree = json!({
        "$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["value"]}},
        "$ref": "#/$defs/node"
    });
    let props = tree.pointer("/$defs/node/properties").unwrap().clone();
    let g = schema(tree);
    let obj = |children: &str, value: &str| {
        in_map_order(&props, &[("children", children), ("value", value)])
    };
    let leaf = |v: &str| format!("{{\"value\":{v}}}");
    let nested = obj(
        &format!("[{},{}]", leaf("2"), obj(&format!("[{}]", leaf("3")), "4")),
        "1",
    );
    check(
        &g,
        &[&leaf("1"), &obj("[]", "1"), &nested],
        &[&obj("[{}]", "1"), &obj("[1]", "1")],
    );
    let g = schema(
        json!({"definitions": {"pos": {"type": "integer", "minimum": 1}},
        "type": "array", "items": {"$ref": "#/definitions/pos"}}),
    );
    check(&g, &["[1,2]", "[]"], &["[0]"]);
    // Recursion through the root.
    let g =
        schema(json!({"type": "array", "items": {"anyOf": [{"type": "integer"}, {"$ref": "#"}]}}));
    check(&g, &["[1,[2,[]],3]"], &["[1,[true]]"]);
}

#[test]
fn string_lengths_count_code_points() {
    let g = schema(json!({"type": "string", "minLength": 2, "maxLength": 4}));
    check(
        &g,
        &[
            r#""ab""#,
            r#""abcd""#,
            r#""é中""#,
            r#""a\n""#,
            r#""\u00e9\u00e9""#,
            r#""😀😀""#,
            r#""\ud83d\ude00a""#,
        ],
        &[
            r#""a""#,
            r#""abcde""#,
            r#""""#,
            r#""😀""#,
            r#""\ud83d\ude00""#,
        ],
    );
}

#[test]
fn strings_escapes_and_control_characters() {
    let g = schema(json!({"type": "string"}));
    check(
        &g,
        &[
            r#""""#,
            r#""\"\\\/\b\f\n\r\t""#,
            r#""\u00e9\uFFFF""#,
            r#""\ud83d\ude00""#,
            "\"\u{7f}é😀\"",
        ],
        &[
            "\"\n\"",
            "\"\t\"",
            r#""\x""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\u12""#,
            "\"abc",
        ],
    );
}

#[test]
fn maps_from_additional_properties() {
    let g = schema(json!({"type": "object", "additionalProperties": {"type": "integer"}}));
    check(
        &g,
        &["{}", r#"{"a":1}"#, r#"{"a":1, "b":2}"#],
        &[r#"{"a":"x"}"#, r#"{"a":1,}"#],
    );
    let g = schema(json!({"type": "object"}));
    check(&g, &["{}", r#"{"a":[1,{"b":null}]}"#], &["[]", "1"]);
    let g = schema(json!({"type": "object", "additionalProperties": false}));
    check(&g, &["{}"], &[r#"{"a":1}"#]);
}

#[test]
fn any_value() {
    for s in [
        json!({}),
        json!(true),
        json!({"description": "anything", "title": "x"}),
    ] {
        let g = schema(s);
        check(
            &g,
            &["1", "\"s\"", "[1,{\"a\":null}]", "true", "{}"],
            &["", "tru", "[1", " 1", "1 "],
        );
    }
    let g = Arc::new(Grammar::json_object());
    check(&g, &["{}", r#"{"a":1}"#], &["[]", "1"]);
}

#[test]
fn whitespace_is_bounded() {
    let g = Arc::new(Grammar::json_value());
    let indent = |n: usize| format!("[\n{}1]", " ".repeat(n));
    check(
        &g,
        &["[1, 2]", "[ 1 ]", &indent(20), "{\"a\": 1}"],
        &[
            "[1,  2]",
            &indent(21),
            " [1]",
            "[1] ",
            "[1,\t2]",
            "[1,\n\n2]",
        ],
    );
}

#[test]
fn unsupported_keywords_are_refused_with_their_pointer() {
    let keywords = [
        ("pattern", json!("^a")),
        ("format", json!("date")),
        ("multipleOf", json!(2)),
        ("oneOf", json!([{}])),
        ("allOf", json!([{}])),
        ("not", json!({})),
        ("if", json!({})),
        ("then", json!({})),
        ("else", json!({})),
        ("uniqueItems", json!(true)),
        ("contains", json!({})),
        ("minProperties", json!(1)),
        ("maxProperties", json!(1)),
        ("patternProperties", json!({})),
        ("dependentRequired", json!({})),
        ("dependentSchemas", json!({})),
        ("propertyNames", json!({})),
        ("unevaluatedProperties", json!(false)),
        ("additionalItems", json!(false)),
        ("nullable", json!(true)),
        ("$anchor", json!("a")),
    ];
    for (k, v) in keywords {
        let mut age = serde_json::Map::new();
        age.insert("type".into(), json!("integer"));
        age.insert(k.into(), v);
        let s = json!({"type": "object", "properties": {"age": age}});
        assert_eq!(
            schema_err(s),
            format!("schema at /properties/age: `{k}` is not supported")
        );
    }
    assert_eq!(
        schema_err(json!({"format": "email"})),
        "schema at the root: `format` is not supported"
    );
    assert_eq!(
        schema_err(
            json!({"items": {"anyOf": [{"type": "string"}, {"type": "string", "pattern": "x"}]}})
        ),
        "schema at /items/anyOf/1: `pattern` is not supported"
    );
    assert_eq!(
        schema_err(json!({"$ref": "http://example.com/s.json"})),
        "schema at the root: remote `$ref` `http://example.com/s.json` is not supported (only `#/$defs/...`, `#/definitions/...`)"
    );
    assert_eq!(
        schema_err(json!({"$ref": "#/$defs/none"})),
        "schema at the root: `$ref` `#/$defs/none` points to nothing"
    );
    assert_eq!(
        schema_err(
            json!({"$defs": {"a": {"type": "string", "format": "uri"}}, "properties": {"x": {"$ref": "#/$defs/a"}}})
        ),
        "schema at /$defs/a: `format` is not supported"
    );
    assert_eq!(
        schema_err(json!({"type": "array", "items": [{"type": "string"}]})),
        "schema at the root: `items` as a list (the old tuple form) is not supported: use `prefixItems`"
    );
}

#[test]
fn schemas_we_cannot_enforce_exactly_are_refused() {
    let cases = [
        (json!({"type": "number", "minimum": 0.5}), "schema at the root: `minimum` 0.5 is not an integer: bounds on numbers must be integers"),
        (json!({"type": "integer", "minimum": 5, "maximum": 4}), "schema at the root: no integer satisfies the bounds"),
        (json!({"type": "number", "exclusiveMinimum": 1, "maximum": 1}), "schema at the root: no number satisfies the bounds"),
        (json!({"type": "string", "minLength": 5, "maxLength": 4}), "schema at the root: `minLength` is above `maxLength`: nothing matches"),
        (json!({"type": "string", "maxLength": 20000}), "schema at the root: `maxLength` 20000 is above the supported maximum of 10000"),
        (json!({"type": "string", "minLength": -1}), "schema at the root: `minLength` must be a non-negative integer"),
        (json!({"type": "strin"}), "schema at the root: unknown `type` `strin`"),
        (json!({"type": []}), "schema at the root: `type` is an empty list: nothing matches"),
        (json!(false), "schema at the root: the schema `false` matches nothing"),
        (json!(3), "schema at the root: a schema must be an object or a boolean"),
        (json!({"$ref": "#/$defs/a", "type": "string", "$defs": {"a": {}}}), "schema at the root: `$ref` combined with `type` is not supported"),
        (json!({"anyOf": [{}], "type": "string"}), "schema at the root: `anyOf` combined with `type` is not supported"),
        (json!({"enum": ["a"], "maxLength": 3}), "schema at the root: `enum` combined with `maxLength` is not supported"),
        (json!({"enum": []}), "schema at the root: `enum` is empty: nothing matches"),
        (json!({"type": "integer", "enum": ["a"]}), "schema at the root: no value of `enum`/`const` has the schema's `type`: nothing matches"),
        (json!({"properties": {"a": {}}, "required": ["b"], "additionalProperties": false}),
            "schema at the root: required property `b` is not in `properties` and `additionalProperties` is false"),
        (json!({"properties": {"a": false}, "required": ["a"]}), "schema at /properties/a: a required property has the schema `false`: nothing matches"),
        (json!({"type": "array", "prefixItems": [{}, {}], "items": false, "minItems": 3}), "schema at the root: `minItems` is above the most items allowed: nothing matches"),
        (json!({"type": "integer", "exclusiveMinimum": true}), "schema at the root: `exclusiveMinimum: true` needs `minimum`"),
        (json!({"type": "integer", "minimum": 1e300}), "schema at the root: `minimum` 1e+300 is outside the supported range (±1e18)"),
    ];
    for (s, msg) in cases {
        assert_eq!(schema_err(s), msg);
    }
    // Recursion that never consumes input, or never ends.
    let e = schema_err(json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}));
    assert!(e.starts_with("schema at the root: the schema cannot be enforced: grammar: rule `a` is left-recursive"), "{e}");
    let e = schema_err(
        json!({"$defs": {"a": {"type": "array", "items": {"$ref": "#/$defs/a"}, "minItems": 1}}, "$ref": "#/$defs/a"}),
    );
    assert!(e.contains("can never finish"), "{e}");
    // Nesting.
    let mut s = json!({});
    for _ in 0..100 {
        s = json!({"items": s});
    }
    assert!(schema_err(s).contains("nests deeper than 64 levels"));
}

#[test]
fn required_without_properties_and_extra_required() {
    let g = schema(json!({"type": "object", "required": ["a"]}));
    check(
        &g,
        &[r#"{"a":1}"#, r#"{"a":{"b":[]}}"#],
        &["{}", r#"{"b":1}"#],
    );
    let g = from_text(r#"{"properties": {"x": {"type": "integer"}}, "required": ["y", "x"]}"#);
    check(
        &g,
        &[r#"{"x":1,"y":"any"}"#],
        &[r#"{"x":1}"#, r#"{"y":1,"x":1}"#],
    );
}

#[test]
fn grammars_print_readably() {
    let g = from_text(
        r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150}},"required":["name","age"]}"#,
    );
    let text = g.to_gbnf();
    assert!(text.starts_with("root ::= top\ntop ::= \"{\" ws \"\\\"name\\\"\" ws \":\" ws string ws \",\" ws \"\\\"age\\\"\" ws \":\" ws"), "{text}");
    assert_eq!(Grammar::from_gbnf(&text).unwrap().to_gbnf(), text);
}
