//! The game's field rules as JSON Schema (the 2020-12 dialect OpenAPI 3.1 uses), built from
//! the rules the parsers in [`crate::fields`] check. The API's OpenAPI document and the field
//! table of `docs/api.md` both come from here, so a bound changed in `fields` changes in both.
//!
//! Each schema is exact where JSON Schema can say it: a value it accepts the parser accepts,
//! and the other way round. Five rules are beyond it and are stated otherwise:
//! - a release date must exist in the calendar: `format: ludex-release-date`;
//! - at most [`limits::EXTRA_MAX_FIELDS`] unknown fields taking at most
//!   [`limits::EXTRA_MAX_BYTES`] bytes of JSON (JSON Schema cannot count only the properties it
//!   does not name, nor measure bytes): stated in the description;
//! - numbers inside unknown fields within a 64-bit float's range (their JSON text is kept as
//!   sent, so it must be text every reader takes): stated in the description;
//! - a currency needs a price: an `if`/`then` in the input schemas, but in a patch it depends on
//!   the stored game, so there it is stated in the description;
//! - the `id` of a body that replaces or patches a game must be the path's: stated in its
//!   description.

use crate::fields::{Currency, DecimalRule, TextRule, limits, rules};
use crate::record::{KNOWN_FIELDS, SERVER_FIELDS};
use serde_json::{Map, Value, json};

/// A regular-expression class (ECMA-262, Python and Rust syntax alike) of the characters up to
/// U+FFFF for which `pick` holds, or, `negated`, of every other character. White space and
/// control characters all lie below U+FFFF, so the classes built here are exact.
fn class(negated: bool, pick: impl Fn(char) -> bool) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in (0..=0xFFFF_u32)
        .filter_map(char::from_u32)
        .filter(|&c| pick(c))
    {
        let code = c as u32;
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == code => *end = code,
            _ => ranges.push((code, code)),
        }
    }
    let mut out = String::from(if negated { "[^" } else { "[" });
    for (start, end) in ranges {
        out.push_str(&format!("\\u{start:04X}"));
        if end > start {
            out.push_str(&format!("-\\u{end:04X}"));
        }
    }
    out.push(']');
    out
}

/// The pattern of a [`TextRule`]: surrounding white space (trimmed by the parser), then at
/// least one character that is neither white space nor refused, with allowed characters
/// between. The length bound is the schema's `maxLength`.
pub fn text_pattern(rule: TextRule) -> String {
    let space = class(false, char::is_whitespace);
    let edge = class(true, |c| c.is_whitespace() || !rule.allows(c));
    let inner = class(true, |c| !rule.allows(c));
    format!("^{space}*{edge}(?:{inner}*{edge})?{space}*$")
}

/// The pattern of a game id.
pub fn id_pattern() -> String {
    format!(
        "^[A-Za-z0-9][A-Za-z0-9._-]{{0,{}}}$",
        limits::ID_MAX_CHARS - 1
    )
}

/// The pattern of a cover key: `covers/` and path segments, none of them empty, `.` or `..`,
/// without control characters (what an object store takes as a key).
pub fn cover_key_pattern() -> String {
    let plain = class(true, |c| c == '/' || c.is_control());
    let first = class(true, |c| c == '.' || c == '/' || c.is_control());
    let segment = format!("(?:{first}{plain}*|\\.{first}{plain}*|\\.\\.{plain}+)");
    format!("^covers/{segment}(?:/{segment})*$")
}

/// The shape of a release date; [`RELEASE_DATE_FORMAT`] adds that it must exist.
pub const RELEASE_DATE_PATTERN: &str = "^[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?$";

/// The named format of a release date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, a date that exists,
/// in the years of `formatMinimum`–`formatMaximum`.
pub const RELEASE_DATE_FORMAT: &str = "ludex-release-date";

/// The schema of a text field.
pub fn text(rule: TextRule) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": rule.max_chars,
        "pattern": text_pattern(rule),
    })
}

