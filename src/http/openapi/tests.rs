//! The document's request bodies against the rules the server applies:
//! every JSON body has an example the server accepts, every string and
//! integer a client may send states its limit, and each stated limit is
//! the validator's own (accepted at the limit, refused one past it).

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use validator::Validate;

use crate::{
    auth::password::check_policy,
    http::{
        extract::parse_json,
        routes::{appointments, auth, hospitals, patients, permissions, quotes},
        routes::{travel, treatments, users},
        rules::check_rules_exist,
    },
    state::AppState,
};

/// The schema every typed id has (`domain::ids`): bounded by its pattern.
const ID_PATTERN: &str = "^[0-9a-f]{24}$";

/// The document built from the same registrations as the served one.
fn document() -> Value {
    let doc = OpenApiRouter::<AppState>::with_openapi(super::ApiDoc::openapi())
        .merge(crate::http::routes::health::router())
        .merge(crate::http::public_v1().merge(crate::http::protected_v1()))
        .into_openapi();
    serde_json::to_value(doc).expect("the document serializes")
}

/// Whether the server takes `body`: as `ApiJson` reads it (strict
/// deserialization, then `validate()`).
type Accepts = fn(&Value) -> bool;

fn read<T: DeserializeOwned + Validate>(body: &Value) -> Option<T> {
    let bytes = serde_json::to_vec(body).ok()?;
    parse_json::<T>(&bytes)
        .ok()
        .filter(|b: &T| b.validate().is_ok())
}

fn accepts<T: DeserializeOwned + Validate>(body: &Value) -> bool {
    read::<T>(body).is_some()
}

// The password bodies: the policy (12 to 128 characters) is checked after
// the shape, by the handler or workflow, without a database.
fn accepts_create_user(body: &Value) -> bool {
    read::<users::CreateUser>(body)
        .is_some_and(|b| check_policy(&b.password, &b.email, "password").is_ok())
}

fn accepts_reset_password(body: &Value) -> bool {
    read::<users::ResetPassword>(body)
        .is_some_and(|b| check_policy(&b.new_password, "", "new_password").is_ok())
}

fn accepts_password_change(body: &Value) -> bool {
    read::<auth::PasswordChange>(body)
        .is_some_and(|b| check_policy(&b.new_password, "", "new_password").is_ok())
}

/// Every JSON request body by its schema name.
const BODIES: &[(&str, Accepts)] = &[
    ("LoginRequest", accepts::<auth::LoginRequest>),
    ("RefreshRequest", accepts::<auth::RefreshRequest>),
    ("UpdateMe", accepts::<auth::UpdateMe>),
    ("PasswordChange", accepts_password_change),
    ("CreateUser", accepts_create_user),
    ("UpdateUser", accepts::<users::UpdateUser>),
    ("ResetPassword", accepts_reset_password),
    ("SetRules", accepts::<permissions::SetRules>),
    ("CreateHospital", accepts::<hospitals::CreateHospital>),
    ("UpdateHospital", accepts::<hospitals::UpdateHospital>),
    ("RegisterPatient", accepts::<patients::RegisterPatient>),
    ("UpdatePatient", accepts::<patients::UpdatePatient>),
    ("AssignHospital", accepts::<patients::AssignHospital>),
    ("LogAppointment", accepts::<appointments::LogAppointment>),
    (
        "UpdateAppointment",
        accepts::<appointments::UpdateAppointment>,
    ),
    ("RecordTreatment", accepts::<treatments::RecordTreatment>),
    ("UpdateTreatment", accepts::<treatments::UpdateTreatment>),
    ("RequestQuote", accepts::<quotes::RequestQuote>),
    ("AnswerQuote", accepts::<quotes::AnswerQuote>),
    ("AcceptQuote", accepts::<quotes::AcceptQuote>),
    ("PutTravel", accepts::<travel::PutTravel>),
];

