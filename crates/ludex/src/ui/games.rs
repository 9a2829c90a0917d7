//! A game's page, and the create and edit forms. The forms are rendered here and submitted by
//! the script to the JSON API (`POST /games`, `PATCH /games/{id}` with `If-Match`), so field
//! errors and conflicts are the API's own.

use super::html::{Html, esc};
use super::{
    Section, Viewer, error_page, failure_page, html_response, page as layout, sign_in_notice,
};
use crate::api::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ludex_domain::fields::Label;
use ludex_domain::{Game, GameId, StoredGame};

/// Loads a game for a page, or the page that explains why not.
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

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let (stored, game) = match load(&viewer, &state, &id).await {
        Ok(loaded) => loaded,
        Err(page) => return page,
    };
    let id = stored.id.as_str();
    let mut body = Html::default();
    body.raw(&format!(
        "<article id=\"game\" data-id=\"{}\" data-version=\"{}\" data-title=\"{}\">",
        esc(id),
        stored.version,
        esc(game.title.as_str())
    ));
    body.raw("<p class=\"crumbs\"><a href=\"/\">Catalog</a> / </p>");
    body.raw("<div class=\"page-head\"><h1>");
    body.text(game.title.as_str());
    body.raw("</h1>");
    if viewer.can_write() {
        body.raw(&format!(
            "<div class=\"actions\"><a class=\"button\" href=\"/ui/games/{}/edit\">Edit</a><button type=\"button\" class=\"danger\" data-delete>Delete…</button></div>",
            esc(id)
        ));
    }
    body.raw("</div><div class=\"notice\" role=\"alert\" id=\"game-message\" hidden></div>");
    body.raw("<div class=\"game-detail\"><figure class=\"cover\">");
    if game.cover_image.is_some() {
        body.raw(&format!(
            "<img id=\"cover-image\" src=\"/games/{}/cover?v={}\" alt=\"Cover of {}\" width=\"240\">",
            esc(id),
            stored.version,
            esc(game.title.as_str())
        ));
    } else {
        body.raw("<div class=\"cover-placeholder\" id=\"cover-image\" role=\"img\" aria-label=\"No cover image\"><span>No cover yet</span></div>");
    }
    body.raw("</figure><dl class=\"facts\">");
    let mut fact = |name: &str, value: &str| {
        if !value.is_empty() {
            body.raw("<dt>");
            body.text(name);
            body.raw("</dt><dd>");
            body.text(value);
            body.raw("</dd>");
        }
    };
    let (price, currency) = price_text(&game);
    fact("Id", id);
    fact("Platforms", &labels(&game.platforms, ", "));
    fact("Genres", &labels(&game.genres, ", "));
    fact(
        "Released",
        &game.release_date.map(|d| d.to_string()).unwrap_or_default(),
    );
    fact(
        "Developer",
        game.developer.as_ref().map_or("", |n| n.as_str()),
    );
    fact(
        "Publisher",
        game.publisher.as_ref().map_or("", |n| n.as_str()),
    );
    fact(
        "Rating",
        &game
            .rating
            .map(|r| format!("{:.1} / 10", r.value()))
            .unwrap_or_default(),
    );
    fact(
        "Price",
        &if price.is_empty() {
            String::new()
        } else {
            format!("{price} {currency}")
        },
    );
    fact("Tags", &labels(&game.tags, ", "));
    fact("Version", &stored.version.to_string());
    fact("Updated", &stored.updated_at);
    fact("Created", &stored.created_at);
    body.raw("</dl></div>");
    if let Some(description) = &game.description {
        body.raw("<h2>Description</h2><div class=\"description\">");
        body.text(description.as_str());
        body.raw("</div>");
    }
    if !game.extra.is_empty() {
        body.raw("<h2>Other fields</h2><pre class=\"extra\">");
        body.text(&serde_json::to_string_pretty(&game.extra).unwrap_or_default());
        body.raw("</pre>");
    }
    if viewer.can_write() {
        body.raw("<section class=\"panel\" aria-labelledby=\"cover-heading\"><h2 id=\"cover-heading\">Cover image</h2>");
        body.raw("<form id=\"cover-form\" class=\"cover-form\"><div class=\"field\"><label for=\"cover-file\">Choose a JPEG, PNG or WebP image (at most 5 MiB)</label>");
        body.raw("<input id=\"cover-file\" name=\"cover\" type=\"file\" accept=\"image/jpeg,image/png,image/webp\" required></div>");
        body.raw("<figure class=\"cover-preview\" hidden><img id=\"cover-preview\" alt=\"Preview of the new cover\" width=\"160\"><figcaption>Preview</figcaption></figure>");
        body.raw("<div class=\"actions\"><button type=\"submit\">Upload cover</button></div><p class=\"status\" role=\"status\" id=\"cover-status\"></p></form></section>");
        body.raw("<dialog id=\"delete-dialog\" aria-labelledby=\"delete-heading\"><form method=\"dialog\"><h2 id=\"delete-heading\">Delete this game?</h2><p>");
        body.raw(&format!(
            "<strong>{}</strong> and its cover will be removed from the catalog. This cannot be undone.</p>",
            esc(game.title.as_str())
        ));
        body.raw("<div class=\"actions\"><button value=\"cancel\" class=\"secondary\" autofocus>Keep it</button><button value=\"delete\" class=\"danger\" data-confirm-delete>Delete</button></div></form></dialog>");
    } else {
        body.raw(&sign_in_notice(&viewer, "edit this game"));
    }
    body.raw("</article>");
    html_response(
        StatusCode::OK,
        layout(
            &viewer,
            Section::Catalog,
            game.title.as_str(),
            &body.into_string(),
        ),
    )
}

