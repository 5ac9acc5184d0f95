//! The dashboard: the files `npm run build` writes to `web/dist`, embedded in the
//! binary at compile time (committed, so a clone with only Rust builds it). Served at
//! `/` with an ETag (304 on a match), gzip when the client takes it (compressed once
//! per file, then kept), a year's cache for the content-hashed files under
//! `/assets/`, and `index.html` for every other path, so client routes deep-link.
//! The page itself holds no data: everything it shows comes from `/api/v1` with the
//! session cookie, so serving it needs no credential.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;

#[derive(rust_embed::Embed)]
#[folder = "web/dist/"]
#[allow_missing = true]
struct Dist;

/// What the browser may load and from where: only this origin, no framing.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
    style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const NOT_BUILT: &str = "<!doctype html><title>spectask</title><p>The dashboard was not \
    built into this binary: run <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code> \
    and build spectask again.";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn compressible(path: &str) -> bool {
    matches!(
        path.rsplit('.').next().unwrap_or(""),
        "html" | "js" | "mjs" | "css" | "json" | "map" | "svg" | "txt" | "webmanifest"
    )
}

/// Gzipped files, made on first request.
fn gzipped(path: &str, data: &[u8]) -> Arc<[u8]> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<[u8]>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().expect("gzip cache").get(path) {
        return hit.clone();
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("writing to memory");
    let zipped: Arc<[u8]> = encoder.finish().expect("writing to memory").into();
    cache
        .lock()
        .expect("gzip cache")
        .insert(path.to_string(), zipped.clone());
    zipped
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            parts
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.trim().replace(' ', "") == "q=0")
        })
}

/// Serves a dashboard file, or `index.html` for a client route.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path == "api" || path.starts_with("api/") {
        return ApiError::NotFound("no such route".into()).into_response();
    }
    let last = path.rsplit('/').next().unwrap_or("");
    let (path, file) = match Dist::get(path) {
        Some(file) if !path.is_empty() => (path, file),
        // A missing file is a 404; anything else is a page of the client's router.
        _ if last.contains('.') => {
            return (StatusCode::NOT_FOUND, "no such file").into_response();
        }
        _ => match Dist::get("index.html") {
            Some(file) => ("index.html", file),
            None => {
                return ([(CONTENT_TYPE, "text/html; charset=utf-8")], NOT_BUILT).into_response();
            }
        },
    };
    let gzip = compressible(path) && file.data.len() > 512 && accepts_gzip(&headers);
    let hash: String = file.metadata.sha256_hash()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = format!("\"{hash}{}\"", if gzip { "-gz" } else { "" });
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut out = HeaderMap::new();
    out.insert(
        ETAG,
        HeaderValue::from_str(&etag).expect("hex is a header value"),
    );
    out.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    out.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if path == "index.html" {
        out.insert("content-security-policy", HeaderValue::from_static(CSP));
        out.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        out.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
    let matches = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    if matches {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    if gzip {
        out.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (out, gzipped(path, &file.data).to_vec()).into_response();
    }
    (out, file.data.into_owned()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_unless_refused() {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0.8"));
        assert!(accepts_gzip(&h));
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0, br"));
        assert!(!accepts_gzip(&h));
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert!(compressible("assets/x.css") && !compressible("favicon.png"));
    }
}
