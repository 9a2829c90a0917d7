//! A record as read from JSON text, before validation: the fields ludex knows as JSON values,
//! every other field kept as its JSON text (so `18446744073709551616`, `-0` or `1E2` come back
//! exactly as given, where a parsed number would not), and JSON Merge Patch (RFC 7396) over
//! both without ever turning the kept text into numbers.

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Fields the server keeps; accepted in input (so exports ingest again) and ignored.
pub const SERVER_FIELDS: [&str; 3] = ["created_at", "updated_at", "version"];

/// The fields of a game record that ludex validates.
pub const KNOWN_FIELDS: [&str; 13] = [
    "id",
    "title",
    "platforms",
    "genres",
    "release_date",
    "developer",
    "publisher",
    "rating",
    "price",
    "currency",
    "description",
    "tags",
    "cover_image",
];

/// The JSON text of an unknown field, without insignificant white space.
#[derive(Clone, Debug)]
pub struct ExtraValue(Box<RawValue>);

impl PartialEq for ExtraValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for ExtraValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl ExtraValue {
    /// The value's JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// A parsed value (a [`Value`], a `str`, …) as JSON text.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Self {
        // A `Value` or a `str` always serialises.
        Self(serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    fn from_raw(raw: Box<RawValue>) -> Self {
        Self(compact(raw))
    }

    fn is_null(&self) -> bool {
        self.get() == "null"
    }

    /// The members of an object, each as JSON text; `None` for anything else.
    fn members(&self) -> Option<BTreeMap<String, Box<RawValue>>> {
        if self.get().starts_with('{') {
            serde_json::from_str(self.get()).ok()
        } else {
            None
        }
    }

    /// RFC 7396 applied to JSON text: objects merge member by member, `null` removes, anything
    /// else replaces. Values the patch does not touch keep their text.
    fn merged(target: Option<&Self>, patch: &Self) -> Self {
        let Some(patch_members) = patch.members() else {
            return patch.clone();
        };
        let mut members = target.and_then(Self::members).unwrap_or_default();
        for (key, value) in patch_members {
            let value = Self(value);
            if value.is_null() {
                members.remove(&key);
            } else {
                let current = members.remove(&key).map(Self);
                members.insert(key, Self::merged(current.as_ref(), &value).0);
            }
        }
        // Members that are already JSON text always serialise.
        Self(
            serde_json::value::to_raw_value(&members).unwrap_or_else(|_| RawValue::NULL.to_owned()),
        )
    }
}

/// Drops the white space between tokens, keeping every token (numbers, escapes) as written.
fn compact(raw: Box<RawValue>) -> Box<RawValue> {
    let text = raw.get();
    if !text.bytes().any(|b| b.is_ascii_whitespace()) {
        return raw;
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    RawValue::from_string(out).unwrap_or(raw)
}

/// Why JSON text is not a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("malformed JSON: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Valid JSON, but not an object: what it is instead ("a list", "a number", …).
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
}

/// One record's fields: known ones parsed, unknown ones as text, server-kept ones dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordFields {
    pub known: Map<String, Value>,
    pub extra: BTreeMap<String, ExtraValue>,
}

