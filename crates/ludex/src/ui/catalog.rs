//! The catalog page (`/`): the API's filters as a GET form, a server-rendered table with sort
//! links and cursor pagination. The URL holds the whole view, so it can be bookmarked; the
//! script only re-fetches this page as you type.

use super::html::{Html, esc, query_string};
use super::{Section, Viewer, failure_page, html_response, page as layout};
use crate::api::{AppState, ListFailure, list_within};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ludex_domain::{ListQuery, Rating, Sort, SortField, StoreError, StoredGame};
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

fn filter_form(params: &CatalogParams, sort: &str) -> String {
    let mut out = Html::default();
    out.raw("<form class=\"filters\" method=\"get\" action=\"/\" role=\"search\" aria-label=\"Filter the catalog\" data-live>");
    let input = |out: &mut Html, name: &str, label: &str, value: &str, attrs: &str| {
        out.raw(&format!(
            "<div class=\"field\"><label for=\"f-{name}\">{label}</label><input id=\"f-{name}\" name=\"{name}\" value=\"{}\" {attrs}></div>",
            esc(value)
        ));
    };
    input(
        &mut out,
        "q",
        "Title search",
        &params.q,
        "type=\"search\" autocomplete=\"off\" placeholder=\"e.g. zelda\" class=\"wide\"",
    );
    input(
        &mut out,
        "platform",
        "Platform",
        &params.platform,
        "type=\"text\" placeholder=\"e.g. PC\"",
    );
    input(
        &mut out,
        "genre",
        "Genre",
        &params.genre,
        "type=\"text\" placeholder=\"e.g. RPG\"",
    );
    input(
        &mut out,
        "year_from",
        "Released from",
        &params.year_from,
        "type=\"number\" inputmode=\"numeric\" min=\"1950\" max=\"2100\" placeholder=\"1950\"",
    );
    input(
        &mut out,
        "year_to",
        "Released to",
        &params.year_to,
        "type=\"number\" inputmode=\"numeric\" min=\"1950\" max=\"2100\" placeholder=\"2100\"",
    );
    input(
        &mut out,
        "min_rating",
        "Min. rating",
        &params.min_rating,
        "type=\"number\" inputmode=\"decimal\" min=\"0\" max=\"10\" step=\"0.1\" placeholder=\"0–10\"",
    );
    out.raw("<div class=\"field\"><label for=\"f-sort\">Sort by</label><select id=\"f-sort\" name=\"sort\">");
    for (value, label) in SORTS {
        let selected = if value == sort { " selected" } else { "" };
        out.raw(&format!(
            "<option value=\"{value}\"{selected}>{label}</option>"
        ));
    }
    out.raw("</select></div>");
    if !params.limit.is_empty() {
        out.raw(&format!(
            "<input type=\"hidden\" name=\"limit\" value=\"{}\">",
            esc(&params.limit)
        ));
    }
    out.raw("<div class=\"actions\"><button type=\"submit\">Apply filters</button><a class=\"button secondary\" href=\"/\">Reset</a></div>");
    out.raw("</form>");
    out.into_string()
}

/// A column header that sorts by its field, the other way round when it already does.
fn sort_header(params: &CatalogParams, current: Sort, field: SortField, label: &str) -> String {
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
    let arrow = match aria {
        "ascending" => " <span aria-hidden=\"true\">▲</span>",
        "descending" => " <span aria-hidden=\"true\">▼</span>",
        _ => "",
    };
    format!(
        "<th scope=\"col\" aria-sort=\"{aria}\"><a href=\"{}\" data-nav>{label}{arrow}<span class=\"visually-hidden\">, sort</span></a></th>",
        esc(&params.link(&next, ""))
    )
}

fn row(stored: &StoredGame) -> String {
    let id = stored.id.as_str();
    let updated = stored.updated_at.get(..10).unwrap_or(&stored.updated_at);
    match stored.game() {
        Ok(game) => {
            let join = |labels: &[ludex_domain::fields::Label]| {
                labels
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "<tr><th scope=\"row\"><a href=\"/ui/games/{}\">{}</a></th><td>{}</td><td>{}</td><td class=\"nowrap\">{}</td><td class=\"num\">{}</td><td class=\"nowrap\"><time datetime=\"{}\">{}</time></td></tr>",
                esc(id),
                esc(game.title.as_str()),
                esc(&join(&game.platforms)),
                esc(&join(&game.genres)),
                game.release_date.map(|d| d.to_string()).unwrap_or_default(),
                game.rating
                    .map(|r| format!("{:.1}", r.value()))
                    .unwrap_or_else(|| "<span class=\"muted\">–</span>".into()),
                esc(&stored.updated_at),
                esc(updated),
            )
        }
        Err(_) => format!(
            "<tr><th scope=\"row\"><a href=\"/ui/games/{}\">{}</a></th><td colspan=\"5\" class=\"muted\">This record could not be read.</td></tr>",
            esc(id),
            esc(id)
        ),
    }
}

