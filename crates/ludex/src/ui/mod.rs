//! The web UI: server-rendered HTML pages over the same ports as the JSON API, enhanced by one
//! small script. Its stylesheet and script are compiled into the binary; nothing is loaded
//! from elsewhere. Reading works without JavaScript; writes go through the JSON API from the
//! script, signed in by a session cookie (see [`crate::api::session`]).

mod catalog;
mod games;
mod html;
mod ingests;
mod reports;
mod sign_in;

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::session::{self, Session};
use crate::keys::Scope;
use axum::Router;
use axum::extract::{FromRequestParts, Query};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use std::sync::LazyLock;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

/// The UI's routes, merged into the API router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(catalog::page))
        .route("/ui/assets/ui.css", get(stylesheet))
        .route("/ui/assets/ui.js", get(script))
        .route("/ui/suggestions", get(catalog::suggestions))
        .route("/ui/games/new", get(games::new_form))
        .route("/ui/games/{id}", get(games::page))
        .route("/ui/games/{id}/edit", get(games::edit_form))
        .route("/ui/uploads", get(ingests::uploads))
        .route("/ui/ingests/{id}", get(ingests::page))
        .route("/ui/reports", get(reports::page))
        .route("/ui/reports/{file}", get(reports::csv))
        .route("/ui/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/ui/sign-out", axum::routing::post(sign_in::sign_out))
}

/// A short fingerprint of the assets, so browsers may cache them and still see new builds.
static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = blake3::Hasher::new();
    hasher.update(CSS.as_bytes());
    hasher.update(JS.as_bytes());
    hasher.finalize().to_hex()[..12].to_owned()
});

#[derive(serde::Deserialize)]
struct AssetQuery {
    v: Option<String>,
}

/// An asset: cached for a year, `immutable`, when asked for by the version pages link to
/// (`?v=<fingerprint>`, which changes with every change of the assets); otherwise revalidated.
fn asset(query: &AssetQuery, content_type: &'static str, body: &'static str) -> Response {
    let cache = if query.v.as_deref() == Some(ASSET_VERSION.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

async fn stylesheet(Query(query): Query<AssetQuery>) -> Response {
    asset(&query, "text/css; charset=utf-8", CSS)
}

async fn script(Query(query): Query<AssetQuery>) -> Response {
    asset(&query, "text/javascript; charset=utf-8", JS)
}

/// Who is looking at a page: signed in or not, and whether the page was reached over TLS.
pub struct Viewer {
    pub session: Option<Session>,
    pub scope: Option<Scope>,
    pub tls: bool,
    /// The path and query of the page, to come back to after signing in.
    pub here: String,
}

impl Viewer {
    pub fn can_write(&self) -> bool {
        self.scope == Some(Scope::Write)
    }

    fn csrf(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.csrf.as_str())
    }
}

impl FromRequestParts<AppState> for Viewer {
    /// A redirect to the sign-in page where reads need a key and there is none.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let viewer = Self::ungated(parts, state).await?;
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let bearer_reads = match bearer {
            Some(key) => state
                .keys
                .scope_of(key.trim())
                .await
                .map_err(|e| ApiError::from(e).into_response())?
                .is_some(),
            None => false,
        };
        if state.config.reads_require_key && viewer.scope.is_none() && !bearer_reads {
            return Err(Redirect::to(&sign_in_link(&viewer)).into_response());
        }
        Ok(viewer)
    }
}

impl Viewer {
    /// The viewer of a request, whether or not reads need a key (for the sign-in pages).
    /// Fails only when the keys cannot be fetched.
    pub async fn ungated(parts: &Parts, state: &AppState) -> Result<Self, Response> {
        let (_, session) = session::find(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let scope = match &session {
            Some(session) => session
                .access(state)
                .await
                .map_err(|e| ApiError::from(e).into_response())?
                .map(|access| access.scope),
            None => None,
        };
        let here = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self {
            session: session.filter(|_| scope.is_some()),
            scope,
            tls: session::over_tls(parts),
            here,
        })
    }
}

