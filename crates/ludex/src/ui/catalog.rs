//! The catalog page (`/`): the API's filters as a GET form, a server-rendered table with sort
//! links and cursor pagination. The URL holds the whole view, so it can be bookmarked; the
//! script only re-fetches this page as you type.

use super::html::query_string;
use super::{Section, Viewer, failure_page, html_response, page as layout};
use crate::api::{AppState, ListFailure, list_within};
use crate::covers::Size;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ludex_domain::{ListQuery, Rating, Sort, SortField, StoreError, StoredGame};
use maud::{Markup, html};
use serde::Deserialize;

/// The page's query: the parameters of `GET /games`, as text.
#[derive(Debug, Default, Deserialize)]
pub struct CatalogParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    genre: String,
    #[serde(default)]
    year_from: String,
    #[serde(default)]
    year_to: String,
    #[serde(default)]
    min_rating: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    limit: String,
    #[serde(default)]
    cursor: String,
    /// The id of a game just deleted, to confirm it.
    #[serde(default)]
    deleted: String,
}

impl CatalogParams {
    /// The listing these parameters ask for, or every problem with them, worded as the API
    /// words them (`field: reason`).
    fn query(&self) -> Result<ListQuery, Vec<String>> {
        let mut errors = Vec::new();
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut year = |name: &str, raw: &str| -> Option<u16> {
            let raw = raw.trim();
            if raw.is_empty() {
                return None;
            }
            match raw.parse::<u16>() {
                Ok(y) if (1950..=2100).contains(&y) => Some(y),
                Ok(y) => {
                    errors.push(format!("{name}: {y} is outside 1950–2100"));
                    None
                }
                Err(_) => {
                    errors.push(format!("{name}: {raw:?} is not a year"));
                    None
                }
            }
        };
        let year_from = year("year_from", &self.year_from);
        let year_to = year("year_to", &self.year_to);
        let min_rating = match self.min_rating.trim() {
            "" => None,
            raw => Rating::parse(raw)
                .map_err(|e| errors.push(format!("min_rating: {e}")))
                .ok(),
        };
        let sort = match self.sort.trim() {
            "" => Sort::default(),
            raw => Sort::parse(raw)
                .map_err(|e| errors.push(format!("sort: {e}")))
                .unwrap_or_default(),
        };
        let limit = match self.limit.trim() {
            "" => ListQuery::DEFAULT_LIMIT,
            raw => match raw.parse::<u32>() {
                Ok(n) if (1..=ListQuery::MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(format!(
                        "limit: {raw:?} is not a whole number from 1 to {}",
                        ListQuery::MAX_LIMIT
                    ));
                    ListQuery::DEFAULT_LIMIT
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        ListQuery {
            platform: text(&self.platform),
            genre: text(&self.genre),
            year_from,
            year_to,
            min_rating,
            q: text(&self.q),
            sort,
            limit,
            cursor: text(&self.cursor),
        }
        .bounded()
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    fn has_filters(&self) -> bool {
        [
            &self.q,
            &self.platform,
            &self.genre,
            &self.year_from,
            &self.year_to,
            &self.min_rating,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }

    /// A link to this view with another sort or cursor (filters kept).
    fn link(&self, sort: &str, cursor: &str) -> String {
        let query = query_string([
            ("q", self.q.as_str()),
            ("platform", self.platform.as_str()),
            ("genre", self.genre.as_str()),
            ("year_from", self.year_from.as_str()),
            ("year_to", self.year_to.as_str()),
            ("min_rating", self.min_rating.as_str()),
            ("sort", sort),
            ("limit", self.limit.as_str()),
            ("cursor", cursor),
        ]);
        format!("/{query}")
    }
}

const SORTS: [(&str, &str); 8] = [
    ("-updated_at", "Recently changed"),
    ("updated_at", "Least recently changed"),
    ("title", "Title A–Z"),
    ("-title", "Title Z–A"),
    ("-rating", "Highest rated"),
    ("rating", "Lowest rated"),
    ("-release_date", "Newest releases"),
    ("release_date", "Oldest releases"),
];

/// One text input of the filter form.
fn filter_input(name: &str, label: &str, value: &str, kind: &str, hint: &str) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field {
            label for=(id) { (label) }
            input #(id) name=(name) value=(value) type=(kind) placeholder=(hint)
                class=[(name == "q").then_some("wide")]
                autocomplete=[(name == "q").then_some("off")]
                inputmode=[match name {
                    "year_from" | "year_to" => Some("numeric"),
                    "min_rating" => Some("decimal"),
                    _ => None,
                }]
                min=[match name {
                    "year_from" | "year_to" => Some("1950"),
                    "min_rating" => Some("0"),
                    _ => None,
                }]
                max=[match name {
                    "year_from" | "year_to" => Some("2100"),
                    "min_rating" => Some("10"),
                    _ => None,
                }]
                step=[(name == "min_rating").then_some("0.1")];
        }
    }
}

fn filter_form(params: &CatalogParams, sort: &str) -> Markup {
    html! {
        form.filters method="get" action="/" role="search" aria-label="Filter the catalog" data-live {
            (filter_input("q", "Title search", &params.q, "search", "e.g. zelda"))
            (filter_input("platform", "Platform", &params.platform, "text", "e.g. PC"))
            (filter_input("genre", "Genre", &params.genre, "text", "e.g. RPG"))
            (filter_input("year_from", "Released from", &params.year_from, "number", "1950"))
            (filter_input("year_to", "Released to", &params.year_to, "number", "2100"))
            (filter_input("min_rating", "Min. rating", &params.min_rating, "number", "0–10"))
            div.field {
                label for="f-sort" { "Sort by" }
                select #f-sort name="sort" {
                    @for (value, label) in SORTS {
                        option value=(value) selected[value == sort] { (label) }
                    }
                }
            }
            @if !params.limit.is_empty() {
                input type="hidden" name="limit" value=(params.limit);
            }
            div.actions {
                button type="submit" { "Apply filters" }
                a.button.secondary href="/" { "Reset" }
            }
        }
    }
}

/// A column header that sorts by its field, the other way round when it already does.
fn sort_header(params: &CatalogParams, current: Sort, field: SortField, label: &str) -> Markup {
    let (aria, next) = if current.field == field {
        if current.descending {
            ("descending", field.as_str().to_owned())
        } else {
            ("ascending", format!("-{}", field.as_str()))
        }
    } else {
        let first = if field == SortField::Title {
            field.as_str().to_owned()
        } else {
            format!("-{}", field.as_str())
        };
        ("none", first)
    };
    html! {
        th scope="col" aria-sort=(aria) {
            a href=(params.link(&next, "")) data-nav {
                (label)
                @match aria {
                    "ascending" => { " " span aria-hidden="true" { "▲" } }
                    "descending" => { " " span aria-hidden="true" { "▼" } }
                    _ => {}
                }
                span.visually-hidden { ", sort" }
            }
        }
    }
}

fn row(stored: &StoredGame) -> Markup {
    let id = stored.id.as_str();
    let updated = stored.updated_at.get(..10).unwrap_or(&stored.updated_at);
    let href = format!("/ui/games/{id}");
    let join = |labels: &[ludex_domain::fields::Label]| {
        labels
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        @match stored.game() {
            Ok(game) => tr {
                (thumb_cell(stored, &game))
                th scope="row" { a href=(href) { (game.title.as_str()) } }
                td { (join(&game.platforms)) }
                td { (join(&game.genres)) }
                td.nowrap { @if let Some(date) = game.release_date { (date) } }
                td.num {
                    @match game.rating {
                        Some(r) => (format!("{:.1}", r.value())),
                        None => span.muted { "–" },
                    }
                }
                td.nowrap { time datetime=(stored.updated_at) { (updated) } }
            },
            Err(_) => tr {
                td.thumb {}
                th scope="row" { a href=(href) { (id) } }
                td.muted colspan="5" { "This record could not be read." }
            },
        }
    }
}

/// The cell of a row's cover: its `thumb` size, or nothing.
fn thumb_cell(stored: &StoredGame, game: &ludex_domain::Game) -> Markup {
    html! {
        td.thumb {
            @if let Some(key) = &game.cover_image {
                (super::cover_image(&stored.id, key, Size::Thumb, &format!("Cover of {}", game.title.as_str())))
            }
        }
    }
}

fn results(
    params: &CatalogParams,
    query: &ListQuery,
    items: &[StoredGame],
    next: Option<&str>,
    editable: bool,
) -> Markup {
    let first_page_of_all = !params.has_filters() && query.cursor.is_none();
    if editable && (!items.is_empty() || first_page_of_all) {
        return html! {
            @if items.is_empty() {
                p.summary #grid-empty { "The catalog is empty: type a title in the last row to add a game, or upload a file." }
            }
            (grid(params, query, items))
            (pager(params, query, next))
        };
    }
    if items.is_empty() {
        return html! {
            div.empty {
                @if params.has_filters() {
                    h2 { "No games match these filters" }
                    p { "Try fewer words, another platform or a wider range of years." }
                    p { a.button.secondary href="/" { "Clear the filters" } }
                } @else if query.cursor.is_some() {
                    h2 { "No more games" }
                    p { a href="/" { "Back to the first page" } }
                } @else {
                    h2 { "The catalog is empty" }
                    p { "Upload a JSON or NDJSON file of games, or add one by hand." }
                    p {
                        a.button href="/ui/uploads" { "Upload a file" }
                        " "
                        a.button.secondary href="/ui/games/new" { "New game" }
                    }
                }
            }
        };
    }
    let count = items.len();
    html! {
        p.summary {
            (count) " game" @if count != 1 { "s" } " on this page"
            @if next.is_some() { ", more on the next" } "."
        }
        div.table-scroll tabindex="0" role="region" aria-label="Games" {
            table.games {
                caption.visually-hidden { "Games, sorted by " (query.sort) }
                thead {
                    tr {
                        th.thumb scope="col" { span.visually-hidden { "Cover" } }
                        (sort_header(params, query.sort, SortField::Title, "Title"))
                        th scope="col" { "Platforms" }
                        th scope="col" { "Genres" }
                        (sort_header(params, query.sort, SortField::ReleaseDate, "Released"))
                        (sort_header(params, query.sort, SortField::Rating, "Rating"))
                        (sort_header(params, query.sort, SortField::UpdatedAt, "Updated"))
                    }
                }
                tbody { @for stored in items { (row(stored)) } }
            }
        }
        (pager(params, query, next))
    }
}

fn pager(params: &CatalogParams, query: &ListQuery, next: Option<&str>) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if query.cursor.is_some() {
                a href=(params.link(&params.sort, "")) data-nav { "First page" }
            }
            @if let Some(cursor) = next {
                a.button href=(params.link(&params.sort, cursor)) rel="next" data-nav { "Next page" }
            }
        }
    }
}