/// One input of the game form.
struct FieldSpec {
    name: &'static str,
    label: &'static str,
    /// How the script turns the text into JSON: `text`, `list` or `number`.
    kind: &'static str,
    hint: &'static str,
    attrs: &'static str,
}

const FIELDS: [FieldSpec; 11] = [
    FieldSpec {
        name: "title",
        label: "Title",
        kind: "text",
        hint: "Required. Up to 300 characters.",
        attrs: "required maxlength=\"300\"",
    },
    FieldSpec {
        name: "platforms",
        label: "Platforms",
        kind: "list",
        hint: "One a line, e.g. PC, then Nintendo Switch on the next line.",
        attrs: "",
    },
    FieldSpec {
        name: "genres",
        label: "Genres",
        kind: "list",
        hint: "One a line.",
        attrs: "",
    },
    FieldSpec {
        name: "release_date",
        label: "Release date",
        kind: "text",
        hint: "YYYY, YYYY-MM or YYYY-MM-DD.",
        attrs: "placeholder=\"2017-03-03\"",
    },
    FieldSpec {
        name: "developer",
        label: "Developer",
        kind: "text",
        hint: "",
        attrs: "",
    },
    FieldSpec {
        name: "publisher",
        label: "Publisher",
        kind: "text",
        hint: "",
        attrs: "",
    },
    FieldSpec {
        name: "rating",
        label: "Rating",
        kind: "number",
        hint: "0–10, at most one decimal.",
        attrs: "inputmode=\"decimal\"",
    },
    FieldSpec {
        name: "price",
        label: "Price",
        kind: "number",
        hint: "At most two decimals.",
        attrs: "inputmode=\"decimal\"",
    },
    FieldSpec {
        name: "currency",
        label: "Currency",
        kind: "text",
        hint: "An ISO 4217 code; USD when left empty.",
        attrs: "maxlength=\"3\" autocapitalize=\"characters\"",
    },
    FieldSpec {
        name: "tags",
        label: "Tags",
        kind: "list",
        hint: "One a line.",
        attrs: "",
    },
    FieldSpec {
        name: "description",
        label: "Description",
        kind: "textarea",
        hint: "Up to 10,000 characters.",
        attrs: "rows=\"6\"",
    },
];

