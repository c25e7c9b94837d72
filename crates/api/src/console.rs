//! The web console, served by the API from files embedded at build time (see `build.rs`): the
//! operator dashboard at `/dashboard/`, the consumer portal at `/portal/` (one page, which picks
//! its mode from the path) and their assets under `/console/assets/`. Every page carries a
//! strict Content-Security-Policy: scripts and styles from this origin only, no inline script,
//! no eval, API calls to this origin only.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::state::AppState;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

/// The page answered when the API was built without the console.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Octohooks console not built</title></head><body><h1>The console is not built</h1>\
<p>This API binary was built without the web console. Build it with <code>make console</code> \
(or <code>cd console &amp;&amp; npm ci &amp;&amp; npm run build</code>), then build the API again \
(<code>make up</code> and <code>make test</code> do both).</p></body></html>";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(to_dashboard))
        .route("/dashboard", web::get().to(to_dashboard))
        .route("/portal", web::get().to(to_portal))
        .route("/dashboard/", web::get().to(dashboard))
        .route("/portal/", web::get().to(portal))
        .route("/console/assets/{file:.+}", web::get().to(asset));
}

fn find(name: &str) -> Option<&'static [u8]> {
    embedded::ASSETS
        .iter()
        .find(|(path, _)| *path == name)
        .map(|(_, bytes)| *bytes)
}

fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .finish()
}

async fn to_dashboard() -> HttpResponse {
    redirect("/dashboard/")
}

async fn to_portal() -> HttpResponse {
    redirect("/portal/")
}

/// The policy of a console page; `frame_ancestors` says who may embed it.
fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

fn page(frame_ancestors: &str) -> HttpResponse {
    let body = find("index.html").unwrap_or(NOT_BUILT.as_bytes());
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(frame_ancestors)) {
        response.insert_header((header::CONTENT_SECURITY_POLICY, policy));
    }
    response.body(body)
}

async fn dashboard() -> HttpResponse {
    page("'none'")
}

async fn portal(state: web::Data<AppState>) -> HttpResponse {
    page(&state.settings.portal_frame_ancestors)
}

async fn asset(req: HttpRequest) -> HttpResponse {
    let file = req.match_info().get("file").unwrap_or_default();
    let Some(bytes) = find(&format!("assets/{file}")) else {
        return crate::error::problem_response(
            actix_web::http::StatusCode::NOT_FOUND,
            crate::error::ProblemCode::NotFound,
            "no such console asset".into(),
        );
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type(file)))
        // Vite names assets by content hash: a name never changes content.
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(bytes)
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or_default() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" | "map" => "application/json",
        _ => "application/octet-stream",
    }
}
