//! The upload page (a drop zone that sends files straight to the bucket through `POST
//! /uploads/presign` and follows the ingest) and
//! the ingest history and ingest pages, rendered from the ledger.

use super::html::query_string;
use super::{
    Section, Viewer, error_page, failure_page, html_response, page as layout, sign_in_notice,
};
use crate::api::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ludex_domain::LedgerQuery;
use ludex_domain::report::{IngestId, IngestRecord, IngestStatus, Reject};
use maud::{Markup, html};
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

fn status_badge(status: IngestStatus) -> Markup {
    let name = status_name(status);
    html! { span class={ "badge badge-" (name) } { (name.replace('_', " ")) } }
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryParams {
    #[serde(default)]
    cursor: String,
}

fn history(records: &[IngestRecord], next: Option<&str>, first_page: bool) -> Markup {
    if records.is_empty() {
        return html! {
            div.empty {
                h3 { "No uploads yet" }
                p { "Files you upload here, or drop into the inbox folder, are listed with their outcome." }
            }
        };
    }
    html! {
        div.table-scroll tabindex="0" role="region" aria-label="Ingest history" {
            table.ingests {
                thead {
                    tr {
                        th scope="col" { "File" }
                        th scope="col" { "Started" }
                        th scope="col" { "Status" }
                        th.num scope="col" { "Accepted" }
                        th.num scope="col" { "Rejected" }
                    }
                }
                tbody {
                    @for r in records {
                        tr {
                            th scope="row" { a href={ "/ui/ingests/" (r.id) } { (file_name(&r.key)) } }
                            td {
                                time datetime=(r.started_at) {
                                    (r.started_at.replace('T', " ").chars().take(19).collect::<String>())
                                }
                            }
                            td { (status_badge(r.status)) }
                            td.num { (r.accepted) }
                            td.num { (r.rejected) }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages of the history" {
            @if !first_page { a href="/ui/uploads" { "Newest" } }
            @if let Some(cursor) = next {
                a.button rel="next" href={ "/ui/uploads" (query_string([("cursor", cursor)])) } { "Older" }
            }
        }
    }
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
    let body = html! {
        h1 { "Upload games" }
        @if viewer.can_write() {
            section.panel aria-labelledby="upload-heading" {
                h2 #upload-heading { "Send a file" }
                form #upload-form.upload {
                    label.dropzone for="upload-file" #dropzone {
                        span.dropzone-title { "Drop a JSON, NDJSON or CSV file here" }
                        span { "or press to choose one (.json, .ndjson, .jsonl, .csv, optionally .gz)" }
                    }
                    input #upload-file.visually-hidden-file name="file" type="file"
                        accept=".json,.ndjson,.jsonl,.csv,.gz,application/json,application/x-ndjson,text/csv";
                    div.field.check {
                        input #preview-first type="checkbox" name="preview";
                        label for="preview-first" {
                            "Preview what the file would change before importing it (CSV files always get a column mapping step and a preview)"
                        }
                    }
                    noscript {
                        p.notice {
                            "Uploading from this page needs JavaScript. Without it, use "
                            code { "POST /uploads" } " or drop files into the inbox folder."
                        }
                    }
                    div.progress hidden {
                        label for="upload-progress" #upload-label { "Uploading…" }
                        progress #upload-progress max="100" value="0" {}
                    }
                    p.status role="status" #upload-status {}
                }
                section #import-step.import-step hidden aria-live="polite" {}
                div #ingest-result aria-live="polite" {}
            }
        } @else {
            (sign_in_notice(&viewer, "upload files"))
        }
        section aria-labelledby="history-heading" {
            h2 #history-heading { "History" }
            (history(&page.items, page.next_cursor.as_deref(), query.cursor.is_none()))
        }
    };
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Uploads, "Upload", body),
    )
}

fn rejects_table(rejects: &[Reject]) -> Markup {
    html! {
        div.table-scroll tabindex="0" role="region" aria-label="Rejected records" {
            table.rejects {
                thead {
                    tr {
                        th scope="col" { "Position" }
                        th scope="col" { "Id" }
                        th scope="col" { "Field" }
                        th scope="col" { "Reason" }
                    }
                }
                tbody {
                    @for reject in rejects {
                        @for error in &reject.errors {
                            tr {
                                td { (reject.position) }
                                td { (reject.id.as_deref().unwrap_or("–")) }
                                td { (error.field.as_deref().unwrap_or("(record)")) }
                                td { (error.reason) }
                            }
                        }
                    }
                }
            }
        }
    }
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
    let busy = matches!(record.status, IngestStatus::Queued | IngestStatus::Running);
    // The revert of this entry, when there is one (finished, or stopped half-way).
    let revert = match state.stores.ledger.get(&IngestId::revert_of(&id)).await {
        Ok(revert) => revert,
        Err(e) => return failure_page(&viewer, "reading the ledger failed", &e),
    };
    let name = match &record.revert_of {
        Some(target) => format!("Revert of ingest {target}"),
        None => file_name(&record.key).to_owned(),
    };
    let counts = match record.revert_of {
        Some(_) => vec![
            ("Deleted", record.deleted),
            ("Put back", record.updated),
            ("Brought back", record.inserted),
            ("Conflicts", record.conflicts),
        ],
        None => vec![
            ("Accepted", record.accepted),
            ("Inserted", record.inserted),
            ("Updated", record.updated),
            ("Unchanged", record.unchanged),
            ("Rejected", record.rejected),
        ],
    };
    let body = html! {
        p.crumbs { a href="/ui/uploads" { "Uploads" } " / " }
        div.page-head {
            h1 { (name) }
            (status_badge(record.status))
        }
        @if busy {
            div.notice role="status" data-refresh="2" {
                p {
                    @if record.revert_of.is_some() {
                        "This revert stopped before its end (or runs now): revert the ingest again to finish it."
                    } @else {
                        "This ingest is still in progress; the page refreshes by itself."
                    }
                }
            }
        }
        @if let Some(error) = &record.error {
            div.notice.error role="alert" { p { (error) } }
        }
        dl.facts.counts {
            @for (label, value) in counts {
                dt { (label) }
                dd { (value) }
            }
            @if let Some(target) = &record.revert_of {
                dt { "Reverts" }
                dd { a href={ "/ui/ingests/" (target) } { "ingest " (target) } }
                @if let Some(by) = &record.requested_by {
                    dt { "Asked for by" }
                    dd { (by) }
                }
            } @else {
                dt { "Size" }
                dd { (record.size) " bytes" }
            }
            dt { "Started" }
            dd { (record.started_at) }
            @if let Some(finished) = &record.finished_at {
                dt { "Finished" }
                dd { (finished) }
            }
            dt { "Ingest id" }
            dd { code { (id) } " (" a href={ "/ingests/" (id) } { "JSON" } ")" }
        }
        (revert_section(&viewer, &record, revert.as_ref()))
        @if record.revert_of.is_none() {
            h2 { "Rejected records" }
            @if rejects.is_empty() {
                p.empty {
                    @if busy { "None so far." } @else { "None: every record was accepted." }
                }
            } @else {
                @if record.rejected > rejects.len() as u64 {
                    p {
                        "The first " (rejects.len()) " of " (record.rejected) " rejects; "
                        a href={ "/ingests/" (id) "/rejects?limit=1000" } { "the rejects as JSON" } "."
                    }
                }
                (rejects_table(&rejects))
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Uploads, &name, body),
    )
}

/// "Revert this upload": a preview (a dry run of the revert) and the revert itself, run by
/// ui.js step by step through `POST /ingests/{id}/revert`; or where its revert is.
fn revert_section(viewer: &Viewer, record: &IngestRecord, revert: Option<&IngestRecord>) -> Markup {
    let what = if record.revert_of.is_some() {
        "revert"
    } else {
        "upload"
    };
    html! {
        h2 { "Revert this " (what) }
        @if let Some(revert) = revert.filter(|r| r.status.is_finished()) {
            p {
                "This " (what) " was reverted by "
                a href={ "/ui/ingests/" (revert.id) } { "ingest " (revert.id) } ". "
                "Revert that revert to apply it again."
            }
        } @else if !record.status.is_finished() {
            p.empty { "It can be reverted once it has finished." }
        } @else if viewer.can_write() {
            @if record.revert_of.is_some() {
                p { "Reverting this revert applies what it undid again: the games it deleted come back, the games it put back get the content it replaced. Games changed since are left as they are." }
            } @else {
                p { "Reverting deletes the games this upload created and gives the games it changed their content before it. Games changed since by anyone else are left as they are and listed as conflicts. The revert is kept in each game's history and can itself be reverted." }
            }
            div #revert data-id=(record.id) {
                button type="button" data-revert-preview { "Preview the revert" }
                " "
                button type="button" data-revert-run hidden { "Revert this " (what) }
                p #revert-status role="status" aria-live="polite" {}
                div #revert-preview {}
            }
        } @else {
            (sign_in_notice(viewer, &format!("revert this {what}")))
        }
    }
}