/// The sections of the main navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Catalog,
    Uploads,
    Reports,
    SignIn,
}

/// A whole page: the shared header and navigation around `body`.
pub fn page(viewer: &Viewer, section: Section, title: &str, body: Markup) -> String {
    let asset = |name: &str| format!("/ui/assets/{name}?v={}", *ASSET_VERSION);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No favicon: saves the browser a request that would only find a 404.
                link rel="icon" href="data:,";
                title { (title) " · ludex" }
                link rel="stylesheet" href=(asset("ui.css"));
                script src=(asset("ui.js")) defer {}
                @if let Some(csrf) = viewer.csrf() {
                    meta name="csrf-token" content=(csrf);
                }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "ludex" }
                    nav aria-label="Main" {
                        ul {
                            @for (target, href, label) in [
                                (Section::Catalog, "/", "Catalog"),
                                (Section::Uploads, "/ui/uploads", "Upload"),
                                (Section::Reports, "/ui/reports", "Reports"),
                            ] {
                                li { a href=(href) aria-current=[(target == section).then_some("page")] { (label) } }
                            }
                            li { a href="/docs" { "API" } }
                        }
                    }
                    div.who {
                        @match (&viewer.session, viewer.scope) {
                            (Some(s), Some(scope)) => {
                                span.who-name {
                                    @match scope {
                                        Scope::Write => "Signed in",
                                        Scope::Read => "Signed in (read only)",
                                    }
                                }
                                form method="post" action="/ui/sign-out" {
                                    input type="hidden" name=(session::CSRF_FIELD) value=(s.csrf);
                                    button.link type="submit" { "Sign out" }
                                }
                            }
                            _ if section == Section::SignIn => {}
                            _ => a href=(sign_in_link(viewer)) { "Sign in" },
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
                footer { p { "ludex · " a href="/openapi.json" { "OpenAPI" } } }
            }
        }
    }
    .into_string()
}

/// The sign-in page, coming back to this one.
fn sign_in_link(viewer: &Viewer) -> String {
    format!(
        "/ui/sign-in{}",
        html::query_string([("next", viewer.here.as_str())])
    )
}

/// An HTML response: never stored, as pages show who is signed in.
/// A cover at one of its sizes, with the size at twice the pixels for dense screens: never the
/// original. The box is the size's; the image keeps its proportions inside it.
pub fn cover_image(
    id: &ludex_domain::GameId,
    key: &ludex_domain::fields::CoverKey,
    size: crate::covers::Size,
    alt: &str,
) -> Markup {
    use crate::covers::{Variant, url};
    let (width, height) = size.bounds();
    let at = |density| url(id, key, Variant { size, density });
    html! {
        img.cover-image src=(at(1)) srcset={ (at(1)) " 1x, " (at(2)) " 2x" }
            width=(width) height=(height) alt=(alt) decoding="async" loading="lazy"
            data-size=(size.name());
    }
}

pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The CSP and Referrer-Policy are set on every HTML response (api::manners).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page that says what went wrong and where to go from here.
pub fn error_page(viewer: &Viewer, status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        h1 { (title) }
        div.notice.error role="alert" { p { (message) } }
        p { a href="/" { "Back to the catalog" } }
    };
    html_response(status, page(viewer, Section::Catalog, title, body))
}

/// The page for a failure of the store or bucket: logged, never echoed.
pub fn failure_page(viewer: &Viewer, what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %error, "{what}");
    error_page(
        viewer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The catalog could not be read just now; the error is logged. Try again shortly.",
    )
}

/// The notice shown in place of a form when the viewer may not write.
pub fn sign_in_notice(viewer: &Viewer, what: &str) -> Markup {
    let reason = if viewer.scope == Some(Scope::Read) {
        "Your API key may only read; sign in with a key that has the write scope"
    } else {
        "Sign in with an API key"
    };
    html! {
        div.notice { p { (reason) " to " (what) ". " a href=(sign_in_link(viewer)) { "Sign in" } } }
    }
}