fn field(out: &mut Html, spec: &FieldSpec, value: &str) {
    let FieldSpec {
        name,
        label,
        kind,
        hint,
        attrs,
    } = spec;
    out.raw(&format!(
        "<div class=\"field\" data-field=\"{name}\"><label for=\"g-{name}\">{label}</label>"
    ));
    let described = format!("g-{name}-hint g-{name}-error");
    if *kind == "textarea" || *kind == "list" {
        // A list is one entry a line, so that entries may hold commas.
        let (data_kind, rows) = if *kind == "list" {
            ("list", " rows=\"3\"")
        } else {
            ("text", "")
        };
        out.raw(&format!(
            "<textarea id=\"g-{name}\" name=\"{name}\" data-kind=\"{data_kind}\" aria-describedby=\"{described}\"{rows} {attrs}>{}</textarea>",
            esc(value)
        ));
    } else {
        out.raw(&format!(
            "<input id=\"g-{name}\" name=\"{name}\" type=\"text\" data-kind=\"{kind}\" value=\"{}\" aria-describedby=\"{described}\" {attrs}>",
            esc(value)
        ));
    }
    out.raw(&format!(
        "<p class=\"hint\" id=\"g-{name}-hint\">{hint}</p><p class=\"field-error\" id=\"g-{name}-error\" hidden></p></div>"
    ));
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
fn form(stored: Option<(&StoredGame, &Game)>) -> String {
    let mut out = Html::default();
    let (mode, id, version, cancel) = match stored {
        Some((s, _)) => (
            "edit",
            s.id.as_str(),
            s.version.to_string(),
            format!("/ui/games/{}", s.id),
        ),
        None => ("create", "", String::new(), "/".to_owned()),
    };
    out.raw("<div class=\"error-summary\" role=\"alert\" tabindex=\"-1\" id=\"form-errors\" hidden></div>");
    out.raw(&format!(
        "<form id=\"game-form\" class=\"game-form\" novalidate data-mode=\"{mode}\" data-id=\"{}\" data-version=\"{version}\">",
        esc(id)
    ));
    out.raw("<noscript><div class=\"notice\"><p>Saving needs JavaScript; the JSON API at <a href=\"/docs\">/docs</a> works without it.</p></div></noscript>");
    if mode == "create" {
        out.raw("<div class=\"field\" data-field=\"id\"><label for=\"g-id\">Id <span class=\"muted\">(optional)</span></label>");
        out.raw("<input id=\"g-id\" name=\"id\" type=\"text\" data-kind=\"text\" aria-describedby=\"g-id-hint g-id-error\" autocapitalize=\"none\" spellcheck=\"false\">");
        out.raw("<p class=\"hint\" id=\"g-id-hint\">Letters, digits, '.', '_' or '-'. Left empty, it is made from the title and the release year.</p><p class=\"field-error\" id=\"g-id-error\" hidden></p></div>");
    }
    let values = stored.map(|(_, g)| values(g)).unwrap_or_default();
    for (i, spec) in FIELDS.iter().enumerate() {
        field(&mut out, spec, values.get(i).map_or("", String::as_str));
    }
    out.raw(&format!(
        "<div class=\"actions\"><button type=\"submit\">{}</button><a class=\"button secondary\" href=\"{}\">Cancel</a></div><p class=\"status\" role=\"status\" id=\"form-status\"></p></form>",
        if mode == "edit" { "Save changes" } else { "Create game" },
        esc(&cancel)
    ));
    out.raw("<section id=\"conflict\" class=\"panel conflict\" hidden aria-labelledby=\"conflict-heading\" tabindex=\"-1\">");
    out.raw("<h2 id=\"conflict-heading\">Someone else saved this game in the meantime</h2>");
    out.raw("<p>Your changes were not saved. Compare both versions and choose which to keep.</p>");
    out.raw("<div class=\"table-scroll\" tabindex=\"0\" role=\"region\" aria-label=\"Both versions\"><table><thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Your version</th><th scope=\"col\" id=\"conflict-theirs\">Saved version</th></tr></thead><tbody id=\"conflict-rows\"></tbody></table></div>");
    out.raw("<div class=\"actions\"><button type=\"button\" data-keep=\"mine\">Keep my version</button><button type=\"button\" class=\"secondary\" data-keep=\"theirs\">Use the saved version</button></div></section>");
    out.into_string()
}

pub async fn new_form(viewer: Viewer) -> Response {
    let mut body = Html::default();
    body.raw("<p class=\"crumbs\"><a href=\"/\">Catalog</a> / </p><h1>New game</h1>");
    if viewer.can_write() {
        body.raw(&form(None));
    } else {
        body.raw(&sign_in_notice(&viewer, "add games"));
    }
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Catalog, "New game", &body.into_string()),
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
    let mut body = Html::default();
    body.raw(&format!(
        "<p class=\"crumbs\"><a href=\"/\">Catalog</a> / <a href=\"/ui/games/{}\">{}</a> / </p><h1>",
        esc(stored.id.as_str()),
        esc(game.title.as_str())
    ));
    body.text(&title);
    body.raw("</h1>");
    if viewer.can_write() {
        body.raw(&form(Some((&stored, &game))));
    } else {
        body.raw(&sign_in_notice(&viewer, "edit this game"));
    }
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Catalog, &title, &body.into_string()),
    )
}
