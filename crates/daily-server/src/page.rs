//! The call page: `GET /{room}` answered with HTML (to a browser, which asks for `text/html`)
//! and its assets under `/assets/`. Plain HTML, CSS and JavaScript, embedded in the binary with
//! `include_str!`: no build step, no CDN, works offline. The page speaks the same signalling
//! protocol as the SDK (`docs/signalling.md`), so a person in a browser and a Python bot see
//! each other as two SDK clients do.

use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

const CALL_HTML: &str = include_str!("page/call.html");
const CALL_CSS: &str = include_str!("page/call.css");
const CALL_JS: &str = include_str!("page/call.js");
const RECORDER_JS: &str = include_str!("page/recorder.js");

/// Everything the page loads comes from this server; the WebSocket is same-origin
/// (`'self'` covers `ws:`/`wss:` to the same host in CSP level 3). No inline script or style.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   media-src 'self' blob:; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// True when the client prefers a page to JSON: browsers navigating send
/// `Accept: text/html,...`; HTTP libraries send `*/*` or nothing and keep getting JSON.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|m| m.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("text/html"))
        })
}

fn respond(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// The call page itself (the same for every room: the script reads the room from the path).
pub(crate) fn call_page() -> Response {
    let mut res = respond("text/html; charset=utf-8", CALL_HTML);
    res.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    res
}

/// `GET /assets/{file}`.
pub(crate) fn asset(file: &str) -> Response {
    match file {
        "call.css" => respond("text/css; charset=utf-8", CALL_CSS),
        "call.js" => respond("text/javascript; charset=utf-8", CALL_JS),
        "recorder.js" => respond("text/javascript; charset=utf-8", RECORDER_JS),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_get_html_and_libraries_json() {
        assert!(wants_html(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(wants_html(&accept("TEXT/HTML")));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&accept("application/json")));
        assert!(!wants_html(&accept("text/htmlx")));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn assets_reference_each_other() {
        assert!(CALL_HTML.contains("/assets/call.js") && CALL_HTML.contains("/assets/call.css"));
        assert!(CALL_JS.contains("/assets/recorder.js"));
        assert_eq!(asset("nope").status(), StatusCode::NOT_FOUND);
        assert_eq!(asset("call.js").status(), StatusCode::OK);
    }
}
