use super::*;

fn compile_port(config: &str) -> PortTransform {
    let mut v = Validator::default();
    let p = compile(&mut v, "port", &toml::Value::String(config.into()));
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(
        v.warnings
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        if config.contains("\"security\"") {
            vec!["port.security"]
        } else {
            vec![]
        }
    );
    p.expect("compiles")
}

fn envelope(body: &str) -> Val {
    let text = format!(r#"{{"headers":{{}},"queryParams":{{}},"body":{body}}}"#);
    jaq_json::read::parse_single(text.as_bytes()).expect("json")
}

fn messages(config: &str, body: &str) -> Vec<Value> {
    compile_port(config)
        .apply(&envelope(body))
        .expect("applies")
        .iter()
        .map(|m| serde_json::from_slice(&m.body).expect("json"))
        .collect()
}

#[test]
fn ports_own_spacelift_configuration_gives_ports_entity() {
    let config = include_str!("../../../tests/fixtures/port_spacelift_webhook_config.json");
    let body = include_str!("../../../catalog/spacelift/samples/run_finished.json");
    let mut want: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/port_spacelift_entity_result.json"
    ))
    .expect("json");
    let blueprint = want["blueprint"].take();
    let want_entity: serde_json::Map<String, Value> = want
        .as_object()
        .expect("object")
        .iter()
        .filter(|(k, _)| *k != "blueprint" && *k != "relations")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let got = messages(config, body);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["operation"], "create");
    assert_eq!(got[0]["blueprint"], blueprint);
    assert_eq!(got[0]["entity"], Value::Object(want_entity));
}

#[test]
fn each_leaf_on_its_own_first_output_and_null_for_errors_or_nothing() {
    let config = r#"{"mappings":[{"blueprint":"b","entity":{
        "identifier":".body.id",
        "title":".body.team | ascii_downcase",
        "properties":{"none":"empty","two":".body.xs[]","ok":"'Success'","kept":".body.id","n":3,"on":true}}}]}"#;
    let got = messages(config, r#"{"id":"x1","xs":[1,2]}"#);
    assert_eq!(
        got[0]["entity"],
        serde_json::json!({"identifier":"x1","title":null,
            "properties":{"none":null,"two":1,"ok":"Success","kept":"x1","n":3,"on":true}})
    );
}

#[test]
fn items_to_parse_makes_an_entity_per_item_filtered_per_item() {
    let config = r#"{"mappings":[{"blueprint":"pkg","itemsToParse":".body.packages",
        "filter":".item.version != null",
        "entity":{"identifier":".item.name","properties":{"version":".item.version","repo":".body.repo"},
                  "relations":{"repo":".body.repo"}}}]}"#;
    let got = messages(
        config,
        r#"{"repo":"r","packages":[{"name":"a","version":"1"},{"name":"b"},{"name":"c","version":"3"}]}"#,
    );
    let ids: Vec<&Value> = got.iter().map(|m| &m["entity"]["identifier"]).collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(got[1]["entity"]["relations"]["repo"], "r");
}

#[test]
fn delete_with_dependents_and_search_relations() {
    let config = r#"{"mappings":[
        {"blueprint":"svc","operation":{"type":"delete","deleteDependents":true},
         "filter":".body.action == 'deleted'","entity":{"identifier":".body.id"}},
        {"blueprint":"svc","operation":"create","filter":".body.action != 'deleted'",
         "entity":{"identifier":".body.id","relations":{"owner":{"combinator":"'and'",
           "rules":[{"property":"'$team'","operator":"'='","value":".body.team"}]}}}}]}"#;
    let got = messages(config, r#"{"id":"s1","action":"deleted","team":"t"}"#);
    assert_eq!(
        got,
        [
            serde_json::json!({"operation":"delete","blueprint":"svc","deleteDependents":true,
            "entity":{"identifier":"s1"}})
        ]
    );
    let got = messages(config, r#"{"id":"s1","action":"created","team":"t"}"#);
    assert_eq!(
        got[0]["entity"]["relations"]["owner"],
        serde_json::json!({"combinator":"and","rules":[{"property":"$team","operator":"=","value":"t"}]})
    );
}

#[test]
fn single_quotes_are_constants_outside_double_quoted_strings() {
    assert_eq!(port_quotes("'Success'"), r#""Success""#);
    assert_eq!(port_quotes(".x // 'none'"), r#".x // "none""#);
    assert_eq!(port_quotes(r#""don't" + 'x'"#), r#""don't" + "x""#);
}

#[test]
fn mistakes_are_named_by_key() {
    let mut v = Validator::default();
    let bad = r#"{"mappings":[{"blueprint":"b","entty":{},"entity":{"identifier":".a |","titel":".b"}}]}"#;
    assert!(compile(&mut v, "port", &toml::Value::String(bad.into())).is_none());
    let keys: Vec<&str> = v.problems.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["port.mappings[0].entty", "port.mappings[0].entity.titel"]
    );
    // A leaf that does not compile is null in Port: a warning, not a refusal.
    let warned: Vec<&str> = v.warnings.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(warned, ["port.mappings[0].entity.identifier"]);
    let mut v = Validator::default();
    let bad_filter = r#"[{"blueprint":"b","filter":".a |","entity":{"identifier":".a"}}]"#;
    assert!(compile(&mut v, "port", &toml::Value::String(bad_filter.into())).is_none());
    assert_eq!(v.problems[0].0, "port.mappings[0].filter");
}

#[test]
fn the_same_as_a_toml_table() {
    let table: toml::Value = toml::from_str(
        r#"mappings = [{ blueprint = "b", operation = "delete", entity = { identifier = ".body.id" } }]"#,
    )
    .expect("toml");
    let mut v = Validator::default();
    let p = compile(&mut v, "port", &table).expect("compiles");
    let out = p.apply(&envelope(r#"{"id":"x"}"#)).expect("applies");
    assert_eq!(
        serde_json::from_slice::<Value>(&out[0].body).expect("json"),
        serde_json::json!({"operation":"delete","blueprint":"b","deleteDependents":false,"entity":{"identifier":"x"}})
    );
}

#[test]
fn the_mappings_array_or_one_mapping_may_be_pasted_and_identifiers_are_strings() {
    let one = r#"{"blueprint":"b","entity":{"identifier":".body.id","title":".body.n"}}"#;
    let want = serde_json::json!([{"operation": "create", "blueprint": "b",
        "entity": {"identifier": "42", "title": 7}}]);
    for pasted in [
        one.to_string(),
        format!("[{one}]"),
        format!(r#"{{"mappings":[{one}]}}"#),
    ] {
        assert_eq!(
            Value::from(messages(&pasted, r#"{"id": 42, "n": 7}"#)),
            want,
            "{pasted}"
        );
    }
    let mut v = Validator::default();
    assert!(compile(&mut v, "port", &toml::Value::String(r#"{"x": 1}"#.into())).is_none());
    assert!(v.problems[0].1.contains("`mappings`"), "{:?}", v.problems);
}