impl RecordFields {
    /// Reads one JSON object.
    pub fn parse(text: &[u8]) -> Result<Self, RecordError> {
        match text.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | None => Ok(serde_json::from_slice(text)?),
            Some(_) => {
                let value: Value = serde_json::from_slice(text)?;
                Err(RecordError::NotAnObject(crate::fields::json_type(&value)))
            }
        }
    }

    /// The fields of an already parsed object.
    pub fn from_object(object: &Map<String, Value>) -> Self {
        let mut fields = Self::default();
        for (key, value) in object {
            if KNOWN_FIELDS.contains(&key.as_str()) {
                fields.known.insert(key.clone(), value.clone());
            } else if !SERVER_FIELDS.contains(&key.as_str()) {
                fields
                    .extra
                    .insert(key.clone(), ExtraValue::from_value(value));
            }
        }
        fields
    }

    /// Applies a JSON Merge Patch (RFC 7396).
    /// A currency belongs to its price: a patch that removes the price and says nothing of the
    /// currency removes the currency too.
    pub fn merge_patch(&mut self, patch: &Self) {
        if patch.known.get("price").is_some_and(Value::is_null)
            && !patch.known.contains_key("currency")
        {
            self.known.remove("currency");
        }
        for (key, value) in &patch.known {
            if value.is_null() {
                self.known.remove(key);
            } else {
                merge_value(self.known.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        for (key, value) in &patch.extra {
            if value.is_null() {
                self.extra.remove(key);
            } else {
                let merged = ExtraValue::merged(self.extra.get(key), value);
                self.extra.insert(key.clone(), merged);
            }
        }
    }
}

/// RFC 7396 over parsed values.
fn merge_value(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_value(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

impl<'de> Deserialize<'de> for RecordFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;

        impl<'de> Visitor<'de> for Fields {
            type Value = RecordFields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RecordFields, A::Error> {
                let mut fields = RecordFields::default();
                while let Some(key) = map.next_key::<String>()? {
                    if KNOWN_FIELDS.contains(&key.as_str()) {
                        let value = map.next_value::<Value>()?;
                        fields.known.insert(key, value);
                    } else if SERVER_FIELDS.contains(&key.as_str()) {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        let raw = map.next_value::<Box<RawValue>>()?;
                        fields.extra.insert(key, ExtraValue::from_raw(raw));
                    }
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra(fields: &RecordFields, key: &str) -> String {
        fields.extra[key].get().to_owned()
    }

    #[test]
    fn unknown_fields_keep_their_text_and_lose_only_white_space() {
        let fields = RecordFields::parse(
            br#"{"title": "A", "big": 18446744073709551616, "neg": -0, "exp": 1E2,
                "deep": { "x" : 1.50, "s": "a b\" c" }, "version": 3}"#,
        )
        .unwrap();
        assert_eq!(fields.known["title"], "A");
        assert_eq!(extra(&fields, "big"), "18446744073709551616");
        assert_eq!(extra(&fields, "neg"), "-0");
        assert_eq!(extra(&fields, "exp"), "1E2");
        assert_eq!(extra(&fields, "deep"), r#"{"x":1.50,"s":"a b\" c"}"#);
        assert!(
            !fields.extra.contains_key("version"),
            "server fields are dropped"
        );
    }

    #[test]
    fn what_is_not_an_object_says_what_it_is() {
        assert_eq!(
            RecordFields::parse(b"[1]").unwrap_err().to_string(),
            "expected a JSON object, found a list"
        );
        assert!(matches!(
            RecordFields::parse(b"{\"a\": oops}"),
            Err(RecordError::Malformed(_))
        ));
    }

    #[test]
    fn merge_patch_keeps_the_text_of_what_it_does_not_touch() {
        let mut fields =
            RecordFields::parse(br#"{"title":"A","tags":["x"],"m":{"a":1E2,"b":{"c":-0}},"z":7}"#)
                .unwrap();
        let patch =
            RecordFields::parse(br#"{"tags":null,"m":{"b":{"d":1.0},"a":null},"z":null,"n":5}"#)
                .unwrap();
        fields.merge_patch(&patch);
        assert!(!fields.known.contains_key("tags"));
        assert_eq!(extra(&fields, "m"), r#"{"b":{"c":-0,"d":1.0}}"#);
        assert_eq!(extra(&fields, "n"), "5");
        assert!(!fields.extra.contains_key("z"));
        // A patch object over a scalar replaces it, without its nulls.
        let mut scalar = RecordFields::parse(br#"{"m":1}"#).unwrap();
        scalar.merge_patch(&RecordFields::parse(br#"{"m":{"a":null,"b":2}}"#).unwrap());
        assert_eq!(extra(&scalar, "m"), r#"{"b":2}"#);
    }
}
