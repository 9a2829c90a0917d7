//! The OpenAPI 3.1 document, generated from the handlers' annotations and the schema types
//! below, served at `/openapi.json`, and a readable page of it at `/docs`.

use super::error::Problem;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// A game as sent by clients. Only `title` is required; unknown fields are kept.
#[derive(ToSchema)]
#[allow(dead_code)] // describes request bodies; never constructed
pub struct GameInput {
    /// Derived from the title and release year when absent.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    id: Option<String>,
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    title: String,
    #[schema(max_items = 32)]
    platforms: Option<Vec<String>>,
    #[schema(max_items = 32)]
    genres: Option<Vec<String>>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, years 1950–2100, a real calendar date.
    #[schema(
        pattern = "^(19[5-9][0-9]|20[0-9][0-9]|2100)(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$"
    )]
    release_date: Option<String>,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    developer: Option<String>,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    publisher: Option<String>,
    /// 0–10, one decimal place.
    #[schema(minimum = 0, maximum = 10, multiple_of = 0.1)]
    rating: Option<f64>,
    /// 0–1,000,000, two decimal places.
    #[schema(minimum = 0, maximum = 1000000, multiple_of = 0.01)]
    price: Option<f64>,
    /// ISO 4217; defaults to USD when a price is given.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    currency: Option<String>,
    #[schema(max_length = 10000)]
    description: Option<String>,
    #[schema(max_items = 32)]
    tags: Option<Vec<String>>,
    /// A bucket key under `covers/`; set by `PUT /games/{id}/cover`.
    cover_image: Option<String>,
}

/// A JSON Merge Patch (RFC 7396) of a game: fields to set; `null` removes a field.
#[derive(ToSchema)]
#[allow(dead_code)] // describes request bodies; never constructed
pub struct GamePatch {
    title: Option<String>,
    rating: Option<f64>,
    price: Option<f64>,
}

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

#[derive(ToSchema)]
#[allow(dead_code)] // describes responses
pub struct RejectListDoc {
    ingest_id: String,
    /// All rejects of the ingest; `items` holds the first of them.
    total: u64,
    items: Vec<RejectDoc>,
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
        super::games::patch, super::games::delete, super::games::put_cover, super::games::get_cover,
        super::ingests::upload, super::ingests::list, super::ingests::get, super::ingests::rejects,
        healthz_doc, readyz_doc, metrics_doc,
    ),
    components(schemas(Problem, FieldErrorDoc)),
    modifiers(&BearerKeys),
    tags((name = "games"), (name = "ingests"), (name = "operations")),
)]
struct ApiDoc;

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = inline(Status))))]
#[allow(dead_code)] // documents the route served by super::healthz
fn healthz_doc() {}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The catalog answers", body = inline(Status)),
        (status = 503, description = "The catalog does not answer", body = Problem, content_type = "application/problem+json"),
    ))]
#[allow(dead_code)] // documents the route served by super::readyz
fn readyz_doc() {}

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

#[utoipa::path(get, path = "/metrics", tag = "operations",
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

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default());

pub async fn document() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
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
