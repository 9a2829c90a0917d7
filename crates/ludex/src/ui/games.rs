//! A game's page, and the create and edit forms. The forms are rendered here and submitted by
//! the script to the JSON API (`POST /games`, `PATCH /games/{id}` with `If-Match`), so field
//! errors and conflicts are the API's own.

use super::{
    Section, Viewer, error_page, failure_page, html_response, page as layout, sign_in_notice,
};
use crate::api::AppState;
use crate::covers::Size;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ludex_domain::fields::Label;
use ludex_domain::{Author, Game, GameId, GameVersion, HistoryQuery, StoredGame};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

/// The stored game an id names and its parsed document, or the page that says why not.
async fn load(
    viewer: &Viewer,
    state: &AppState,
    raw: &str,
) -> Result<(StoredGame, Game), Response> {
    let id = GameId::parse(raw).map_err(|e| {
        error_page(
            viewer,
            StatusCode::BAD_REQUEST,
            "Not a game id",
            &format!("id: {e}"),
        )
    })?;
    let stored = match state.stores.catalog.get(&id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return Err(error_page(
                viewer,
                StatusCode::NOT_FOUND,
                "Game not found",
                &format!("There is no game with the id {id}. It may have been deleted."),
            ));
        }
        Err(e) => return Err(failure_page(viewer, "reading a game failed", &e)),
    };
    match stored.game() {
        Ok(game) => Ok((stored, game)),
        Err(e) => {
            let reasons: Vec<String> = e.iter().map(ToString::to_string).collect();
            Err(failure_page(
                viewer,
                "a stored game is unreadable",
                &reasons.join("; "),
            ))
        }
    }
}

/// A list field's entries, joined by `separator` (a comma on pages, a newline in forms, where
/// an entry may hold commas).
fn labels(list: &[Label], separator: &str) -> String {
    list.iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(separator)
}

fn price_text(game: &Game) -> (String, String) {
    game.price.map_or_else(Default::default, |p| {
        let cents = p.cents();
        (
            format!("{}.{:02}", cents / 100, cents % 100),
            p.currency().as_str().to_owned(),
        )
    })
}

/// The query of a game's page: which versions its history shows. Read as text: a value that
/// is not a version (a hand-edited link) is ignored rather than refusing the page.
#[derive(Deserialize)]
pub struct PageQuery {
    /// Versions older than this one (the "Older versions" link).
    history_before: Option<String>,
    /// The version the script just restored, for a notice.
    restored: Option<String>,
}

impl PageQuery {
    fn version(raw: Option<&String>) -> Option<u64> {
        raw.and_then(|v| v.parse().ok())
            .and_then(crate::api::history::storable)
    }

    fn history_before(&self) -> Option<u64> {
        Self::version(self.history_before.as_ref())
    }

    fn restored(&self) -> Option<u64> {
        Self::version(self.restored.as_ref())
    }
}

/// Versions a game's page shows at once.
const HISTORY_SHOWN: u32 = 20;

/// A value of a document as a line of text: strings as they are, lists joined, the rest as
/// JSON; long texts cut.
fn shown_value(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => return String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    };
    match text.char_indices().nth(160) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The fields that differ between two documents, by name: (field, before, after), as text.
fn field_changes(before: Option<&Value>, after: &Value) -> Vec<(String, String, String)> {
    let empty = serde_json::Map::new();
    let before = before.and_then(Value::as_object).unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|name| before.get(*name) != after.get(*name))
        .map(|name| {
            (
                name.clone(),
                shown_value(before.get(name)),
                shown_value(after.get(name)),
            )
        })
        .collect()
}

/// Who wrote a version, as a reader would say it.
fn author_text(author: Option<&Author>) -> String {
    match author {
        Some(Author::Key { name }) => format!("by {name}"),
        Some(Author::Ingest { id }) => format!("by the upload {id}"),
        None => "author not recorded".into(),
    }
}

