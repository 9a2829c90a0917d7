//! Signing in: an API key, typed once, is exchanged for a session cookie; signing out clears
//! it. Both forms are protected against cross-site posts: the sign-in form by a
//! double-submit token (a cookie and a hidden field that must match, as there is no session
//! yet), the sign-out form by the session's CSRF token.

use super::{Section, Viewer, error_page, html_response, page as layout};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::session::{self, CSRF_FIELD, Session};
use crate::keys::Scope;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

/// The double-submit cookie of the sign-in form.
const SIGN_IN_COOKIE: &str = "ludex_sign_in";
const SIGN_IN_PATH: &str = "/ui/sign-in";

/// Where to go after signing in: a path on this site only, never another origin.
fn local_path(next: &str) -> &str {
    let safe = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control);
    if safe { next } else { "/" }
}

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

fn form_page(viewer: &Viewer, next: &str, token: &str, error: Option<&str>) -> String {
    let body = html! {
        div.narrow {
            h1 { "Sign in" }
            @if let Some(scope) = viewer.scope {
                div.notice.success {
                    p {
                        "You are signed in with a "
                        @match scope { Scope::Write => "write", Scope::Read => "read-only" }
                        " key. Sign in again to use another key."
                    }
                }
            }
            p {
                "Reading the catalog needs no key. To add, edit or upload games, sign in with an API key that has the write scope; create one on the server with "
                code { "ludex keys create --name NAME" } "."
            }
            @if let Some(message) = error {
                div.error-summary role="alert" #sign-in-error { p { (message) } }
            }
            form.sign-in method="post" action=(SIGN_IN_PATH) {
                input type="hidden" name="sign_in_token" value=(token);
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="api-key" { "API key" }
                    input #api-key name="key" type="password" autocomplete="off" spellcheck="false" required
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| "sign-in-error")];
                }
                p.hint {
                    "The key stays on the server side: your browser keeps only a session cookie, valid for 12 hours or until you sign out."
                }
                div.actions { button type="submit" { "Sign in" } }
            }
        }
    };
    layout(viewer, Section::SignIn, "Sign in", body)
}

/// The sign-in form, with a fresh double-submit token.
fn form_response(viewer: &Viewer, next: &str, status: StatusCode, error: Option<&str>) -> Response {
    let token = match session::random_token() {
        Ok(t) => t,
        Err(e) => return super::failure_page(viewer, "no random token for the sign-in form", &e),
    };
    let mut response = html_response(status, form_page(viewer, next, &token, error));
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SIGN_IN_COOKIE, Some(&token), SIGN_IN_PATH, viewer.tls),
    );
    response
}

pub async fn form(
    parts: Parts,
    State(state): State<AppState>,
    Query(next): Query<Next>,
) -> Response {
    let viewer = match Viewer::ungated(&parts, &state).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    form_response(&viewer, local_path(&next.next), StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    sign_in_token: String,
}

fn forbidden(viewer: &Viewer, message: &str) -> Response {
    error_page(
        viewer,
        StatusCode::FORBIDDEN,
        "This form has expired",
        message,
    )
}

pub async fn submit(
    parts: Parts,
    State(state): State<AppState>,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let viewer = match Viewer::ungated(&parts, &state).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Ok(Form(form)) = form else {
        return forbidden(
            &viewer,
            "The sign-in form was not sent as a form; reload the page and try again.",
        );
    };
    let expected = session::cookie(&parts.headers, SIGN_IN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::tokens_match(expected, &form.sign_in_token) {
        return forbidden(
            &viewer,
            "The sign-in form could not be verified (it is too old, or was sent from another site). Reload the sign-in page and try again.",
        );
    }
    let next = local_path(&form.next);
    let key = form.key.trim();
    let scope = if key.is_empty() {
        None
    } else {
        match state.keys.scope_of(key).await {
            Ok(scope) => scope,
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    if scope.is_none() {
        let message = if key.is_empty() {
            "Enter an API key."
        } else {
            "the API key is not valid"
        };
        return form_response(&viewer, next, StatusCode::UNAUTHORIZED, Some(message));
    }
    let sealed = match state.config.sessions.key().await {
        Ok(sessions) => Session::open(key).and_then(|session| session.seal(sessions)),
        Err(e) => Err(e),
    };
    let sealed = match sealed {
        Ok(sealed) => sealed,
        Err(e) => return super::failure_page(&viewer, "opening a session failed", &e),
    };
    // The new cookie replaces any earlier session of this browser.
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(
            session::cookie_name(viewer.tls),
            Some(&sealed),
            "/",
            viewer.tls,
        ),
    );
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(SIGN_IN_COOKIE, None, SIGN_IN_PATH, viewer.tls),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn sign_out(
    parts: Parts,
    State(state): State<AppState>,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Response {
    let viewer = match Viewer::ungated(&parts, &state).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let presented = form.map(|Form(f)| f.csrf_token).unwrap_or_default();
    if let Some(open) = &viewer.session
        && !session::tokens_match(&open.csrf, &presented)
    {
        return forbidden(
            &viewer,
            &format!(
                "Signing out needs the form's {CSRF_FIELD}; use the Sign out button of a page of this site."
            ),
        );
    }
    // Clearing the cookie is all signing out can do: see crate::api::session.
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(session::cookie_name(viewer.tls), None, "/", viewer.tls),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed_after_signing_in() {
        assert_eq!(local_path("/ui/games/hades?x=1"), "/ui/games/hades?x=1");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example/"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path(""), "/");
    }
}
