//! The web UI through the whole router, as a browser without JavaScript sees it.

use crate::app::{TestApp, app, app_with};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use ludex::api::session::{self, SessionKey, SessionKeys};
use ludex::api::{ApiConfig, AppState};
use ludex_domain::Game;
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// `name=value` of a cookie this reply sets.
    fn cookie(&self, name: &str) -> String {
        let set = self
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie in {:?}", self.set_cookies()));
        set.split(';').next().unwrap().to_owned()
    }

    /// The value of a hidden form field.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name}"))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

/// The app as these tests drive it, with requests as a browser makes them and replies read
/// as text.
struct Ui(TestApp);

impl std::ops::Deref for Ui {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.0
    }
}

fn ui() -> Ui {
    Ui(app())
}

impl Ui {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// A GET in the session whose cookie is `cookie`.
    async fn get_signed_in(&self, uri: &str, cookie: &str) -> Reply {
        self.send(
            Request::get(uri)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn add(&self, json: serde_json::Value) {
        let game = Game::from_value(&json).unwrap();
        self.state
            .stores
            .catalog
            .create(&game, &crate::conformance::tester())
            .await
            .unwrap();
    }

    /// Signs in through the form; returns the session cookie and the CSRF token.
    async fn sign_in(&self, key: &str, forwarded_proto: Option<&str>) -> (Reply, String, String) {
        let form = self.get("/ui/sign-in").await;
        let body = format!(
            "key={}&next=%2Fui%2Freports&sign_in_token={}",
            key,
            form.hidden("sign_in_token")
        );
        let mut request = Request::post("/ui/sign-in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, form.cookie("ludex_sign_in"));
        if let Some(proto) = forwarded_proto {
            request = request.header("x-forwarded-proto", proto);
        }
        let reply = self.send(request.body(Body::from(body)).unwrap()).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let tls = forwarded_proto == Some("https");
        let cookie = reply.cookie(session::cookie_name(tls));
        let page = self
            .send(
                Request::get("/")
                    .header(header::COOKIE, &cookie)
                    .header("x-forwarded-proto", if tls { "https" } else { "http" })
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let marker = "<meta name=\"csrf-token\" content=\"";
        let start = page
            .body
            .find(marker)
            .expect("a signed-in page carries the CSRF token")
            + marker.len();
        let csrf = page.body[start..].split('"').next().unwrap().to_owned();
        (reply, cookie, csrf)
    }
}

#[tokio::test]
async fn the_catalog_is_rendered_on_the_server_for_reading_without_javascript() {
    let ui = ui();
    ui.add(serde_json::json!({"id": "hades", "title": "Hades", "platforms": ["PC"], "genres": ["Roguelike"], "release_date": "2020-09-17", "rating": 9.3}))
        .await;
    ui.add(serde_json::json!({"id": "celeste", "title": "Celeste <3", "platforms": ["Switch"], "rating": 9.1}))
        .await;

    let reply = ui.get("/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(reply.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(reply.body.contains("<a href=\"/ui/games/hades\">Hades</a>"));
    assert!(reply.body.contains("Celeste &lt;3"), "titles are escaped");
    assert!(
        reply
            .body
            .contains("<form class=\"filters\" method=\"get\" action=\"/\"")
    );

    let filtered = ui.get("/?platform=pc&sort=-rating").await;
    assert!(filtered.body.contains("Hades"));
    assert!(!filtered.body.contains("Celeste"));
    assert!(
        filtered
            .body
            .contains("<option value=\"-rating\" selected>")
    );

    let paged = ui.get("/?limit=1&sort=title").await;
    assert!(paged.body.contains("Celeste"));
    assert!(!paged.body.contains(">Hades<"));
    let next = paged.body.split("rel=\"next\"").next().unwrap();
    let href = next
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let second = ui.get(&href.replace("&amp;", "&")).await;
    assert!(
        second.body.contains(">Hades<"),
        "the next page link follows the cursor"
    );
}

#[tokio::test]
async fn bad_filters_are_reported_in_the_api_wording() {
    let ui = ui();
    let reply = ui.get("/?year_from=abc&min_rating=11").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .body
            .contains("year_from: &quot;abc&quot; is not a year"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("min_rating: "));
}

#[tokio::test]
async fn an_empty_catalog_says_so_and_points_to_the_upload_page() {
    let ui = ui();
    let reply = ui.get("/").await;
    assert!(reply.body.contains("The catalog is empty"));
    assert!(reply.body.contains("href=\"/ui/uploads\""));
    let reports = ui.get("/ui/reports").await;
    assert!(reports.body.contains("Nothing to report yet"));
}

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_session_cookie_secure_behind_tls() {
    let ui = ui();
    let (reply, _, _) = ui.sign_in(&ui.writer, None).await;
    assert_eq!(reply.headers[header::LOCATION], "/ui/reports");
    let session = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("ludex_session="))
        .unwrap();
    assert!(session.contains("; Path=/;"));
    assert!(session.contains("; HttpOnly"));
    assert!(session.contains("; SameSite=Strict"));
    assert!(!session.contains("Secure"), "plain HTTP: {session}");

    // Over TLS the name has the __Host- prefix: browsers keep it only if it is Secure, for the
    // whole site and from this host alone.
    let (tls, _, _) = ui.sign_in(&ui.writer, Some("https")).await;
    let session = tls
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-ludex_session="))
        .unwrap();
    assert!(session.ends_with("; Secure"), "{session}");
    assert!(
        session.contains("; Path=/;") && !session.contains("Domain"),
        "{session}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_refused_in_the_api_wording() {
    let ui = ui();
    let form = ui.get("/ui/sign-in").await;
    let body = format!(
        "key=not-a-key&next=%2F&sign_in_token={}",
        form.hidden("sign_in_token")
    );
    let reply = ui
        .send(
            Request::post("/ui/sign-in")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, form.cookie("ludex_sign_in"))
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.body.contains("the API key is not valid"));
    assert!(
        !reply
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("ludex_session="))
    );
}

#[tokio::test]
async fn form_posts_without_their_csrf_token_are_forbidden() {
    let ui = ui();
    // Sign-in without the double-submit token (a cross-site post).
    let reply = ui
        .send(
            Request::post("/ui/sign-in")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("key={}&next=%2F", ui.writer)))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("ludex_session="))
    );

    // Sign-out without the session's token leaves the session open.
    let (_, cookie, csrf) = ui.sign_in(&ui.writer, None).await;
    let sign_out = |body: String| {
        Request::post("/ui/sign-out")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, &cookie)
            .body(Body::from(body))
            .unwrap()
    };
    let refused = ui.send(sign_out(String::new())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let still = ui.get_signed_in("/", &cookie).await;
    assert!(still.body.contains("Sign out"));

    // Signing out clears the browser's cookie (what a stateless session can do; see
    // a_session_lives_in_its_cookie_across_instances_and_restarts for a copied cookie).
    let done = ui.send(sign_out(format!("csrf_token={csrf}"))).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(
        done.set_cookies()
            .iter()
            .any(|c| c.starts_with("ludex_session=;") && c.contains("Max-Age=0"))
    );
}