/// The history panel: each version with its changes, newest first, and a restore button on
/// the versions a writer can bring back.
fn history_panel(viewer: &Viewer, id: &str, current: u64, (versions, more): &History) -> Markup {
    let documents: Vec<Option<Value>> = versions
        .iter()
        .map(|v| {
            v.content
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
        })
        .collect();
    html! {
        section.panel #history aria-labelledby="history-heading" {
            h2 #history-heading { "History" }
            ol.history {
                @for (i, version) in versions.iter().take(HISTORY_SHOWN as usize).enumerate() {
                    li data-version=(version.version) {
                        p.version-head {
                            strong { "Version " (version.version) }
                            " · " time datetime=(version.changed_at) { (version.changed_at) }
                            " · " (author_text(version.author.as_ref()))
                            @if version.version == current && version.content.is_some() { " · " em { "current" } }
                        }
                        @match &documents[i] {
                            None => p { "Deleted the game." },
                            Some(after) => {
                                @let before = documents.get(i + 1).and_then(Option::as_ref);
                                ul.changes {
                                    @for (field, old, new) in field_changes(before, after) {
                                        li {
                                            code { (field) } ": "
                                            @if !old.is_empty() { del { (old) } }
                                            @if !old.is_empty() && !new.is_empty() { " → " }
                                            @if !new.is_empty() { ins { (new) } } @else { " removed" }
                                        }
                                    }
                                }
                                @if viewer.can_write() && version.version != current {
                                    button.secondary type="button" data-restore=(version.version) {
                                        "Restore version " (version.version)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if *more {
                @if let Some(last) = versions.get(HISTORY_SHOWN as usize - 1) {
                    p { a href={ "/ui/games/" (id) "?history_before=" (last.version) "#history" } { "Older versions" } }
                }
            }
            p.status role="status" #restore-status {}
        }
    }
}

/// The versions a page shows (and the one before the last, for its changes), and whether
/// older ones follow.
type History = (Vec<GameVersion>, bool);

async fn history_of(
    viewer: &Viewer,
    state: &AppState,
    id: &GameId,
    before: Option<u64>,
) -> Result<History, Response> {
    // One more than shown: the version before the last one shown, for its changes.
    let query = HistoryQuery {
        limit: HISTORY_SHOWN + 1,
        before,
    };
    match state.stores.catalog.history(id, &query).await {
        Ok(page) => {
            let more = page.items.len() > HISTORY_SHOWN as usize || page.next_cursor.is_some();
            Ok((page.items, more))
        }
        Err(e) => Err(failure_page(viewer, "reading a game's history failed", &e)),
    }
}

/// The page of a deleted game: who deleted it, its history, and a restore button on each
/// version (`If-Match` the deletion's version).
async fn deleted_page(
    viewer: &Viewer,
    state: &AppState,
    raw: &str,
    before: Option<u64>,
) -> Option<Response> {
    let id = GameId::parse(raw).ok()?;
    let newest = HistoryQuery {
        limit: 1,
        before: None,
    };
    let newest = state.stores.catalog.history(&id, &newest).await.ok()?;
    let deletion = newest
        .items
        .into_iter()
        .next()
        .filter(|v| v.content.is_none())?;
    let history = history_of(viewer, state, &id, before).await.ok()?;
    let body = html! {
        article #game data-id=(id.as_str()) data-version=(deletion.version) {
            p.crumbs { a href="/" { "Catalog" } " / " }
            h1 { "Deleted: " (id.as_str()) }
            div.notice role="alert" #game-message {
                p {
                    "This game was deleted on " (deletion.changed_at) " "
                    (author_text(deletion.author.as_ref())) ". "
                    @if viewer.can_write() { "Restore any version below to bring it back." }
                }
            }
            (history_panel(viewer, id.as_str(), deletion.version, &history))
        }
    };
    Some(html_response(
        StatusCode::NOT_FOUND,
        layout(viewer, Section::Catalog, "Deleted game", body),
    ))
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (stored, game) = match load(&viewer, &state, &id).await {
        Ok(loaded) => loaded,
        Err(page) => {
            let deleted = deleted_page(&viewer, &state, &id, query.history_before()).await;
            return deleted.unwrap_or(page);
        }
    };
    let history = match history_of(&viewer, &state, &stored.id, query.history_before()).await {
        Ok(history) => history_panel(&viewer, stored.id.as_str(), stored.version, &history),
        Err(page) => return page,
    };
    let id = stored.id.as_str();
    let title = game.title.as_str();
    let (price, currency) = price_text(&game);
    let facts = [
        ("Id", id.to_owned()),
        ("Platforms", labels(&game.platforms, ", ")),
        ("Genres", labels(&game.genres, ", ")),
        (
            "Released",
            game.release_date.map(|d| d.to_string()).unwrap_or_default(),
        ),
        (
            "Developer",
            game.developer
                .as_ref()
                .map_or("", |n| n.as_str())
                .to_owned(),
        ),
        (
            "Publisher",
            game.publisher
                .as_ref()
                .map_or("", |n| n.as_str())
                .to_owned(),
        ),
        (
            "Rating",
            game.rating
                .map(|r| format!("{:.1} / 10", r.value()))
                .unwrap_or_default(),
        ),
        (
            "Price",
            if price.is_empty() {
                String::new()
            } else {
                format!("{price} {currency}")
            },
        ),
        ("Tags", labels(&game.tags, ", ")),
        ("Version", stored.version.to_string()),
        ("Updated", stored.updated_at.clone()),
        ("Created", stored.created_at.clone()),
    ];
    let body = html! {
        article #game data-id=(id) data-version=(stored.version) data-title=(title) {
            p.crumbs { a href="/" { "Catalog" } " / " }
            div.page-head {
                h1 { (title) }
                @if viewer.can_write() {
                    div.actions {
                        a.button href={ "/ui/games/" (id) "/edit" } { "Edit" }
                        button.danger type="button" data-delete { "Delete…" }
                    }
                }
            }
            div.notice role="alert" #game-message hidden {}
            @if let Some(restored) = query.restored() {
                div.notice.success role="status" {
                    p { "Version " (restored) " restored: it is now version " (stored.version) "." }
                }
            }
            div.game-detail {
                figure.cover {
                    @if let Some(key) = &game.cover_image {
                        div #cover-image {
                            (super::cover_image(&stored.id, key, Size::Small, &format!("Cover of {title}")))
                        }
                    } @else {
                        div.cover-placeholder #cover-image role="img" aria-label="No cover image" {
                            span { "No cover yet" }
                        }
                    }
                }
                dl.facts {
                    @for (name, value) in &facts {
                        @if !value.is_empty() {
                            dt { (name) }
                            dd { (value) }
                        }
                    }
                }
            }
            @if let Some(description) = &game.description {
                h2 { "Description" }
                div.description { (description.as_str()) }
            }
            @if !game.extra.is_empty() {
                h2 { "Other fields" }
                pre.extra { (serde_json::to_string_pretty(&game.extra).unwrap_or_default()) }
            }
            (history)
            @if viewer.can_write() {
                section.panel aria-labelledby="cover-heading" {
                    h2 #cover-heading { "Cover image" }
                    form #cover-form.cover-form {
                        div.field {
                            label for="cover-file" { "Choose a JPEG, PNG or WebP image (at most 20 MiB and 40 megapixels)" }
                            input #cover-file name="cover" type="file" accept="image/jpeg,image/png,image/webp" required;
                        }
                        figure.cover-preview hidden {
                            img #cover-preview alt="Preview of the new cover" width="160";
                            figcaption { "Preview" }
                        }
                        div.actions { button type="submit" { "Upload cover" } }
                        p.status role="status" #cover-status {}
                    }
                }
                dialog #delete-dialog aria-labelledby="delete-heading" {
                    form method="dialog" {
                        h2 #delete-heading { "Delete this game?" }
                        p {
                            strong { (title) }
                            " and its cover will be removed from the catalog. This cannot be undone."
                        }
                        div.actions {
                            button.secondary value="cancel" autofocus { "Keep it" }
                            button.danger value="delete" data-confirm-delete { "Delete" }
                        }
                    }
                }
            } @else {
                (sign_in_notice(&viewer, "edit this game"))
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Catalog, title, body),
    )
}

