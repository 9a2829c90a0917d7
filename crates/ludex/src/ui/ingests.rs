//! The upload page (a drop zone that sends files straight to the bucket through `POST
//! /uploads/presign` and follows the ingest) and
//! the ingest history and ingest pages, rendered from the ledger.

use super::html::{Html, esc};
use super::{
    Section, Viewer, error_page, failure_page, html_response, page as layout, sign_in_notice,
};
use crate::api::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ludex_domain::LedgerQuery;
use ludex_domain::report::{IngestId, IngestRecord, IngestStatus, Reject};
use serde::Deserialize;

/// Rejects listed on an ingest's page; the full report stays in the bucket.
const REJECTS_SHOWN: usize = 1000;

fn status_name(status: IngestStatus) -> &'static str {
    match status {
        IngestStatus::Queued => "queued",
        IngestStatus::Running => "running",
        IngestStatus::Succeeded => "succeeded",
        IngestStatus::PartiallyFailed => "partially_failed",
        IngestStatus::Failed => "failed",
    }
}

fn status_badge(status: IngestStatus) -> String {
    let name = status_name(status);
    format!(
        "<span class=\"badge badge-{name}\">{}</span>",
        name.replace('_', " ")
    )
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryParams {
    #[serde(default)]
    cursor: String,
}

fn history(records: &[IngestRecord], next: Option<&str>, first_page: bool) -> String {
    let mut out = Html::default();
    if records.is_empty() {
        out.raw("<div class=\"empty\"><h3>No uploads yet</h3><p>Files you upload here, or drop into the inbox folder, are listed with their outcome.</p></div>");
        return out.into_string();
    }
    out.raw("<div class=\"table-scroll\" tabindex=\"0\" role=\"region\" aria-label=\"Ingest history\"><table class=\"ingests\"><thead><tr><th scope=\"col\">File</th><th scope=\"col\">Started</th><th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Accepted</th><th scope=\"col\" class=\"num\">Rejected</th></tr></thead><tbody>");
    for r in records {
        out.raw(&format!(
            "<tr><th scope=\"row\"><a href=\"/ui/ingests/{}\">{}</a></th><td><time datetime=\"{}\">{}</time></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            r.id,
            esc(file_name(&r.key)),
            esc(&r.started_at),
            esc(&r.started_at.replace('T', " ").chars().take(19).collect::<String>()),
            status_badge(r.status),
            r.accepted,
            r.rejected
        ));
    }
    out.raw("</tbody></table></div><nav class=\"pager\" aria-label=\"Pages of the history\">");
    if !first_page {
        out.raw("<a href=\"/ui/uploads\">Newest</a>");
    }
    if let Some(cursor) = next {
        out.raw(&format!(
            "<a class=\"button\" rel=\"next\" href=\"/ui/uploads?cursor={}\">Older</a>",
            super::html::url_encode(cursor)
        ));
    }
    out.raw("</nav>");
    out.into_string()
}

pub async fn uploads(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(params): Query<HistoryParams>,
) -> Response {
    let query = LedgerQuery {
        limit: 20,
        cursor: Some(params.cursor.clone()).filter(|c| !c.is_empty()),
    };
    let page = match state.stores.ledger.list(&query).await {
        Ok(p) => p,
        Err(ludex_domain::StoreError::InvalidCursor(reason)) => {
            return error_page(
                &viewer,
                StatusCode::BAD_REQUEST,
                "Not a page of the history",
                &format!("cursor: {reason}"),
            );
        }
        Err(e) => return failure_page(&viewer, "listing the ledger failed", &e),
    };
    let mut body = Html::default();
    body.raw("<h1>Upload games</h1>");
    if viewer.can_write() {
        body.raw("<section class=\"panel\" aria-labelledby=\"upload-heading\"><h2 id=\"upload-heading\">Send a file</h2>");
        body.raw("<form id=\"upload-form\" class=\"upload\"><label class=\"dropzone\" for=\"upload-file\" id=\"dropzone\"><span class=\"dropzone-title\">Drop a JSON or NDJSON file here</span><span>or press to choose one (.json, .ndjson, .jsonl, optionally .gz)</span></label>");
        body.raw("<input id=\"upload-file\" class=\"visually-hidden-file\" name=\"file\" type=\"file\" accept=\".json,.ndjson,.jsonl,.gz,application/json,application/x-ndjson\">");
        body.raw("<noscript><p class=\"notice\">Uploading from this page needs JavaScript. Without it, use <code>POST /uploads</code> or drop files into the inbox folder.</p></noscript>");
        body.raw("<div class=\"progress\" hidden><label for=\"upload-progress\" id=\"upload-label\">Uploading…</label><progress id=\"upload-progress\" max=\"100\" value=\"0\"></progress></div>");
        body.raw("<p class=\"status\" role=\"status\" id=\"upload-status\"></p></form>");
        body.raw("<div id=\"ingest-result\" aria-live=\"polite\"></div></section>");
    } else {
        body.raw(&sign_in_notice(&viewer, "upload files"));
    }
    body.raw(
        "<section aria-labelledby=\"history-heading\"><h2 id=\"history-heading\">History</h2>",
    );
    body.raw(&history(
        &page.items,
        page.next_cursor.as_deref(),
        query.cursor.is_none(),
    ));
    body.raw("</section>");
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Uploads, "Upload", &body.into_string()),
    )
}

