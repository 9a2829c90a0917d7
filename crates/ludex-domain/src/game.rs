//! The game record: parsed from untrusted JSON into a [`Game`], stored as a canonical JSON
//! document, and served back as a [`StoredGame`] with the server-kept fields.

use crate::fields::{
    CoverKey, Currency, Description, GameId, Label, Name, Price, Rating, ReleaseDate, Title,
    json_type, limits,
};
use crate::record::{ExtraValue, RecordFields};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// What was wrong with one field (or, with `field: None`, with the record as a whole).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: Option<String>,
    pub reason: String,
    /// The CSV column the field was read from, in the rejects of a CSV upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<SourceColumn>,
}

/// A column of a CSV upload: its number (1-based) and its header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceColumn {
    pub number: usize,
    pub header: String,
}

impl FieldError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            reason: reason.into(),
            column: None,
        }
    }

    pub fn record(reason: impl Into<String>) -> Self {
        Self {
            field: None,
            reason: reason.into(),
            column: None,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.field, &self.column) {
            (Some(field), Some(column)) => write!(
                f,
                "column {} ({:?}) {field}: {}",
                column.number, column.header, self.reason
            ),
            (Some(field), None) => write!(f, "{field}: {}", self.reason),
            (None, _) => f.write_str(&self.reason),
        }
    }
}

/// A valid game as a client or an upload describes it (no server-kept fields).
#[derive(Clone, Debug, PartialEq)]
pub struct Game {
    pub id: GameId,
    pub title: Title,
    pub platforms: Vec<Label>,
    pub genres: Vec<Label>,
    pub release_date: Option<ReleaseDate>,
    pub developer: Option<Name>,
    pub publisher: Option<Name>,
    pub rating: Option<Rating>,
    pub price: Option<Price>,
    pub description: Option<Description>,
    pub tags: Vec<Label>,
    pub cover_image: Option<CoverKey>,
    /// Fields ludex does not know, kept as their JSON text (at most 32, 16 KiB in all).
    pub extra: BTreeMap<String, ExtraValue>,
}

/// Collects every field error of a record instead of stopping at the first.
struct Errors(Vec<FieldError>);

impl Errors {
    fn take<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|reason| self.0.push(FieldError::field(field, reason)))
            .ok()
    }

    /// Parses `field` when it is present and not null.
    fn optional<T>(
        &mut self,
        object: &Map<String, Value>,
        field: &str,
        parse: impl Fn(&Value) -> Result<T, String>,
    ) -> Option<T> {
        present(object, field).and_then(|v| self.take(field, parse(v)))
    }
}

fn present<'m>(object: &'m Map<String, Value>, field: &str) -> Option<&'m Value> {
    object.get(field).filter(|v| !v.is_null())
}

impl Game {
    /// Parses one record. `id` may be absent: it is then derived from the title and year.
    pub fn from_object(object: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        Self::from_record(RecordFields::from_object(object))
    }

    /// Validates a record read from JSON text.
    pub fn from_record(fields: RecordFields) -> Result<Self, Vec<FieldError>> {
        Self::from_fields(&fields.known, fields.extra)
    }