/// One input of the game form.
struct FieldSpec {
    name: &'static str,
    label: &'static str,
    /// How the script turns the text into JSON: `text`, `list` or `number`; a `textarea` is
    /// text on several lines.
    kind: &'static str,
    hint: &'static str,
}

const FIELDS: [FieldSpec; 11] = [
    FieldSpec {
        name: "title",
        label: "Title",
        kind: "text",
        hint: "Required. Up to 300 characters.",
    },
    FieldSpec {
        name: "platforms",
        label: "Platforms",
        kind: "list",
        hint: "One a line, e.g. PC, then Nintendo Switch on the next line.",
    },
    FieldSpec {
        name: "genres",
        label: "Genres",
        kind: "list",
        hint: "One a line.",
    },
    FieldSpec {
        name: "release_date",
        label: "Release date",
        kind: "text",
        hint: "YYYY, YYYY-MM or YYYY-MM-DD.",
    },
    FieldSpec {
        name: "developer",
        label: "Developer",
        kind: "text",
        hint: "",
    },
    FieldSpec {
        name: "publisher",
        label: "Publisher",
        kind: "text",
        hint: "",
    },
    FieldSpec {
        name: "rating",
        label: "Rating",
        kind: "number",
        hint: "0–10, at most one decimal.",
    },
    FieldSpec {
        name: "price",
        label: "Price",
        kind: "number",
        hint: "At most two decimals.",
    },
    FieldSpec {
        name: "currency",
        label: "Currency",
        kind: "text",
        hint: "An ISO 4217 code; USD when left empty.",
    },
    FieldSpec {
        name: "tags",
        label: "Tags",
        kind: "list",
        hint: "One a line.",
    },
    FieldSpec {
        name: "description",
        label: "Description",
        kind: "textarea",
        hint: "Up to 10,000 characters.",
    },
];