/// `(METHOD path, media type object)` of every JSON request body.
fn json_bodies(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if let Some(media) = op["requestBody"]["content"].get("application/json") {
                out.push((format!("{} {path}", method.to_uppercase()), media));
            }
        }
    }
    assert!(!out.is_empty(), "the document has request bodies");
    out
}

/// The component a `$ref` names, with its name.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> (Option<&'a str>, &'a Value) {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            (Some(name), &doc["components"]["schemas"][name])
        }
        None => (None, schema),
    }
}

/// An optional reference (`oneOf: [null, {$ref}]`) as the schema it names.
fn non_null<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let alts = schema["oneOf"].as_array().map(|alts| {
        alts.iter()
            .filter(|a| a["type"] != "null")
            .collect::<Vec<_>>()
    });
    match alts.as_deref() {
        Some([only]) => resolve(doc, only).1,
        _ => resolve(doc, schema).1,
    }
}

fn example(v: &Value) -> Option<&Value> {
    v.get("example")
        .filter(|e| !e.is_null())
        .or_else(|| v["examples"].get(0))
        .or_else(|| v["examples"].as_object().and_then(|e| e.values().next()))
}

/// The JSON types a schema allows (`type` is a name or a list of names).
fn types(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Adds to `problems` every string without `maxLength` and every integer
/// without `maximum` that `schema` lets a client send, through `$ref`s,
/// alternatives, properties and array items. Closed sets (`enum`), dates,
/// date-times and ids (bounded by their pattern) are exempt.
fn unbounded(
    doc: &Value,
    schema: &Value,
    at: &str,
    seen: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let (name, schema) = resolve(doc, schema);
    if let Some(name) = name {
        if !seen.insert(name.to_owned()) {
            return;
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for alt in schema[key].as_array().into_iter().flatten() {
            unbounded(doc, alt, at, seen, problems);
        }
    }
    if schema.get("enum").is_some() {
        return;
    }
    let types = types(schema);
    if types.contains(&"string") {
        let format = schema["format"].as_str().unwrap_or("");
        let exempt = matches!(format, "date" | "date-time")
            || schema["pattern"].as_str() == Some(ID_PATTERN);
        if !exempt && schema.get("maxLength").is_none() {
            problems.push(format!("{at}: string without maxLength"));
        }
    }
    if types.contains(&"integer") && schema.get("maximum").is_none() {
        problems.push(format!("{at}: integer without maximum"));
    }
    for (prop, sub) in schema["properties"].as_object().into_iter().flatten() {
        unbounded(doc, sub, &format!("{at}.{prop}"), seen, problems);
    }
    if schema["items"].is_object() {
        unbounded(doc, &schema["items"], &format!("{at}[]"), seen, problems);
    }
}

#[test]
fn every_request_body_has_an_example_and_states_its_limits() {
    let doc = document();
    let mut problems = Vec::new();
    for (op, media) in json_bodies(&doc) {
        let (name, schema) = resolve(&doc, &media["schema"]);
        let name = name.unwrap_or("an inline body");
        if example(media).is_none() && example(schema).is_none() {
            problems.push(format!("{op}: {name} has no example"));
        }
        let at = format!("{op}: {name}");
        unbounded(
            &doc,
            &media["schema"],
            &at,
            &mut BTreeSet::new(),
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_request_body_example_is_accepted() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for (name, accepts) in BODIES {
        let example = example(&schemas[*name]).unwrap_or_else(|| panic!("{name}: no example"));
        assert!(accepts(example), "{name}: the server refuses {example}");
    }
    // Rules the handlers and workflows check without a database.
    let rules = |name: &str, field: &str| -> Vec<crate::domain::permission::Rule> {
        serde_json::from_value(schemas[name]["example"][field].clone()).unwrap_or_default()
    };
    for (name, field) in [
        ("SetRules", "rules"),
        ("CreateUser", "permissions"),
        ("UpdateUser", "permissions"),
    ] {
        check_rules_exist(&rules(name, field), field)
            .unwrap_or_else(|e| panic!("{name}.{field}: {e:?}"));
    }
    let treatment = read::<treatments::RecordTreatment>(&schemas["RecordTreatment"]["example"])
        .expect("RecordTreatment");
    assert_eq!(treatment.cost.currency, treatment.earnings.currency);
    assert!(treatment.earnings.amount_minor <= treatment.cost.amount_minor);
    assert_ne!(
        treatment.status,
        crate::domain::treatment::TreatmentState::Cancelled
    );
    let passport = schemas["PutTravel"]["example"]["passport"]["number"]
        .as_str()
        .unwrap_or_default();
    assert!(crate::domain::travel::normalize_passport(passport).is_some());

    // Every JSON body of the document is one of those above.
    for (op, media) in json_bodies(&doc) {
        let (name, _) = resolve(&doc, &media["schema"]);
        assert!(
            name.is_some_and(|n| BODIES.iter().any(|(b, _)| *b == n)),
            "{op}: add its body to BODIES"
        );
    }
}

/// Limits that depend on more than a length or a number: left to the
/// example test. `(body, JSON pointer)`.
const CONTENT_CHECKED: &[(&str, &str)] = &[("UpdateMe", "/time_zone")];

/// One body's stated limits, tried against the server's own check.
struct Probe<'a> {
    doc: &'a Value,
    name: &'a str,
    accepts: Accepts,
    example: &'a Value,
    problems: Vec<String>,
}

impl Probe<'_> {
    /// Whether the example with `value` at `pointer` gets the answer the
    /// schema promises (`inside` the limits: accepted; else refused).
    fn expect(&mut self, pointer: &str, value: Value, inside: bool, what: &str) {
        let mut body = self.example.clone();
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        let Some(obj) = body.pointer_mut(parent).and_then(Value::as_object_mut) else {
            return;
        };
        obj.insert(key.to_owned(), value);
        if (self.accepts)(&body) != inside {
            let answer = if inside { "refuses" } else { "accepts" };
            self.problems.push(format!(
                "{}{pointer}: the server {answer} {what}",
                self.name
            ));
        }
    }

    fn string_limits(&mut self, pointer: &str, schema: &Value) {
        let x = |n: u64| Value::from("x".repeat(n as usize));
        if let Some(max) = schema["maxLength"].as_u64() {
            self.expect(pointer, x(max), true, &format!("{max} characters"));
            self.expect(
                pointer,
                x(max + 1),
                false,
                &format!("{} characters", max + 1),
            );
        }
        if let Some(min) = schema["minLength"].as_u64().filter(|m| *m > 0) {
            self.expect(pointer, x(min), true, &format!("{min} characters"));
            self.expect(
                pointer,
                x(min - 1),
                false,
                &format!("{} characters", min - 1),
            );
        }
    }

    fn integer_limits(&mut self, pointer: &str, schema: &Value) {
        let int = |v: &Value| v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
        let json = |n: i128| {
            i64::try_from(n)
                .map(Value::from)
                .or_else(|_| u64::try_from(n).map(Value::from))
                .expect("a JSON integer")
        };
        if let Some(max) = int(&schema["maximum"]) {
            self.expect(pointer, json(max), true, &max.to_string());
            self.expect(pointer, json(max + 1), false, &(max + 1).to_string());
        }
        if let Some(min) = int(&schema["minimum"]) {
            self.expect(pointer, json(min), true, &min.to_string());
            self.expect(pointer, json(min - 1), false, &(min - 1).to_string());
        }
    }

    /// Dates and date-times: every one a request carries is held to
    /// 1900-01-01 ..= 2200-12-31 (`domain::dates`).
    fn date_limits(&mut self, pointer: &str, date_time: bool) {
        let [first, last, before, after] = if date_time {
            [
                "1900-01-01T00:00:00Z",
                "2200-12-31T23:59:59Z",
                "1899-12-31T23:59:59Z",
                "2201-01-01T00:00:00Z",
            ]
        } else {
            ["1900-01-01", "2200-12-31", "1899-12-31", "2201-01-01"]
        };
        for (value, inside) in [(first, true), (last, true), (before, false), (after, false)] {
            self.expect(pointer, Value::from(value), inside, value);
        }
    }

    /// Arrays of plain strings: the item count and each item's length.
    fn array_limits(&mut self, pointer: &str, schema: &Value) {
        let item = non_null(self.doc, &schema["items"]);
        if types(item) != ["string"] || item.get("pattern").is_some() {
            return;
        }
        let list = |n: u64, len: u64| Value::from(vec!["x".repeat(len as usize); n as usize]);
        if let Some(max) = schema["maxItems"].as_u64() {
            self.expect(pointer, list(max, 1), true, &format!("{max} items"));
            self.expect(
                pointer,
                list(max + 1, 1),
                false,
                &format!("{} items", max + 1),
            );
        }
        if let Some(max) = item["maxLength"].as_u64() {
            self.expect(pointer, list(1, max), true, &format!("an item of {max}"));
            self.expect(pointer, list(1, max + 1), false, "a longer item");
        }
        if let Some(min) = item["minLength"].as_u64().filter(|m| *m > 0) {
            self.expect(pointer, list(1, min - 1), false, "a shorter item");
        }
    }

    /// Every limit of the object `schema` at `pointer`, and of the objects
    /// nested in it that the example fills in.
    fn object(&mut self, pointer: &str, schema: &Value) {
        let doc = self.doc;
        for (prop, sub) in schema["properties"].as_object().into_iter().flatten() {
            let at = format!("{pointer}/{prop}");
            if CONTENT_CHECKED.contains(&(self.name, at.as_str())) {
                continue;
            }
            let sub = non_null(doc, sub);
            let format = sub["format"].as_str().unwrap_or("");
            if sub.get("enum").is_some() || sub.get("pattern").is_some() || format == "email" {
                continue;
            }
            let types = types(sub);
            if matches!(format, "date" | "date-time") {
                self.date_limits(&at, format == "date-time");
            } else if types.contains(&"string") {
                self.string_limits(&at, sub);
            } else if types.contains(&"integer") {
                self.integer_limits(&at, sub);
            } else if types.contains(&"array") {
                self.array_limits(&at, sub);
            } else if self.example.pointer(&at).is_some_and(Value::is_object) {
                self.object(&at, sub);
            }
        }
    }
}

#[test]
fn every_stated_limit_is_the_servers_own() {
    let doc = document();
    let mut problems = Vec::new();
    for (name, accepts) in BODIES {
        let schema = &doc["components"]["schemas"][*name];
        let mut probe = Probe {
            doc: &doc,
            name,
            accepts: *accepts,
            example: example(schema).expect("an example"),
            problems: Vec::new(),
        };
        probe.object("", schema);
        problems.append(&mut probe.problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The bounds written as numbers in the attributes, against their sources:
/// the longest protected route a rule may name, the longest IANA name.
#[test]
fn bounds_taken_from_lists_match_the_lists() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let longest_route = crate::http::protected_routes()
        .iter()
        .map(|r| r.path.chars().count())
        .max();
    assert_eq!(
        schemas["Rule"]["properties"]["path"]["maxLength"].as_u64(),
        longest_route.map(|n| n as u64)
    );
    let longest_zone = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name().len())
        .max()
        .map(|n| n as u64);
    assert_eq!(
        schemas["UpdateMe"]["properties"]["time_zone"]["maxLength"].as_u64(),
        longest_zone
    );
    let tz = doc["paths"]["/api/v1/follow-ups"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "tz"))
        .map(|p| p["schema"]["maxLength"].as_u64());
    assert_eq!(tz, Some(longest_zone));
    // Every zone name fits, and none is refused for its length.
    assert!(chrono_tz::TZ_VARIANTS
        .iter()
        .all(|tz| crate::domain::zone::validate(tz.name()).is_ok()));
}
