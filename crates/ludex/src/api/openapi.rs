//! The OpenAPI 3.1 document, generated from the handlers' annotations and the schema types
//! below, served at `/openapi.json`, and a readable page of it at `/docs`.

use super::error::Problem;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ludex_domain::fields::{limits, rules};
use ludex_domain::schema::{self, Body as GameBody};
use ludex_domain::{IngestId, ListQuery, Sort};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Request bodies whose schemas come from the domain's rules ([`ludex_domain::schema`]): the
/// derive only names them, and [`render`] puts the domain's schema in their place.
macro_rules! domain_body {
    ($($(#[$doc:meta])* $name:ident = $body:expr;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl utoipa::PartialSchema for $name {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                    utoipa::openapi::schema::Object::new().into()
                }
            }

            impl ToSchema for $name {}
        )*

        const DOMAIN_BODIES: &[(&str, GameBody)] = &[$((stringify!($name), $body)),*];
    };
}

domain_body! {
    /// A game as sent by clients: only `title` is required; unknown fields are kept.
    GameInput = GameBody::Create;
    /// A game replacing the one at its path.
    GameReplacement = GameBody::Replace;
    /// A JSON Merge Patch (RFC 7396) of a game.
    GamePatch = GameBody::Patch;
}

/// An OpenAPI link: the response `status` of the operation at `path` and `method`, whose
/// `field` fills `parameter` of each target operation.
struct Link {
    path: &'static str,
    method: &'static str,
    status: &'static str,
    field: &'static str,
    parameter: &'static str,
    targets: &'static [&'static str],
}

const LINKS: [Link; 2] = [
    Link {
        path: "/games",
        method: "post",
        status: "201",
        field: "id",
        parameter: "id",
        targets: &[
            "get_game",
            "replace_game",
            "patch_game",
            "delete_game",
            "put_cover",
        ],
    },
    Link {
        path: "/uploads",
        method: "post",
        status: "202",
        field: "ingest_id",
        parameter: "ingest_id",
        targets: &["get_ingest", "get_rejects"],
    },
];