    /// Validates a record's known fields and keeps its unknown ones (see [`RecordFields`]);
    /// the caller keeps the known fields, to name the record in a reject.
    pub fn from_fields(
        object: &Map<String, Value>,
        extra: BTreeMap<String, ExtraValue>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Errors(Vec::new());
        let title = match present(object, "title") {
            Some(v) => errors.take("title", Title::from_json(v)),
            None => {
                errors.0.push(FieldError::field("title", "is required"));
                None
            }
        };
        let id = errors.optional(object, "id", GameId::from_json);
        let release_date = errors.optional(object, "release_date", ReleaseDate::from_json);
        let developer = errors.optional(object, "developer", Name::from_json);
        let publisher = errors.optional(object, "publisher", Name::from_json);
        let rating = errors.optional(object, "rating", Rating::from_json);
        let description = errors.optional(object, "description", Description::from_json);
        let cover_image = errors.optional(object, "cover_image", CoverKey::from_json);
        let mut list = |field: &str| match present(object, field) {
            None => Vec::new(),
            Some(v) => Label::list_from_json(v).unwrap_or_else(|(index, reason)| {
                let name = match index {
                    Some(i) => format!("{field}[{i}]"),
                    None => field.to_owned(),
                };
                errors.0.push(FieldError::field(name, reason));
                Vec::new()
            }),
        };
        let platforms = list("platforms");
        let genres = list("genres");
        let tags = list("tags");
        let currency = match present(object, "currency") {
            Some(v) => errors.take("currency", Currency::from_json(v)),
            None => Some(Currency::USD),
        };
        let price = match (present(object, "price"), currency) {
            (Some(v), Some(currency)) => errors.take("price", Price::from_json(v, currency)),
            (None, _) if present(object, "currency").is_some() => {
                errors
                    .0
                    .push(FieldError::field("currency", "is given without a price"));
                None
            }
            _ => None,
        };
        let extra = extra_fields(extra, &mut errors);
        match title {
            Some(title) if errors.0.is_empty() => Ok(Self {
                id: id.unwrap_or_else(|| GameId::derive(&title, release_date.as_ref())),
                title,
                platforms,
                genres,
                release_date,
                developer,
                publisher,
                rating,
                price,
                description,
                tags,
                cover_image,
                extra,
            }),
            _ => Err(errors.0),
        }
    }

    /// Parses any JSON value as a record, rejecting what is not an object.
    pub fn from_value(value: &Value) -> Result<Self, Vec<FieldError>> {
        match value {
            Value::Object(object) => Self::from_object(object),
            other => Err(vec![FieldError::record(format!(
                "expected a JSON object, found {}",
                json_type(other)
            ))]),
        }
    }

    /// The canonical JSON document of the game's content (no id, no server fields): fixed
    /// field order, absent fields omitted, unknown fields last in key order. Stores keep it
    /// as is and compare its hash to tell a real change from a replay.
    pub fn content_json(&self) -> String {
        fn labels(l: &[Label]) -> Vec<&str> {
            l.iter().map(Label::as_str).collect()
        }
        let doc = ContentDoc {
            title: self.title.as_str(),
            platforms: labels(&self.platforms),
            genres: labels(&self.genres),
            release_date: self.release_date.map(|d| d.to_string()),
            developer: self.developer.as_ref().map(Name::as_str),
            publisher: self.publisher.as_ref().map(Name::as_str),
            rating: self.rating.map(|r| r.value()),
            price: self.price.map(|p| p.amount()),
            currency: self.price.map(|p| p.currency().as_str().to_owned()),
            description: self.description.as_ref().map(Description::as_str),
            tags: labels(&self.tags),
            cover_image: self.cover_image.as_ref().map(CoverKey::as_str),
            extra: &self.extra,
        };
        // Serialising plain strings, numbers and already-valid JSON values cannot fail.
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// [`Game::content_json`] and its BLAKE3 hash, which stores compare to tell a change from
    /// a replay.
    pub fn content_and_hash(&self) -> (String, [u8; 32]) {
        let content = self.content_json();
        let hash = *blake3::hash(content.as_bytes()).as_bytes();
        (content, hash)
    }

    /// The lower-cased label keys filters compare against.
    /// The title as listings sort it, lower-cased. Every store orders by this, then by id.
    pub fn title_key(&self) -> String {
        self.title.as_str().to_lowercase()
    }

    /// The release date as listings sort it: `YYYY[-MM[-DD]]`, empty (first) when unknown.
    pub fn release_key(&self) -> String {
        self.release_date.map(|d| d.to_string()).unwrap_or_default()
    }

    pub fn platform_keys(&self) -> Vec<String> {
        self.platforms.iter().map(Label::key).collect()
    }

    pub fn genre_keys(&self) -> Vec<String> {
        self.genres.iter().map(Label::key).collect()
    }
}

#[derive(Serialize)]
struct ContentDoc<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platforms: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    genres: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    developer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publisher: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rating: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cover_image: Option<&'a str>,
    #[serde(flatten)]
    extra: &'a BTreeMap<String, ExtraValue>,
}