/// The editable columns of the grid: the field, its heading, how the script edits it
/// (`text`, `list` or `number`) and the sort it has, if any.
const GRID_COLUMNS: [(&str, &str, &str, Option<SortField>); 7] = [
    ("title", "Title", "text", Some(SortField::Title)),
    ("platforms", "Platforms", "list", None),
    ("genres", "Genres", "list", None),
    ("tags", "Tags", "list", None),
    (
        "release_date",
        "Released",
        "text",
        Some(SortField::ReleaseDate),
    ),
    ("developer", "Developer", "text", None),
    ("rating", "Rating", "number", Some(SortField::Rating)),
];

/// What a grid cell shows of a game's field.
fn cell_text(game: &ludex_domain::Game, field: &str) -> String {
    let join = |labels: &[ludex_domain::fields::Label]| {
        labels
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match field {
        "title" => game.title.as_str().to_owned(),
        "platforms" => join(&game.platforms),
        "genres" => join(&game.genres),
        "tags" => join(&game.tags),
        "release_date" => game.release_date.map(|d| d.to_string()).unwrap_or_default(),
        "developer" => game
            .developer
            .as_ref()
            .map_or_else(String::new, |n| n.as_str().to_owned()),
        "rating" => game
            .rating
            .map_or_else(String::new, |r| format!("{:.1}", r.value())),
        _ => String::new(),
    }
}

/// The catalog as a grid for those who may write: every row carries its stored document (the
/// script edits, conflicts and undoes from it), each editable cell names its field; without
/// the script it reads as the table does.
fn grid(params: &CatalogParams, query: &ListQuery, items: &[StoredGame]) -> Markup {
    html! {
        div #bulk-bar.bulk-bar hidden {}
        div.table-scroll.grid-scroll tabindex="-1" {
            table.games.grid #grid role="grid" aria-label="Games: move with the arrow keys, Enter to edit" aria-describedby="grid-help" {
                caption.visually-hidden { "Games, sorted by " (query.sort) }
                thead {
                    tr {
                        th.select scope="col" {
                            input type="checkbox" data-select-all aria-label="Select every game on this page" tabindex="-1";
                        }
                        th.thumb scope="col" { span.visually-hidden { "Cover" } }
                        @for (field, label, _, sort) in GRID_COLUMNS {
                            @match sort {
                                Some(sort) => (sort_header(params, query.sort, sort, label)),
                                None => th scope="col" data-column=(field) { (label) },
                            }
                        }
                        (sort_header(params, query.sort, SortField::UpdatedAt, "Updated"))
                    }
                }
                tbody {
                    @for stored in items {
                        @match stored.game() {
                            Ok(game) => tr data-id=(stored.id.as_str()) data-version=(stored.version) data-game=(stored.to_json()) {
                                td.select {
                                    input type="checkbox" data-select tabindex="-1" aria-label={ "Select " (game.title.as_str()) };
                                }
                                (thumb_cell(stored, &game))
                                @for (field, _, kind, _) in GRID_COLUMNS {
                                    @if field == "title" {
                                        th scope="row" data-field=(field) data-kind=(kind) {
                                            a href={ "/ui/games/" (stored.id.as_str()) } tabindex="-1" { (game.title.as_str()) }
                                        }
                                    } @else {
                                        td data-field=(field) data-kind=(kind) class=[(field == "rating").then_some("num")] { (cell_text(&game, field)) }
                                    }
                                }
                                td.nowrap { time datetime=(stored.updated_at) { (stored.updated_at.get(..10).unwrap_or(&stored.updated_at)) } }
                            },
                            Err(_) => (row(stored)),
                        }
                    }
                    tr.new-row data-new {
                        td.select {}
                        td.thumb {}
                        th scope="row" data-field="title" data-kind="text" {
                            span.muted { "New game…" }
                        }
                        td.muted colspan=(GRID_COLUMNS.len()) { "Type a title, then Enter" }
                    }
                }
            }
        }
        p #grid-help.hint {
            "Arrow keys or Tab move between cells; Enter (or a click) edits a cell, Enter saves, Esc cancels. "
            "In a list cell, Enter adds an entry and Backspace removes the last. Tick rows to edit them together."
        }
    }
}