/// The schema of a parameter, from the rule its handler checks.
fn parameter(path: &str, name: &str, max_upload_bytes: u64) -> Option<Value> {
    use super::ingests::{FILENAME_MAX_CHARS, LEDGER_LIMIT, PageLimit, REJECTS_LIMIT};
    use ludex_domain::fields::limits::{LABEL_MAX_CHARS, YEAR_MAX, YEAR_MIN};
    use ludex_domain::query_limits::{CURSOR_MAX_CHARS, SEARCH_MAX_CHARS};
    let page = |limit: PageLimit| json!({"type": "integer", "minimum": 1, "maximum": limit.max});
    let schema = match (path, name) {
        ("/games", "platform" | "genre") => json!({"type": "string", "maxLength": LABEL_MAX_CHARS}),
        ("/games", "year_from" | "year_to") => {
            json!({"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX})
        }
        ("/games", "min_rating") => schema::decimal(rules::RATING),
        ("/games", "q") => json!({
            "type": "string",
            "maxLength": SEARCH_MAX_CHARS,
            "format": SEARCH_FORMAT,
        }),
        ("/games", "sort") => json!({"type": "string", "enum": Sort::names()}),
        ("/games", "limit") => {
            json!({"type": "integer", "minimum": 1, "maximum": ListQuery::MAX_LIMIT})
        }
        ("/games" | "/ingests", "cursor") => json!({
            "type": "string",
            "maxLength": CURSOR_MAX_CHARS,
            "format": CURSOR_FORMAT,
        }),
        ("/ingests", "limit") => page(LEDGER_LIMIT),
        ("/games/{id}/history", "limit") => page(super::history::HISTORY_LIMIT),
        ("/games/{id}/history", "cursor") => json!({
            "type": "string",
            "maxLength": 20,
            "format": CURSOR_FORMAT,
        }),
        ("/ingests/{ingest_id}/rejects", "limit") => page(REJECTS_LIMIT),
        ("/games/{id}/cover", "size") => json!({
            "type": "string",
            "enum": crate::covers::Size::ALL.map(crate::covers::Size::name),
        }),
        ("/games/{id}/cover", "dpr") => {
            json!({"type": "integer", "enum": crate::covers::DENSITIES})
        }
        ("/games/{id}/cover", "v") => {
            json!({"type": "string", "pattern": crate::covers::VERSION_PATTERN})
        }
        (path, "id") if path.starts_with("/games/") => json!({
            "type": "string",
            "maxLength": limits::ID_MAX_CHARS,
            "pattern": schema::id_pattern(),
        }),
        ("/ingests/{ingest_id}" | "/ingests/{ingest_id}/rejects", "ingest_id") => {
            json!({"type": "string", "pattern": IngestId::pattern()})
        }
        (_, "If-Match") => json!({"type": "string", "format": ETAG_FORMAT}),
        ("/uploads", "map") => json!({"type": "string", "format": MAPPING_FORMAT}),
        ("/uploads/presign", "size") => {
            json!({"type": "integer", "minimum": 0, "maximum": max_upload_bytes})
        }
        ("/uploads/{filename}", "filename") | ("/uploads" | "/uploads/presign", "filename") => {
            json!({
                "type": "string",
                "maxLength": FILENAME_MAX_CHARS,
                "pattern": super::ingests::filename_pattern(),
            })
        }
        _ => return None,
    };
    Some(schema)
}

/// The named format of `q`: at most 8 distinct words of at most 40 characters (see
/// `ludex_domain::search_words`), which JSON Schema cannot count.
pub const SEARCH_FORMAT: &str = "ludex-search";

/// The named format of a cursor: a `next_cursor` this service issued for the same query.
pub const CURSOR_FORMAT: &str = "ludex-cursor";

/// The named format of `If-Match`: `*` or ETags, one of which must be the game's current
/// version (else 412).
pub const ETAG_FORMAT: &str = "ludex-etag";

/// The named format of a CSV column mapping: `Column=field` pairs, comma-separated, a field
/// being a known one, `extra.NAME`, or empty to drop the column.
pub const MAPPING_FORMAT: &str = "ludex-mapping";

/// A stored game: its content plus the fields the server keeps.
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses; the server writes them without this type
pub struct GameDoc {
    id: String,
    /// Increments on every change; the ETag.
    version: u64,
    created_at: String,
    updated_at: String,
    title: String,
    platforms: Option<Vec<String>>,
    genres: Option<Vec<String>>,
    release_date: Option<String>,
    developer: Option<String>,
    publisher: Option<String>,
    rating: Option<f64>,
    price: Option<f64>,
    currency: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    cover_image: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct GamePage {
    items: Vec<GameDoc>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// One field error; `field` is null for problems with the record as a whole.
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct FieldErrorDoc {
    field: Option<String>,
    reason: String,
    /// In the rejects of a CSV upload: the column the field was read from.
    #[schema(required = false)]
    column: Option<SourceColumnDoc>,
}

/// A column of a CSV upload.
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct SourceColumnDoc {
    /// 1-based.
    number: u64,
    header: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // describes responses
pub enum IngestStatusDoc {
    Queued,
    Running,
    Succeeded,
    PartiallyFailed,
    Failed,
}

/// A ledger entry.
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct IngestRecordDoc {
    id: String,
    key: String,
    size: u64,
    fingerprint: String,
    status: IngestStatusDoc,
    started_at: String,
    finished_at: Option<String>,
    accepted: u64,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    rejected: u64,
    rejects_key: Option<String>,
    error: Option<String>,
    retryable: bool,
    /// The column mapping a CSV upload was read with, when one was given.
    #[schema(required = false)]
    mapping: Option<String>,
    /// True when the records were merged into existing games instead of replacing them.
    #[schema(required = false)]
    merge: Option<bool>,
    /// On a revert's entry: the entry it undoes (its `inserted` are the games it brought back,
    /// `updated` those it put back, `deleted` those it deleted).
    #[schema(required = false)]
    revert_of: Option<String>,
    /// On a revert's entry: who asked for it (`key:NAME`, or `cli`).
    #[schema(required = false)]
    requested_by: Option<String>,
    /// Games a revert deleted.
    deleted: u64,
    /// Games a revert left as they were: changed since by someone else.
    conflicts: u64,
}

/// A page of a game's history, newest first.
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct HistoryPageDoc {
    items: Vec<GameVersionDoc>,
    /// Pass as `cursor` for older versions; absent on the last page.
    next_cursor: Option<String>,
}

/// One version of a game.
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct GameVersionDoc {
    version: u64,
    /// When the version was written (RFC 3339, UTC).
    changed_at: String,
    /// Who wrote it; null for versions written before history was kept.
    author: Option<AuthorDoc>,
    /// This version deleted the game.
    deleted: bool,
    /// The JSON Merge Patch (RFC 7396) from the version before to this one; null for a
    /// deletion.
    #[schema(value_type = Option<Object>)]
    change: Option<serde_json::Value>,
}

/// Who wrote a version: `{"kind": "key", "name": …}` (an API key, or the key of a UI
/// session) or `{"kind": "ingest", "id": …}` (the ledger id of an upload).
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct AuthorDoc {
    /// `key` or `ingest`.
    kind: String,
    /// The key's name (`kind` key).
    name: Option<String>,
    /// The ingest's id (`kind` ingest).
    id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct IngestPageDoc {
    items: Vec<IngestRecordDoc>,
    next_cursor: Option<String>,
}

/// A rejected record: `line` (NDJSON, 1-based) or `index` (arrays, 0-based), and why.
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct RejectDoc {
    line: Option<u64>,
    index: Option<u64>,
    id: Option<String>,
    errors: Vec<FieldErrorDoc>,
}

/// Where a record is in its upload: `line` (NDJSON and CSV, 1-based) or `index` (arrays,
/// 0-based).
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct PositionDoc {
    #[schema(required = false)]
    line: Option<u64>,
    #[schema(required = false)]
    index: Option<u64>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct RejectListDoc {
    ingest_id: String,
    /// All rejects of the ingest; `items` holds the first of them.
    total: u64,
    items: Vec<RejectDoc>,
}

/// One operation of `POST /games/batch`. `game` and `patch` are any JSON object here: each is
/// checked as `POST /games`, `PUT` or `PATCH /games/{id}` would check it, and a game that is
/// not valid is that operation's 422, not the batch's.
#[derive(ToSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
#[allow(dead_code)] // describes request bodies; batch::RawOperation reads them
pub enum BatchOperation {
    Create {
        game: serde_json::Map<String, Value>,
    },
    Replace {
        id: String,
        /// As the `If-Match` header: the game's ETag, e.g. `"3"` with its quotes, or `*`.
        #[schema(format = "ludex-etag")]
        if_match: Option<String>,
        game: serde_json::Map<String, Value>,
    },
    Patch {
        id: String,
        #[schema(format = "ludex-etag")]
        if_match: Option<String>,
        /// A JSON Merge Patch (RFC 7396) of the game.
        patch: serde_json::Map<String, Value>,
    },
    Delete {
        id: String,
        #[schema(format = "ludex-etag")]
        if_match: Option<String>,
    },
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes request bodies
pub struct BatchRequest {
    #[schema(max_items = 1000)]
    operations: Vec<BatchOperation>,
}

/// What one operation's own request would have answered: its status and the game written
/// (201, 200), nothing (204), or the problem.
#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct BatchResult {
    status: u16,
    #[schema(required = false)]
    game: Option<GameDoc>,
    #[schema(required = false)]
    problem: Option<Problem>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct BatchResults {
    /// In the order of the operations.
    results: Vec<BatchResult>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes request bodies
pub struct UploadForm {
    /// The upload file, with its file name.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `ludex keys create`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "ludex", description = "A game catalog: games, uploads and the ingest ledger. Errors are application/problem+json (RFC 9457)."),
    paths(
        super::games::list, super::games::get, super::games::create, super::games::replace,
        super::games::patch, super::games::delete, super::covers::put_cover, super::covers::get_cover,
        super::batch::apply, super::bulk::step, super::history::history, super::history::restore,
        super::ingests::upload, super::ingests::presign, super::ingests::direct, super::ingests::latest_upload, super::ingests::list, super::ingests::get, super::ingests::rejects, super::revert::revert,
        healthz_doc, readyz_doc, metrics_doc,
    ),
    components(schemas(Problem, FieldErrorDoc, GameInput, GameReplacement, GamePatch, super::bulk::FilterStep, super::bulk::FilterChange)),
    modifiers(&BearerKeys),
    tags((name = "games"), (name = "ingests"), (name = "operations")),
)]
struct ApiDoc;

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = inline(Status))))]
#[allow(dead_code)] // documents the route served by super::healthz
fn healthz_doc() {}

#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses(
        (status = 200, description = "The catalog answers", body = inline(Status)),
        (status = 503, description = "The catalog does not answer", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)] // documents the route served by super::readyz
fn readyz_doc() {}

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    description = "The process's metrics in the Prometheus text format: ingests (files, records accepted and rejected, bytes, stage durations, write retries), API requests by route and status class and their latency, and process metrics (resident memory, open file descriptors, CPU seconds, uptime). On AWS the same metrics go to CloudWatch and this endpoint answers 404.",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "Metrics are published to CloudWatch in this deployment", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)] // documents the route served by super::metrics_text
fn metrics_doc() {}

#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
struct Status {
    status: String,
}

/// The document as served: utoipa's, with the schemas of the game bodies and of the
/// parameters taken from the domain's rules, and the server's upload limit.
pub fn render(max_upload_bytes: u64) -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    for (name, body) in DOMAIN_BODIES {
        document["components"]["schemas"][*name] = schema::game_body(*body);
    }
    // What a client can do next with what a write returned (OpenAPI links).
    for link in &LINKS {
        let targets: serde_json::Map<String, Value> = link
            .targets
            .iter()
            .map(|target| {
                let parameters =
                    json!({ link.parameter: format!("$response.body#/{}", link.field) });
                let to = json!({ "operationId": target, "parameters": parameters });
                (target.to_string(), to)
            })
            .collect();
        document["paths"][link.path][link.method]["responses"][link.status]["links"] =
            Value::Object(targets);
    }
    // A batch and its operations take no other fields (the derive does not say so for an
    // enum's variants).
    let schemas = &mut document["components"]["schemas"];
    schemas["BatchRequest"]["additionalProperties"] = json!(false);
    schemas["FilterStep"]["additionalProperties"] = json!(false);
    for tagged in ["BatchOperation", "FilterChange"] {
        if let Some(variants) = schemas[tagged]["oneOf"].as_array_mut() {
            for variant in variants {
                variant["additionalProperties"] = json!(false);
            }
        }
    }
    // A raw upload is the file's bytes, whatever they hold: the ingest reads them later and
    // reports each record, so the request itself takes any body.
    if let Some(content) =
        document["paths"]["/uploads"]["post"]["requestBody"]["content"].as_object_mut()
    {
        for (media_type, body) in content {
            if media_type != "multipart/form-data" {
                body["schema"] = json!({ "description": "The file's bytes" });
            }
        }
    }
    // A form has its `file` part and nothing else, and the part's file name follows the rule of
    // `?filename=`; OpenAPI states a part's file name in its Content-Disposition header.
    document["components"]["schemas"]["UploadForm"]["additionalProperties"] = json!(false);
    document["paths"]["/uploads"]["post"]["requestBody"]["content"]["multipart/form-data"]["encoding"] = json!({
        "file": {
            "headers": {
                "Content-Disposition": {
                    "description": "The file name follows the rule of the `filename` parameter.",
                    "schema": {
                        "type": "string",
                        "pattern": format!("filename=\"{}\"", super::ingests::filename_pattern().trim_start_matches('^').trim_end_matches('$')),
                    },
                    "example": "form-data; name=\"file\"; filename=\"games.ndjson\"",
                }
            }
        }
    });
    if let Some(paths) = document["paths"].as_object_mut() {
        for (path, item) in paths {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for parameter in parameters {
                    let name = parameter["name"].as_str().unwrap_or_default();
                    if let Some(schema) = self::parameter(path, name, max_upload_bytes) {
                        parameter["schema"] = schema;
                    }
                }
            }
        }
    }
    document
}