fn rejects_table(rejects: &[Reject]) -> String {
    let mut out = Html::default();
    out.raw("<div class=\"table-scroll\" tabindex=\"0\" role=\"region\" aria-label=\"Rejected records\"><table class=\"rejects\"><thead><tr><th scope=\"col\">Position</th><th scope=\"col\">Id</th><th scope=\"col\">Field</th><th scope=\"col\">Reason</th></tr></thead><tbody>");
    for reject in rejects {
        for error in &reject.errors {
            out.raw("<tr><td>");
            out.text(&reject.position.to_string());
            out.raw("</td><td>");
            out.text(reject.id.as_deref().unwrap_or("–"));
            out.raw("</td><td>");
            out.text(error.field.as_deref().unwrap_or("(record)"));
            out.raw("</td><td>");
            out.text(&error.reason);
            out.raw("</td></tr>");
        }
    }
    out.raw("</tbody></table></div>");
    out.into_string()
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let id = match IngestId::parse(&id) {
        Ok(id) => id,
        Err(e) => {
            return error_page(
                &viewer,
                StatusCode::BAD_REQUEST,
                "Not an ingest id",
                &format!("id: {e}"),
            );
        }
    };
    let record = match state.stores.ledger.get(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_page(
                &viewer,
                StatusCode::NOT_FOUND,
                "Ingest not found",
                &format!("There is no ingest with the id {id}."),
            );
        }
        Err(e) => return failure_page(&viewer, "reading the ledger failed", &e),
    };
    let mut rejects = Vec::new();
    if let Some(key) = &record.rejects_key {
        match state.bucket.read_lines(key, REJECTS_SHOWN).await {
            Ok(lines) => {
                for line in lines {
                    match serde_json::from_str::<Reject>(&line) {
                        Ok(r) => rejects.push(r),
                        Err(e) => {
                            tracing::warn!(key, error = %e, "unreadable line in a rejects report")
                        }
                    }
                }
            }
            Err(e) => return failure_page(&viewer, "reading a rejects report failed", &e),
        }
    }
    let name = file_name(&record.key).to_owned();
    let mut body = Html::default();
    body.raw("<p class=\"crumbs\"><a href=\"/ui/uploads\">Uploads</a> / </p><div class=\"page-head\"><h1>");
    body.text(&name);
    body.raw("</h1>");
    body.raw(&status_badge(record.status));
    body.raw("</div>");
    let busy = matches!(record.status, IngestStatus::Queued | IngestStatus::Running);
    if busy {
        body.raw("<div class=\"notice\" role=\"status\" data-refresh=\"2\"><p>This ingest is still in progress; the page refreshes by itself.</p></div>");
    }
    if let Some(error) = &record.error {
        body.raw("<div class=\"notice error\" role=\"alert\"><p>");
        body.text(error);
        body.raw("</p></div>");
    }
    body.raw("<dl class=\"facts counts\">");
    for (label, value) in [
        ("Accepted", record.accepted),
        ("Inserted", record.inserted),
        ("Updated", record.updated),
        ("Unchanged", record.unchanged),
        ("Rejected", record.rejected),
    ] {
        body.raw(&format!("<dt>{label}</dt><dd>{value}</dd>"));
    }
    body.raw(&format!("<dt>Size</dt><dd>{} bytes</dd>", record.size));
    body.raw("<dt>Started</dt><dd>");
    body.text(&record.started_at);
    body.raw("</dd>");
    if let Some(finished) = &record.finished_at {
        body.raw("<dt>Finished</dt><dd>");
        body.text(finished);
        body.raw("</dd>");
    }
    body.raw(&format!(
        "<dt>Ingest id</dt><dd><code>{id}</code> (<a href=\"/ingests/{id}\">JSON</a>)</dd></dl>"
    ));
    body.raw("<h2>Rejected records</h2>");
    if rejects.is_empty() {
        body.raw(if busy {
            "<p class=\"empty\">None so far.</p>"
        } else {
            "<p class=\"empty\">None: every record was accepted.</p>"
        });
    } else {
        if record.rejected > rejects.len() as u64 {
            body.raw(&format!(
                "<p>The first {} of {} rejects; <a href=\"/ingests/{id}/rejects?limit=1000\">the rejects as JSON</a>.</p>",
                rejects.len(),
                record.rejected
            ));
        }
        body.raw(&rejects_table(&rejects));
    }
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Uploads, &name, &body.into_string()),
    )
}