fn problems(messages: &[String]) -> Markup {
    html! {
        div.notice.error role="alert" {
            h2 { "These filters cannot be used" }
            ul { @for m in messages { li { (m) } } }
            p { a href="/" { "Clear the filters" } }
        }
    }
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(params): Query<CatalogParams>,
) -> Response {
    let (status, region) = match params.query() {
        Err(messages) => (StatusCode::BAD_REQUEST, problems(&messages)),
        Ok(query) => match list_within(&state, &query).await {
            Ok(page) => (
                StatusCode::OK,
                results(
                    &params,
                    &query,
                    &page.items,
                    page.next_cursor.as_deref(),
                    viewer.can_write(),
                ),
            ),
            Err(ListFailure::Store(StoreError::InvalidCursor(reason))) => (
                StatusCode::BAD_REQUEST,
                problems(&[format!("cursor: {reason}")]),
            ),
            Err(timed_out @ ListFailure::TimedOut(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                problems(&[timed_out.to_string()]),
            ),
            Err(ListFailure::Store(e)) => {
                return failure_page(&viewer, "listing the catalog failed", &e);
            }
        },
    };
    let sort = if params.sort.is_empty() {
        Sort::default().to_string()
    } else {
        params.sort.clone()
    };
    let body = html! {
        div.page-head {
            h1 { "Catalog" }
            a.button href="/ui/games/new" { "New game" }
        }
        @if !params.deleted.is_empty() {
            div.notice.success role="status" { p { "Deleted " (params.deleted) "." } }
        }
        (filter_form(&params, &sort))
        p.loading hidden role="status" { "Loading…" }
        section #results aria-live="polite" aria-label="Results" { (region) }
    };
    html_response(status, layout(&viewer, Section::Catalog, "Catalog", body))
}

/// `/ui/suggestions`: the platforms and genres in the catalog, most used first, for the
/// grid's list cells (from the store's counters: one read whatever the catalog's size).
pub async fn suggestions(viewer: Viewer, State(state): State<AppState>) -> Response {
    let counts = match state.stores.catalog.counts().await {
        Ok(counts) => counts,
        Err(e) => return failure_page(&viewer, "reading the suggestions failed", &e),
    };
    let labels = |counts: &[ludex_domain::counts::LabelCount]| -> Vec<String> {
        let mut sorted: Vec<_> = counts.iter().collect();
        sorted.sort_by(|a, b| b.games.cmp(&a.games).then_with(|| a.label.cmp(&b.label)));
        sorted.into_iter().map(|c| c.label.clone()).collect()
    };
    let body = serde_json::json!({
        "platforms": labels(&counts.platforms),
        "genres": labels(&counts.genres),
    });
    let mut response = crate::api::json_response(StatusCode::OK, body.to_string());
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}