/// The schema of a decimal field.
pub fn decimal(rule: DecimalRule) -> Value {
    json!({
        "type": "number",
        "minimum": 0,
        "maximum": rule.max(),
        "multipleOf": rule.step(),
    })
}

fn labels() -> Value {
    json!({
        "type": "array",
        "maxItems": limits::LIST_MAX_ENTRIES,
        "items": text(rules::LABEL),
    })
}

fn release_date() -> Value {
    json!({
        "type": ["string", "integer"],
        "pattern": RELEASE_DATE_PATTERN,
        "format": RELEASE_DATE_FORMAT,
        "formatMinimum": format!("{:04}", limits::YEAR_MIN),
        "formatMaximum": format!("{:04}", limits::YEAR_MAX),
        "minimum": limits::YEAR_MIN,
        "maximum": limits::YEAR_MAX,
    })
}

/// One field of a game: its name, its schema (without `null`) and what it means.
struct FieldDoc {
    name: &'static str,
    schema: Value,
    about: &'static str,
}

fn game_fields() -> Vec<FieldDoc> {
    let field = |name, schema, about| FieldDoc {
        name,
        schema,
        about,
    };
    let currencies: Vec<&str> = Currency::codes().collect();
    vec![
        field(
            "id",
            json!({
                "type": ["string", "integer"],
                "maxLength": limits::ID_MAX_CHARS,
                "pattern": id_pattern(),
                "minimum": 0,
                "maximum": u64::MAX,
            }),
            "ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit, or a \
             whole number; derived from the title and release year when absent",
        ),
        field(
            "title",
            text(rules::TITLE),
            "required; trimmed; no control characters",
        ),
        field(
            "platforms",
            labels(),
            "each trimmed, without control characters; repeats (ignoring case) are dropped",
        ),
        field("genres", labels(), "as `platforms`"),
        field(
            "release_date",
            release_date(),
            "`YYYY`, `YYYY-MM` or `YYYY-MM-DD`, a date that exists, or a year as a number",
        ),
        field(
            "developer",
            text(rules::NAME),
            "trimmed; no control characters",
        ),
        field(
            "publisher",
            text(rules::NAME),
            "trimmed; no control characters",
        ),
        field(
            "rating",
            decimal(rules::RATING),
            "at most one decimal place",
        ),
        field("price", decimal(rules::PRICE), "at most two decimal places"),
        field(
            "currency",
            json!({ "type": "string", "enum": currencies }),
            "an ISO 4217 code (lower case is accepted too, upper case is stored); needs a \
             price; USD when a price comes without one",
        ),
        field(
            "description",
            text(rules::DESCRIPTION),
            "trimmed; line breaks and tabs allowed, no other control characters",
        ),
        field("tags", labels(), "as `platforms`"),
        field(
            "cover_image",
            json!({
                "type": "string",
                "minLength": "covers/".len() + 1,
                "maxLength": limits::COVER_KEY_MAX_CHARS,
                "pattern": cover_key_pattern(),
            }),
            "a bucket key under `covers/` (segments not empty, `.` or `..`; no control \
             characters), set by `PUT /games/{id}/cover` to `covers/<id>/<hash>/original.<ext>`; \
             a game deletes only its own cover (that, or `covers/<id>.<ext>` from before sizes)",
        ),
    ]
}

/// `schema` that also accepts `null` (the parser treats a `null` field as an absent one).
fn nullable(mut schema: Value) -> Value {
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    match object.get_mut("type") {
        Some(Value::Array(types)) => types.push(json!("null")),
        Some(single) => *single = json!([single.clone(), "null"]),
        None => {}
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.push(Value::Null);
    }
    schema
}

/// The kind of request body a schema describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `POST /games` and upload records: `id` optional, `title` required.
    Create,
    /// `PUT /games/{id}`: the id is the path's.
    Replace,
    /// `PATCH /games/{id}` (JSON Merge Patch): `null` removes a field.
    Patch,
}