/// A router over the same catalog and keys as `ui`, with its own configuration sealed by
/// `secret`: another instance, or the same one after a restart.
fn instance(ui: &Ui, secret: &str) -> Ui {
    let config = ApiConfig {
        sessions: Arc::new(SessionKeys::given(SessionKey::from_secret(secret).unwrap())),
        ..ApiConfig::default()
    };
    let mut app = ui.0.clone();
    app.state = AppState {
        config: Arc::new(config),
        ..ui.state.clone()
    };
    app.router = ludex::api::router(app.state.clone());
    Ui(app)
}

#[tokio::test]
async fn a_session_lives_in_its_cookie_across_instances_and_restarts() {
    const SECRET: &str = "a session secret shared by every instance";
    let first = ui();
    let first = instance(&first, SECRET);
    let (_, cookie, csrf) = first.sign_in(&first.writer, None).await;
    let write = |id: &str, cookie: &str| {
        Request::post("/games")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, cookie)
            .header("x-csrf-token", &csrf)
            .body(Body::from(format!(
                r#"{{"id":"{id}","title":"Game {id}"}}"#
            )))
            .unwrap()
    };
    // Whether `cookie` is a session on an instance: its pages offer to sign out.
    let signed_in = async |instance: &Ui, cookie: &str| {
        instance
            .get_signed_in("/", cookie)
            .await
            .body
            .contains("Sign out")
    };
    // No session: the pages are anonymous and a write is refused.
    let assert_signed_out = async |instance: &Ui, cookie: &str, id: &str| {
        assert!(!signed_in(instance, cookie).await);
        let refused = instance.send(write(id, cookie)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    };
    // Another instance with the same secret, as another Lambda instance or `ludex serve`.
    let second = instance(&first, SECRET);
    let created = second.send(write("on-second", &cookie)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // The same secret after a restart: still signed in.
    let restarted = instance(&first, SECRET);
    assert!(signed_in(&restarted, &cookie).await);
    // Another secret reads no session: an instance that does not share it signs you out.
    let stranger = instance(&first, "another secret, at least 32 bytes long");
    assert_signed_out(&stranger, &cookie, "x").await;

    // A cookie altered anywhere is no session: the seal is authenticated.
    let (name, value) = cookie.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
    assert_signed_out(&second, &tampered, "y").await;

    // Signing out clears the browser's cookie, but a copy taken before still works until it
    // expires or its key is revoked: nothing on the server remembers the sign-out (documented
    // in docs/ui.md).
    let signed_out = first
        .send(
            Request::post("/ui/sign-out")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, &cookie)
                .body(Body::from(format!("csrf_token={csrf}")))
                .unwrap(),
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert!(signed_in(&second, &cookie).await);

    // Revoking the key ends every session of it, on every instance, at the next request.
    ludex::keys::KeyFile::new(&first.key_file)
        .revoke("writer")
        .unwrap();
    for instance in [&first, &second, &restarted] {
        assert_signed_out(instance, &cookie, "z").await;
    }
}

#[tokio::test]
async fn the_api_accepts_a_session_cookie_only_with_its_csrf_header() {
    let ui = ui();
    let (_, cookie, csrf) = ui.sign_in(&ui.writer, None).await;
    let create = |csrf: Option<&str>, id: &str| {
        let mut request = Request::post("/games")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &cookie);
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        request
            .body(Body::from(format!(
                r#"{{"id":"{id}","title":"Game {id}"}}"#
            )))
            .unwrap()
    };
    let refused = ui.send(create(None, "a")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("CSRF"));
    let wrong = ui.send(create(Some("guess"), "a")).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let created = ui.send(create(Some(&csrf), "a")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    // Bearer keys work as before, with or without a cookie.
    let bearer = ui
        .send(
            Request::post("/games")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", ui.writer))
                .body(Body::from(r#"{"id":"b","title":"Game b"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(bearer.status, StatusCode::CREATED);
    let nothing = ui
        .send(
            Request::post("/games")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"id":"c","title":"Game c"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(nothing.status, StatusCode::UNAUTHORIZED);
    let stale = ui
        .send(
            Request::post("/games")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::COOKIE, "ludex_session=expired")
                .header("x-csrf-token", &csrf)
                .body(Body::from(r#"{"id":"d","title":"Game d"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_read_only_session_may_not_write() {
    let ui = ui();
    let (_, cookie, csrf) = ui.sign_in(&ui.reader, None).await;
    let reply = ui
        .send(
            Request::post("/games")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::COOKIE, &cookie)
                .header("x-csrf-token", &csrf)
                .body(Body::from(r#"{"title":"Nope"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let form = ui.get_signed_in("/ui/games/new", &cookie).await;
    assert!(form.body.contains("may only read"));
    assert!(!form.body.contains("id=\"game-form\""));
}

#[tokio::test]
async fn where_reads_need_a_key_pages_send_you_to_sign_in() {
    let ui = Ui(app_with(ApiConfig {
        reads_require_key: true,
        ..ApiConfig::default()
    }));
    let reply = ui.get("/ui/reports?x=1").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.headers[header::LOCATION],
        "/ui/sign-in?next=%2Fui%2Freports%3Fx%3D1"
    );
    let (_, cookie, _) = ui.sign_in(&ui.reader, None).await;
    let signed_in = ui.get_signed_in("/ui/reports", &cookie).await;
    assert_eq!(signed_in.status, StatusCode::OK);
    let api = ui.get_signed_in("/games", &cookie).await;
    assert_eq!(
        api.status,
        StatusCode::OK,
        "the API reads with the session too"
    );
}

#[tokio::test]
async fn reports_chart_and_tabulate_the_catalog_with_csv_downloads() {
    let ui = ui();
    ui.add(serde_json::json!({"id": "a", "title": "A", "platforms": ["PC", "Switch"], "genres": ["RPG"], "release_date": 2017, "rating": 9.5}))
        .await;
    ui.add(serde_json::json!({"id": "b", "title": "B", "platforms": ["pc"], "genres": ["Action, Adventure"], "release_date": "2017-03", "rating": 10}))
        .await;
    ui.add(serde_json::json!({"id": "c", "title": "C"})).await;

    let reply = ui.get("/ui/reports").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.matches("<svg class=\"chart\"").count(), 4);
    assert!(
        reply
            .body
            .contains("<th scope=\"row\">PC</th><td class=\"num\">2</td>"),
        "platforms ignore case"
    );
    assert!(
        reply
            .body
            .contains("<th scope=\"row\">2017</th><td class=\"num\">2</td>")
    );
    assert!(
        reply
            .body
            .contains("<th scope=\"row\">9–10</th><td class=\"num\">2</td>")
    );
    assert!(
        reply
            .body
            .contains("<th scope=\"row\">Not rated</th><td class=\"num\">1</td>")
    );

    let csv = ui.get("/ui/reports/genres.csv").await;
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        csv.body,
        "genre,games\r\n\"Action, Adventure\",1\r\nRPG,1\r\n"
    );
    assert_eq!(
        ui.get("/ui/reports/nothing.csv").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_game_page_shows_its_details_and_a_missing_game_is_a_404_page() {
    let ui = ui();
    ui.add(serde_json::json!({"id": "hades", "title": "Hades", "developer": "Supergiant", "raitng": 9})).await;
    let reply = ui.get("/ui/games/hades").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("<h1>Hades</h1>"));
    assert!(reply.body.contains("Supergiant"));
    assert!(reply.body.contains("No cover yet"));
    assert!(
        reply.body.contains("&quot;raitng&quot;: 9"),
        "unknown fields are shown"
    );
    assert!(reply.body.contains("Sign in"), "writing needs signing in");
    assert!(
        reply.body.contains("<strong>Version 1</strong>"),
        "its history"
    );
    // A hand-edited query string still shows the page (its history from the newest version).
    for query in [
        "?history_before=abc",
        "?restored=-1",
        "?history_before=99999999999999999999",
    ] {
        let reply = ui.get(&format!("/ui/games/hades{query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
        assert!(reply.body.contains("<strong>Version 1</strong>"), "{query}");
    }
    let missing = ui.get("/ui/games/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("There is no game with the id nope"));
}

#[tokio::test]
async fn the_assets_are_served_from_the_binary() {
    let ui = ui();
    let css = ui.get("/ui/assets/ui.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    let js = ui.get("/ui/assets/ui.js").await;
    assert_eq!(
        js.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(
        !js.body.contains("http://") && !js.body.contains("https://"),
        "nothing is loaded from elsewhere"
    );
}

#[tokio::test]
async fn the_catalog_is_an_editable_grid_only_for_sessions_that_may_write() {
    let ui = ui();
    ui.add(json!({"id": "quote", "title": "Say \"hi\" <b>", "platforms": ["PC"]}))
        .await;
    let visitor = ui.get("/").await;
    assert!(
        visitor.body.contains("<table class=\"games\""),
        "{}",
        visitor.body
    );
    assert!(!visitor.body.contains("role=\"grid\""));
    assert!(!visitor.body.contains("data-game="));
    let (_, reader, _) = ui.sign_in(&ui.reader, None).await;
    let read_only = ui.get_signed_in("/", &reader).await;
    assert!(!read_only.body.contains("role=\"grid\""));
    let (_, writer, _) = ui.sign_in(&ui.writer, None).await;
    let grid = ui.get_signed_in("/", &writer).await;
    assert!(grid.body.contains("role=\"grid\""));
    assert!(
        grid.body
            .contains("data-field=\"platforms\" data-kind=\"list\"")
    );
    assert!(grid.body.contains("<tr class=\"new-row\" data-new>"));
    // The row's document is an attribute, escaped: it parses back to the stored game.
    let marker = "data-game=\"";
    let start = grid.body.find(marker).unwrap() + marker.len();
    let attr = &grid.body[start..start + grid.body[start..].find('"').unwrap()];
    let unescaped = attr
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let game: serde_json::Value = serde_json::from_str(&unescaped).unwrap();
    assert_eq!(game["title"], "Say \"hi\" <b>");
    assert_eq!(game["version"], 1);
    let suggestions = ui.get_signed_in("/ui/suggestions", &writer).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&suggestions.body).unwrap()["platforms"],
        json!(["PC"])
    );
}

#[tokio::test]
async fn pages_show_covers_in_their_sizes_with_2x_and_never_the_original() {
    let ui = ui();
    let key = "covers/shared/hades.png";
    ui.add(json!({"id": "hades", "title": "Hades", "cover_image": key}))
        .await;
    ui.add(json!({"id": "celeste", "title": "Celeste"})).await;
    let version = ludex::covers::version_of(
        &ludex_domain::GameId::parse("hades").unwrap(),
        &ludex_domain::fields::CoverKey::parse(key).unwrap(),
    );
    for (path, size) in [("/", "thumb"), ("/ui/games/hades", "small")] {
        let body = ui.get(path).await.body;
        let one = format!("/games/hades/cover?size={size}&amp;v={version}");
        let two = format!("/games/hades/cover?size={size}&amp;dpr=2&amp;v={version}");
        assert!(body.contains(&format!("src=\"{one}\"")), "{path}: {body}");
        assert!(
            body.contains(&format!("srcset=\"{one} 1x, {two} 2x\"")),
            "{path}"
        );
        assert!(
            !body.contains("/games/hades/cover\""),
            "{path}: never the original"
        );
        assert!(!body.contains("/games/celeste/cover"), "{path}");
    }
}