fn extra_fields(
    extra: BTreeMap<String, ExtraValue>,
    errors: &mut Errors,
) -> BTreeMap<String, ExtraValue> {
    if extra.len() > limits::EXTRA_MAX_FIELDS {
        errors.0.push(FieldError::record(format!(
            "has {} unknown fields; at most {} are kept",
            extra.len(),
            limits::EXTRA_MAX_FIELDS
        )));
    } else if let Some(key) = extra
        .keys()
        .find(|k| k.is_empty() || k.chars().count() > limits::EXTRA_NAME_MAX_CHARS)
    {
        errors.0.push(FieldError::field(
            key.clone(),
            format!(
                "unknown field names must be 1–{} characters long",
                limits::EXTRA_NAME_MAX_CHARS
            ),
        ));
    } else {
        let size = serde_json::to_string(&extra).map_or(usize::MAX, |s| s.len());
        if size > limits::EXTRA_MAX_BYTES {
            errors.0.push(FieldError::record(format!(
                "unknown fields take {size} bytes of JSON; at most {} are kept",
                limits::EXTRA_MAX_BYTES
            )));
        }
        // The text is kept as sent, so it must be JSON that every reader of the game's public
        // JSON takes: the syntax alone lets through numbers no 64-bit float holds.
        for (key, value) in &extra {
            if let Err(e) = serde_json::from_str::<Value>(value.get()) {
                let reason = if e.to_string().starts_with("number out of range") {
                    "holds a number beyond what a 64-bit float holds (about ±1.8e308)".to_owned()
                } else {
                    format!("is JSON that cannot be read back: {e}")
                };
                errors.0.push(FieldError::field(key.clone(), reason));
            }
        }
    }
    extra
}

/// A game as stored: its canonical content document plus the fields the server keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredGame {
    pub id: GameId,
    /// Increments on every change; the HTTP `ETag`.
    pub version: u64,
    /// RFC 3339 UTC timestamps with millisecond precision.
    pub created_at: String,
    pub updated_at: String,
    /// [`Game::content_json`] as stored.
    pub content: String,
}

/// A stored document's fields (without the id), unknown ones as their text.
fn stored_fields(content: &str) -> Result<RecordFields, Vec<FieldError>> {
    RecordFields::parse(content.as_bytes()).map_err(|e| {
        vec![FieldError::record(format!(
            "stored document is unreadable: {e}"
        ))]
    })
}

impl Game {
    /// The game of `id` from a document a store holds (its current version or one of its
    /// history's), validated again.
    pub fn from_stored(id: &GameId, content: &str) -> Result<Game, Vec<FieldError>> {
        let mut fields = stored_fields(content)?;
        fields
            .known
            .insert("id".into(), Value::String(id.as_str().to_owned()));
        Game::from_record(fields)
    }
}