fn results(
    params: &CatalogParams,
    query: &ListQuery,
    items: &[StoredGame],
    next: Option<&str>,
) -> String {
    let mut out = Html::default();
    let sort_text = query.sort.to_string();
    if items.is_empty() {
        out.raw("<div class=\"empty\">");
        if params.has_filters() {
            out.raw("<h2>No games match these filters</h2><p>Try fewer words, another platform or a wider range of years.</p><p><a class=\"button secondary\" href=\"/\">Clear the filters</a></p>");
        } else if query.cursor.is_some() {
            out.raw("<h2>No more games</h2><p><a href=\"/\">Back to the first page</a></p>");
        } else {
            out.raw("<h2>The catalog is empty</h2><p>Upload a JSON or NDJSON file of games, or add one by hand.</p><p><a class=\"button\" href=\"/ui/uploads\">Upload a file</a> <a class=\"button secondary\" href=\"/ui/games/new\">New game</a></p>");
        }
        out.raw("</div>");
        return out.into_string();
    }
    let count = items.len();
    out.raw(&format!(
        "<p class=\"summary\">{count} game{} on this page{}.</p>",
        if count == 1 { "" } else { "s" },
        if next.is_some() {
            ", more on the next"
        } else {
            ""
        }
    ));
    out.raw("<div class=\"table-scroll\" tabindex=\"0\" role=\"region\" aria-label=\"Games\"><table class=\"games\"><caption class=\"visually-hidden\">Games, sorted by ");
    out.text(&sort_text);
    out.raw("</caption><thead><tr>");
    out.raw(&sort_header(params, query.sort, SortField::Title, "Title"));
    out.raw("<th scope=\"col\">Platforms</th><th scope=\"col\">Genres</th>");
    out.raw(&sort_header(
        params,
        query.sort,
        SortField::ReleaseDate,
        "Released",
    ));
    out.raw(&sort_header(
        params,
        query.sort,
        SortField::Rating,
        "Rating",
    ));
    out.raw(&sort_header(
        params,
        query.sort,
        SortField::UpdatedAt,
        "Updated",
    ));
    out.raw("</tr></thead><tbody>");
    for stored in items {
        out.raw(&row(stored));
    }
    out.raw("</tbody></table></div>");
    out.raw("<nav class=\"pager\" aria-label=\"Pages\">");
    if query.cursor.is_some() {
        out.raw(&format!(
            "<a href=\"{}\" data-nav>First page</a>",
            esc(&params.link(&params.sort, ""))
        ));
    }
    if let Some(cursor) = next {
        out.raw(&format!(
            "<a class=\"button\" href=\"{}\" rel=\"next\" data-nav>Next page</a>",
            esc(&params.link(&params.sort, cursor))
        ));
    }
    out.raw("</nav>");
    out.into_string()
}

fn problems(messages: &[String]) -> String {
    let mut out = Html::default();
    out.raw("<div class=\"notice error\" role=\"alert\"><h2>These filters cannot be used</h2><ul>");
    for m in messages {
        out.raw("<li>");
        out.text(m);
        out.raw("</li>");
    }
    out.raw("</ul><p><a href=\"/\">Clear the filters</a></p></div>");
    out.into_string()
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
                results(&params, &query, &page.items, page.next_cursor.as_deref()),
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
    let mut body = Html::default();
    body.raw("<div class=\"page-head\"><h1>Catalog</h1>");
    body.raw("<a class=\"button\" href=\"/ui/games/new\">New game</a></div>");
    if !params.deleted.is_empty() {
        body.raw("<div class=\"notice success\" role=\"status\"><p>Deleted ");
        body.text(&params.deleted);
        body.raw(".</p></div>");
    }
    body.raw(&filter_form(&params, &sort));
    body.raw("<p class=\"loading\" hidden role=\"status\">Loading…</p>");
    body.raw("<section id=\"results\" aria-live=\"polite\" aria-label=\"Results\">");
    body.raw(&region);
    body.raw("</section>");
    html_response(
        status,
        layout(&viewer, Section::Catalog, "Catalog", &body.into_string()),
    )
}