fn extras() -> String {
    format!(
        "Unknown fields are kept as they are: names of 1–{} characters, at most {} of them, \
         taking at most {} bytes of JSON, with numbers a 64-bit float holds.",
        limits::EXTRA_NAME_MAX_CHARS,
        limits::EXTRA_MAX_FIELDS,
        limits::EXTRA_MAX_BYTES
    )
}

/// The JSON Schema of a game body.
pub fn game_body(body: Body) -> Value {
    let mut properties = Map::new();
    for FieldDoc {
        name,
        schema,
        about,
        ..
    } in game_fields()
    {
        let mut schema = match (body, name) {
            (Body::Replace | Body::Patch, "id") => {
                let mut id = nullable(schema);
                id["description"] = json!(
                    "The id is the path's: leave it out or give the same one (another one is \
                     refused with 422; JSON Schema cannot tie a body to its path)."
                );
                id
            }
            (_, "title") => schema,
            _ => nullable(schema),
        };
        if let Some(object) = schema.as_object_mut() {
            object.entry("description").or_insert_with(|| json!(about));
        }
        properties.insert(name.to_owned(), schema);
    }
    for name in SERVER_FIELDS {
        properties.insert(
            name.to_owned(),
            json!({ "description": "Kept by the server; ignored in requests." }),
        );
    }
    let names = json!({ "minLength": 1, "maxLength": limits::EXTRA_NAME_MAX_CHARS });
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": true,
    });
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    let max_properties = KNOWN_FIELDS.len() + SERVER_FIELDS.len() + limits::EXTRA_MAX_FIELDS;
    match body {
        Body::Create | Body::Replace => {
            object.insert("required".into(), json!(["title"]));
            object.insert("propertyNames".into(), names);
            object.insert("maxProperties".into(), json!(max_properties));
            // A currency needs a price.
            object.insert(
                "if".into(),
                json!({ "required": ["currency"], "properties": { "currency": { "type": "string" } } }),
            );
            object.insert(
                "then".into(),
                json!({ "required": ["price"], "properties": { "price": { "type": "number" } } }),
            );
            object.insert("description".into(), json!(format!("A game. {}", extras())));
        }
        Body::Patch => {
            // Removing a field that does not exist is allowed, whatever its name; only the
            // names that stay are checked.
            let bad_name = format!("^(?:|[\\s\\S]{{{},}})$", limits::EXTRA_NAME_MAX_CHARS + 1);
            object.insert(
                "patternProperties".into(),
                json!({ bad_name: { "type": "null" } }),
            );
            object.insert(
                "description".into(),
                json!(format!(
                    "A JSON Merge Patch (RFC 7396) of a game: fields to set; `null` removes one \
                     (removing the price removes its currency). The patched game must be valid: \
                     a currency needs a price, in the patch or stored. {}",
                    extras()
                )),
            );
        }
    }
    schema
}

/// The field rules as a Markdown table, for `docs/api.md`.
pub fn markdown_table() -> String {
    let mut out = String::from("| Field | Type | Rule |\n|---|---|---|\n");
    for FieldDoc {
        name,
        schema,
        about,
        ..
    } in game_fields()
    {
        out.push_str(&format!(
            "| `{name}` | {} | {} |\n",
            type_name(&schema),
            rule_text(name, &schema, about)
        ));
    }
    let server = SERVER_FIELDS.map(|f| format!("`{f}`")).join(", ");
    out.push_str(&format!(
        "| {server} | — | kept by the server; accepted in requests (so exports ingest again) and ignored |\n"
    ));
    out.push_str(&format!("| anything else | any JSON | {} |\n", extras()));
    out
}

fn type_name(schema: &Value) -> String {
    let types: Vec<&str> = match &schema["type"] {
        Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
        Value::String(one) => vec![one.as_str()],
        _ => vec![],
    };
    match types.as_slice() {
        ["array"] => format!("list of {}s", type_name(&schema["items"])),
        _ => types.join(" or "),
    }
}