impl StoredGame {
    /// The public JSON of the game, built without re-parsing the stored document: the
    /// server-kept fields first, then the content fields.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.content.len() + 128);
        out.push_str("{\"id\":");
        push_json_str(&mut out, self.id.as_str());
        out.push_str(",\"version\":");
        out.push_str(&self.version.to_string());
        out.push_str(",\"created_at\":");
        push_json_str(&mut out, &self.created_at);
        out.push_str(",\"updated_at\":");
        push_json_str(&mut out, &self.updated_at);
        match self.content.strip_prefix('{') {
            Some(rest) if rest.trim_start() != "}" => {
                out.push(',');
                out.push_str(rest);
            }
            _ => out.push('}'),
        }
        out
    }

    /// The stored game parsed back into the domain type (for edits).
    pub fn game(&self) -> Result<Game, Vec<FieldError>> {
        Game::from_stored(&self.id, &self.content)
    }

    /// The stored document's fields (without the id), unknown ones as their text.
    pub fn fields(&self) -> Result<RecordFields, Vec<FieldError>> {
        stored_fields(&self.content)
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // A string always serialises.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Game, Vec<String>> {
        Game::from_value(&v).map_err(|errs| errs.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn only_the_title_is_required() {
        let game = parse(json!({"title": "Tetris"})).unwrap();
        assert_eq!(game.id.as_str(), "tetris");
        assert_eq!(parse(json!({})).unwrap_err(), vec!["title: is required"]);
        assert_eq!(
            parse(json!({"title": null})).unwrap_err(),
            vec!["title: is required"]
        );
    }

    #[test]
    fn every_field_error_is_reported_with_its_field() {
        let errors = parse(json!({
            "title": "",
            "rating": 11.5,
            "platforms": ["PC", 5],
            "release_date": "2015-02-30",
            "currency": "ZZZ",
            "price": 10
        }))
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "title: must not be empty",
                "release_date: 2015-02-30 does not exist",
                "rating: 11.5 is above the maximum 10",
                "platforms[1]: expected a string, found a number",
                "currency: \"ZZZ\" is not an ISO 4217 currency code",
            ]
        );
    }

    #[test]
    fn currency_without_price_is_an_error_and_price_defaults_to_usd() {
        assert_eq!(
            parse(json!({"title": "A", "currency": "EUR"})).unwrap_err(),
            vec!["currency: is given without a price"]
        );
        let game = parse(json!({"title": "A", "price": 5})).unwrap();
        assert_eq!(game.price.unwrap().currency(), Currency::USD);
    }

    #[test]
    fn unknown_fields_are_kept_and_server_fields_ignored() {
        let game = parse(json!({
            "title": "A", "metacritic": 91, "version": 7, "created_at": "x"
        }))
        .unwrap();
        assert_eq!(game.extra.len(), 1);
        assert_eq!(game.content_json(), r#"{"title":"A","metacritic":91}"#);
        let many: Map<String, Value> = (0..33)
            .map(|i| (format!("f{i}"), json!(i)))
            .chain([("title".to_owned(), json!("A"))])
            .collect();
        assert_eq!(
            parse(Value::Object(many)).unwrap_err(),
            vec!["has 33 unknown fields; at most 32 are kept"]
        );
    }

    #[test]
    fn non_objects_are_rejected_as_records() {
        assert_eq!(
            parse(json!([1])).unwrap_err(),
            vec!["expected a JSON object, found a list"]
        );
    }

    #[test]
    fn stored_games_round_trip_through_their_public_json() {
        let game = parse(json!({
            "id": "g1", "title": "Ünïcode “quotes”", "platforms": ["PC"], "rating": 8.5,
            "price": 19.99, "currency": "eur", "release_date": "2020-01", "x": {"y": [1]}
        }))
        .unwrap();
        let stored = StoredGame {
            id: game.id.clone(),
            version: 3,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-02T00:00:00.000Z".into(),
            content: game.content_json(),
        };
        let public: Value = serde_json::from_str(&stored.to_json()).unwrap();
        assert_eq!(public["id"], "g1");
        assert_eq!(public["version"], 3);
        assert_eq!(public["price"], 19.99);
        assert_eq!(public["currency"], "EUR");
        assert_eq!(public["x"], json!({"y": [1]}));
        assert_eq!(Game::from_value(&public).unwrap(), game);
        assert_eq!(stored.game().unwrap(), game);
    }

    /// Found by the game fuzz target: an unknown field is kept as its JSON text, and a number
    /// beyond a 64-bit float (1e999) made the game's public JSON unreadable to most clients.
    #[test]
    fn unknown_fields_hold_only_json_every_reader_takes() {
        for text in [
            r#"{"title":"A","big":1e999}"#,
            r#"{"title":"A","big":{"deep":[-2e400]}}"#,
        ] {
            let RecordFields { known, extra } = RecordFields::parse(text.as_bytes()).unwrap();
            let errors: Vec<String> = Game::from_fields(&known, extra)
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(
                errors,
                vec!["big: holds a number beyond what a 64-bit float holds (about ±1.8e308)"],
                "{text}"
            );
        }
        let RecordFields { known, extra } = RecordFields::parse(
            br#"{"title":"A","big":1.7e308,"precise":0.1000000000000000000001}"#,
        )
        .unwrap();
        let game = Game::from_fields(&known, extra).unwrap();
        assert!(
            game.content_json().contains("0.1000000000000000000001"),
            "kept as sent"
        );
    }
}