fn field(spec: &FieldSpec, value: &str) -> Markup {
    let FieldSpec {
        name,
        label,
        kind,
        hint,
    } = *spec;
    let id = format!("g-{name}");
    let hint_id = format!("g-{name}-hint");
    let error_id = format!("g-{name}-error");
    let described = format!("{hint_id} {error_id}");
    html! {
        div.field data-field=(name) {
            label for=(id) { (label) }
            @match kind {
                // A list is one entry a line, so that entries may hold commas.
                "list" => textarea #(id) name=(name) data-kind="list" aria-describedby=(described) rows="3" { (value) },
                "textarea" => textarea #(id) name=(name) data-kind="text" aria-describedby=(described) rows="6" { (value) },
                _ => input #(id) name=(name) type="text" data-kind=(kind) value=(value) aria-describedby=(described)
                    required[name == "title"]
                    maxlength=[match name { "title" => Some("300"), "currency" => Some("3"), _ => None }]
                    autocapitalize=[(name == "currency").then_some("characters")]
                    placeholder=[(name == "release_date").then_some("2017-03-03")]
                    inputmode=[(kind == "number").then_some("decimal")];,
            }
            p.hint #(hint_id) { (hint) }
            p.field-error #(error_id) hidden {}
        }
    }
}

fn values(game: &Game) -> Vec<String> {
    let (price, currency) = price_text(game);
    vec![
        game.title.as_str().to_owned(),
        labels(&game.platforms, "\n"),
        labels(&game.genres, "\n"),
        game.release_date.map(|d| d.to_string()).unwrap_or_default(),
        game.developer
            .as_ref()
            .map_or("", |n| n.as_str())
            .to_owned(),
        game.publisher
            .as_ref()
            .map_or("", |n| n.as_str())
            .to_owned(),
        game.rating
            .map(|r| format!("{:.1}", r.value()))
            .unwrap_or_default(),
        price,
        currency,
        labels(&game.tags, "\n"),
        game.description
            .as_ref()
            .map_or("", |d| d.as_str())
            .to_owned(),
    ]
}