fn rule_text(name: &str, schema: &Value, about: &str) -> String {
    let mut parts = Vec::new();
    let items = if schema["type"] == "array" {
        parts.push(format!("at most {} entries", schema["maxItems"]));
        &schema["items"]
    } else {
        schema
    };
    if let (Some(min), Some(max)) = (items["minLength"].as_u64(), items["maxLength"].as_u64()) {
        parts.push(format!("{min}–{max} characters as sent"));
    } else if let Some(max) = items["maxLength"].as_u64() {
        parts.push(format!("at most {max} characters"));
    }
    if let Some(format) = schema["format"].as_str() {
        parts.push(format!(
            "years {}–{} (`format: {format}`)",
            schema["formatMinimum"].as_str().unwrap_or_default(),
            schema["formatMaximum"].as_str().unwrap_or_default()
        ));
    } else if let (Some(min), Some(max)) = (schema["minimum"].as_f64(), schema["maximum"].as_f64())
        && name != "id"
    {
        parts.push(format!("{min}–{max}"));
    }
    if let Some(step) = schema["multipleOf"].as_f64() {
        parts.push(format!("in steps of {step}"));
    }
    if let Some(codes) = schema["enum"].as_array() {
        parts.push(format!("one of {} codes", codes.len()));
    }
    parts.push(about.to_owned());
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{CoverKey, Description, GameId, Label, Name, Title};

    #[test]
    fn the_classes_hold_exactly_what_rust_calls_white_space_and_control() {
        // Every white space and control character is below U+FFFF, so a class built from the
        // BMP misses none.
        assert!(
            (0x10000..=0x10FFFF_u32)
                .filter_map(char::from_u32)
                .all(|c| !c.is_whitespace() && !c.is_control())
        );
        assert_eq!(
            class(false, char::is_control),
            "[\\u0000-\\u001F\\u007F-\\u009F]"
        );
    }

    /// Strings from an alphabet of the characters the rules turn on: white space (some of it
    /// control characters), other control characters, dots, slashes, letters, and characters
    /// beyond ASCII and beyond the BMP.
    fn samples(max_len: usize, seed: u64) -> Vec<String> {
        const ALPHABET: [char; 16] = [
            'a', 'Z', '7', ' ', '\t', '\n', '\r', '\u{85}', '\u{a0}', '\u{3000}', '\u{1}',
            '\u{9f}', '.', '/', 'é', '😀',
        ];
        let mut state = seed;
        let mut next = move || {
            // xorshift64: a fixed, reproducible sequence.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = vec![
            String::new(),
            "covers/".into(),
            "covers/..".into(),
            "covers//a".into(),
            "covers/a/".into(),
        ];
        for _ in 0..20_000 {
            let len = (next() % (max_len as u64 + 3)) as usize;
            let prefix = if next() % 3 == 0 { "covers/" } else { "" };
            let body: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            out.push(format!("{prefix}{body}"));
        }
        out
    }

    fn schema_accepts(schema: &Value, value: &str) -> bool {
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        accepts(schema, &pattern, value)
    }

    fn accepts(schema: &Value, pattern: &regex::Regex, value: &str) -> bool {
        let chars = value.chars().count() as u64;
        schema["minLength"].as_u64().is_none_or(|min| chars >= min)
            && schema["maxLength"].as_u64().is_none_or(|max| chars <= max)
            && pattern.is_match(value)
    }

    #[test]
    fn each_text_schema_accepts_exactly_what_its_parser_accepts() {
        type Parser = Box<dyn Fn(&str) -> bool>;
        // The text rules with a short maximum, so that random samples cross it.
        let short = |rule: TextRule| TextRule {
            max_chars: 6,
            ..rule
        };
        let (title, description) = (short(rules::TITLE), short(rules::DESCRIPTION));
        let cases: [(&str, Value, Parser, usize); 5] = [
            (
                "title",
                text(title),
                Box::new(move |s| title.check(s).is_ok()),
                8,
            ),
            (
                "description",
                text(description),
                Box::new(move |s| description.check(s).is_ok()),
                8,
            ),
            (
                "id",
                json!({"pattern": id_pattern(), "maxLength": limits::ID_MAX_CHARS}),
                Box::new(|s| GameId::parse(s).is_ok()),
                8,
            ),
            (
                "cover_image",
                game_fields()[12].schema.clone(),
                Box::new(|s| CoverKey::parse(s).is_ok()),
                8,
            ),
            (
                "label",
                text(rules::LABEL),
                Box::new(|s| Label::parse(s).is_ok()),
                8,
            ),
        ];
        for (what, schema, parses, max_len) in cases {
            let mut accepted = 0;
            let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
            for sample in samples(max_len, 0x5eed ^ what.len() as u64) {
                let by_schema = accepts(&schema, &pattern, &sample);
                assert_eq!(
                    by_schema,
                    parses(&sample),
                    "{what}: {sample:?} (schema {})",
                    schema["pattern"]
                );
                accepted += usize::from(by_schema);
            }
            assert!(accepted > 100, "{what}: only {accepted} samples were valid");
        }
        // The full-length rules: the bound itself is the schema's maxLength.
        let title = text(rules::TITLE);
        assert_eq!(title["maxLength"], rules::TITLE.max_chars);
        assert!(Title::parse(&"x".repeat(rules::TITLE.max_chars)).is_ok());
        assert!(Title::parse(&"x".repeat(rules::TITLE.max_chars + 1)).is_err());
        assert!(Name::parse(&"x".repeat(rules::NAME.max_chars + 1)).is_err());
        assert_eq!(text(rules::NAME)["maxLength"], rules::NAME.max_chars);
        let description = text(rules::DESCRIPTION);
        assert_eq!(description["maxLength"], limits::DESCRIPTION_MAX_CHARS);
        assert!(Description::parse("a\n\tb").is_ok());
        assert!(schema_accepts(&description, "a\n\tb"));
    }

    /// The docs that list the field rules, between these markers.
    const DOCS: [&str; 2] = ["docs/api.md", "docs/data-model.md"];
    const BEGIN: &str = "<!-- field rules: generated from ludex_domain::schema; LUDEX_BLESS_DOCS=1 cargo test -p ludex-domain rewrites them -->\n";
    const END: &str = "<!-- end of field rules -->";

    #[test]
    fn the_docs_list_the_field_rules_the_schema_states() {
        let table = markdown_table();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for doc in DOCS {
            let path = root.join(doc);
            let text = std::fs::read_to_string(&path).unwrap();
            let start = text
                .find(BEGIN)
                .unwrap_or_else(|| panic!("{doc} has no field rules"));
            let start = start + BEGIN.len();
            let end = start + text[start..].find(END).unwrap();
            if std::env::var_os("LUDEX_BLESS_DOCS").is_some() {
                std::fs::write(&path, format!("{}{table}{}", &text[..start], &text[end..]))
                    .unwrap();
                continue;
            }
            assert_eq!(
                text[start..end],
                table,
                "{doc} is out of step with the field rules; LUDEX_BLESS_DOCS=1 cargo test -p ludex-domain rewrites it"
            );
        }
    }

    #[test]
    fn the_schema_names_every_known_field_and_no_other() {
        let names: Vec<&str> = game_fields().iter().map(|f| f.name).collect();
        assert_eq!(names, KNOWN_FIELDS);
        let patch = game_body(Body::Patch);
        assert!(patch.get("required").is_none());
        assert_eq!(patch["properties"]["title"]["type"], "string");
        assert_eq!(
            game_body(Body::Create)["properties"]["rating"]["type"],
            json!(["number", "null"])
        );
    }
}