/// The document of a server with the default upload limit, rendered once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string_pretty(&render(super::DEFAULT_MAX_UPLOAD_BYTES)).unwrap_or_default()
});

pub async fn document(State(state): State<super::AppState>) -> Response {
    let limit = state.config.max_direct_upload_bytes;
    let body = if limit == super::DEFAULT_MAX_UPLOAD_BYTES {
        DOCUMENT.clone()
    } else {
        serde_json::to_string_pretty(&render(limit)).unwrap_or_default()
    };
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

static PAGE: LazyLock<String> = LazyLock::new(render_page);

/// A plain HTML rendering of the document: every operation with its parameters and responses.
fn render_page() -> String {
    let api = ApiDoc::openapi();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>ludex API</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         code,pre{background:#f3f3f3;padding:0 .2em}h2{border-top:1px solid #ddd;padding-top:1rem}.m{font-weight:bold;text-transform:uppercase}</style></head><body>\
         <h1>ludex API</h1><p>The machine-readable document is <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1). \
         Writes need <code>Authorization: Bearer &lt;key&gt;</code>; errors are <code>application/problem+json</code>.</p>",
    );
    let mut operations: BTreeMap<String, String> = BTreeMap::new();
    for (path, item) in &api.paths.paths {
        let methods = [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("patch", &item.patch),
            ("delete", &item.delete),
        ];
        for (method, operation) in methods {
            let Some(op) = operation else { continue };
            let mut section = format!(
                "<h2><span class=\"m\">{method}</span> <code>{}</code></h2>",
                escape(path)
            );
            if let Some(description) = op.description.as_ref().or(op.summary.as_ref()) {
                section.push_str(&format!("<p>{}</p>", escape(description)));
            }
            if let Some(params) = &op.parameters {
                section.push_str("<h3>Parameters</h3><ul>");
                for p in params {
                    let place = match p.parameter_in {
                        utoipa::openapi::path::ParameterIn::Path => "path",
                        utoipa::openapi::path::ParameterIn::Header => "header",
                        utoipa::openapi::path::ParameterIn::Cookie => "cookie",
                        _ => "query",
                    };
                    section.push_str(&format!(
                        "<li><code>{}</code> ({place}){}</li>",
                        escape(&p.name),
                        p.description
                            .as_ref()
                            .map(|d| format!(": {}", escape(d)))
                            .unwrap_or_default()
                    ));
                }
                section.push_str("</ul>");
            }
            section.push_str("<h3>Responses</h3><ul>");
            for (status, response) in &op.responses.responses {
                let description = match response {
                    utoipa::openapi::RefOr::T(r) => r.description.clone(),
                    utoipa::openapi::RefOr::Ref(r) => r.ref_location.clone(),
                };
                section.push_str(&format!(
                    "<li><code>{}</code> {}</li>",
                    escape(status),
                    escape(&description)
                ));
            }
            section.push_str("</ul>");
            operations.insert(format!("{path} {method}"), section);
        }
    }
    for section in operations.values() {
        html.push_str(section);
    }
    html.push_str("</body></html>");
    html
}

pub async fn page() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        PAGE.as_str(),
    )
        .into_response()
}