/// The form, for a new game (`stored` is `None`) or an existing one.
fn form(stored: Option<(&StoredGame, &Game)>) -> Markup {
    let (mode, id, version, cancel) = match stored {
        Some((s, _)) => (
            "edit",
            s.id.as_str(),
            s.version.to_string(),
            format!("/ui/games/{}", s.id),
        ),
        None => ("create", "", String::new(), "/".to_owned()),
    };
    let values = stored.map(|(_, g)| values(g)).unwrap_or_default();
    html! {
        div.error-summary role="alert" tabindex="-1" #form-errors hidden {}
        form #game-form.game-form novalidate data-mode=(mode) data-id=(id) data-version=(version) {
            noscript {
                div.notice { p { "Saving needs JavaScript; the JSON API at " a href="/docs" { "/docs" } " works without it." } }
            }
            @if mode == "create" {
                div.field data-field="id" {
                    label for="g-id" { "Id " span.muted { "(optional)" } }
                    input #g-id name="id" type="text" data-kind="text" aria-describedby="g-id-hint g-id-error" autocapitalize="none" spellcheck="false";
                    p.hint #g-id-hint { "Letters, digits, '.', '_' or '-'. Left empty, it is made from the title and the release year." }
                    p.field-error #g-id-error hidden {}
                }
            }
            @for (i, spec) in FIELDS.iter().enumerate() {
                (field(spec, values.get(i).map_or("", String::as_str)))
            }
            div.actions {
                button type="submit" { @if mode == "edit" { "Save changes" } @else { "Create game" } }
                a.button.secondary href=(cancel) { "Cancel" }
            }
            p.status role="status" #form-status {}
        }
        section #conflict.panel.conflict hidden aria-labelledby="conflict-heading" tabindex="-1" {
            h2 #conflict-heading { "Someone else saved this game in the meantime" }
            p { "Your changes were not saved. Compare both versions and choose which to keep." }
            div.table-scroll tabindex="0" role="region" aria-label="Both versions" {
                table {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Your version" } th scope="col" #conflict-theirs { "Saved version" } } }
                    tbody #conflict-rows {}
                }
            }
            div.actions {
                button type="button" data-keep="mine" { "Keep my version" }
                button.secondary type="button" data-keep="theirs" { "Use the saved version" }
            }
        }
    }
}

pub async fn new_form(viewer: Viewer) -> Response {
    let body = html! {
        p.crumbs { a href="/" { "Catalog" } " / " }
        h1 { "New game" }
        @if viewer.can_write() { (form(None)) } @else { (sign_in_notice(&viewer, "add games")) }
    };
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Catalog, "New game", body),
    )
}

pub async fn edit_form(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let (stored, game) = match load(&viewer, &state, &id).await {
        Ok(loaded) => loaded,
        Err(page) => return page,
    };
    let title = format!("Edit {}", game.title.as_str());
    let body = html! {
        p.crumbs {
            a href="/" { "Catalog" } " / "
            a href={ "/ui/games/" (stored.id.as_str()) } { (game.title.as_str()) } " / "
        }
        h1 { (title) }
        @if viewer.can_write() {
            (form(Some((&stored, &game))))
        } @else {
            (sign_in_notice(&viewer, "edit this game"))
        }
    };
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Catalog, &title, body),
    )
}
