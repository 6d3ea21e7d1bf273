//! Request bodies and JSON in and out, with every rejection in our error shape.
//!
//! Bodies are read by hand (size-limited) and parsed with `serde_json` through
//! `serde_path_to_error`, instead of axum's `Json` extractor, so the API controls
//! each message: malformed JSON → `invalid_json`; a wrong type, unknown field or
//! missing field → 400 naming the field. Serde's own messages can quote the
//! offending input (which may be a phone number), so they are rewritten here and only
//! the expected type, never the received value, reaches the client.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::HttpError;

/// Most bytes of an oversized body read and thrown away before answering 413, so
/// a client that writes its whole body before reading gets the 413 instead of a
/// connection reset. Larger announced bodies are refused without reading.
pub const DRAIN_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Longest time spent throwing away an oversized body.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the whole body, refusing (413) anything larger than `limit` bytes, whether
/// announced by `Content-Length` or discovered while reading. Before a 413 the rest
/// of the body is read and discarded (up to [`DRAIN_MAX_BYTES`] in all, within
/// [`DRAIN_TIMEOUT`]).
///
/// A body that does not arrive within `timeout` is refused with 408.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, HttpError> {
    tokio::time::timeout(timeout, read_body_inner(headers, body, limit))
        .await
        .unwrap_or_else(|_| Err(HttpError::request_timeout()))
}

async fn read_body_inner(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, HttpError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = announced {
        if len > limit as u64 {
            if len <= DRAIN_MAX_BYTES {
                drain(body, 0).await;
            }
            return Err(HttpError::body_too_large(limit));
        }
    }
    let mut body = body;
    let mut out = bytes::BytesMut::new();
    loop {
        match body.frame().await {
            None => return Ok(out.freeze()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > limit {
                        drain(body, (out.len() + data.len()) as u64).await;
                        return Err(HttpError::body_too_large(limit));
                    }
                    out.extend_from_slice(&data);
                }
            }
            Some(Err(_)) => {
                return Err(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "the request body could not be read",
                ))
            }
        }
    }
}

/// Reads and discards the rest of `body` (`seen` bytes were read already), up to
/// [`DRAIN_MAX_BYTES`] and [`DRAIN_TIMEOUT`].
async fn drain(mut body: Body, seen: u64) {
    let mut seen = seen;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while seen <= DRAIN_MAX_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        seen += data.len() as u64;
                    }
                }
                _ => break,
            }
        }
    })
    .await;
}

/// The media type of the request, lowercased, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let t = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(t)
}

/// Whether a media type is JSON (`application/json` or `application/*+json`).
pub fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Accepts a request whose `Content-Type` is JSON or absent; anything else is 415.
pub fn require_json(headers: &HeaderMap) -> Result<(), HttpError> {
    match media_type(headers) {
        None => Ok(()),
        Some(m) if is_json(&m) => Ok(()),
        Some(_) => Err(HttpError::unsupported_media_type("application/json")),
    }
}

/// Whether a client-supplied name is safe to echo back (a plain identifier).
fn printable_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Text between the first pair of backticks.
fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg.get(start..)?.find('`')?;
    msg.get(start..start + len)
}

/// Joins a serde path (`.` for the root) and a field name.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Turns a serde_json error at `path` into our error, without echoing input values.
fn map_json_error(path: &str, e: &serde_json::Error) -> HttpError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            // serde_json syntax messages describe positions only, never content.
            HttpError::invalid_json(format!("malformed JSON: {e}"))
        }
        Category::Data => {
            let msg = e.to_string();
            if msg.starts_with("missing field") {
                let name = backticked(&msg).unwrap_or("?");
                let field = join(path, name);
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "missing_field",
                    format!("missing field '{field}'"),
                )
                .with_field(field)
            } else if msg.starts_with("duplicate field") {
                let name = backticked(&msg).unwrap_or("?");
                let parent = path
                    .strip_suffix(name)
                    .map(|p| p.strip_suffix('.').unwrap_or(p))
                    .unwrap_or(path);
                let field = join(parent, name);
                HttpError::invalid_field(
                    field.clone(),
                    format!("field '{field}' is given more than once"),
                )
            } else if msg.starts_with("unknown field") {
                // The path may or may not already end in the unknown key.
                let name = backticked(&msg).unwrap_or("?");
                let parent = path
                    .strip_suffix(name)
                    .map(|p| p.strip_suffix('.').unwrap_or(p))
                    .unwrap_or(path);
                let shown = if printable_name(name) {
                    name
                } else {
                    "(unprintable name)"
                };
                let field = join(parent, shown);
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_field",
                    format!("unknown field '{field}'"),
                )
                .with_field(field)
            } else {
                let field = if path.is_empty() || path == "." {
                    "(body)".to_string()
                } else {
                    path.to_string()
                };
                let expected = msg
                    .find(", expected ")
                    .and_then(|i| msg.get(i + 2..))
                    .map(|s| {
                        // Drop serde_json's position suffix.
                        s.split(" at line ").next().unwrap_or(s).to_string()
                    })
                    // Serde names Rust types ("struct CreateBody with 7 elements").
                    .map(|s| {
                        if s.starts_with("expected struct") || s.starts_with("expected a map") {
                            "expected a JSON object".to_string()
                        } else {
                            s
                        }
                    })
                    .unwrap_or_else(|| "a valid value".to_string());
                HttpError::invalid_field(field.clone(), format!("{field}: {expected}"))
            }
        }
    }
}

/// Parses a JSON body into `T`, naming the field at fault on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(HttpError::invalid_json("the request body is empty"));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Well-formed JSON of another kind (array, string, number...) is the wrong
        // shape, not malformed; anything else is malformed.
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => HttpError::invalid_field(
                    "(body)",
                    "the request body must be a JSON object ({...})",
                ),
                Err(e) => map_json_error(".", &e),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| map_json_error(&e.path().to_string(), e.inner()))?;
    de.end().map_err(|e| map_json_error(".", &e))?;
    Ok(v)
}

/// Parses an already decoded JSON value (one entry of a list) into `T`.
pub fn parse_value<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, HttpError> {
    serde_path_to_error::deserialize(v)
        .map_err(|e| map_json_error(&e.path().to_string(), e.inner()))
}

/// Reads an optional field that, when present, must not be `null`: use with
/// `#[serde(default, deserialize_with = "json::non_null")]`. An absent field is
/// `None`; `null` is refused like any other wrong type (400 naming the field), so
/// the OpenAPI document's non-nullable types are what the server enforces.
pub fn non_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A JSON response.
pub fn respond<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut r = (status, bytes).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "response serialization failed");
            HttpError::internal().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        number: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nullless {
        #[serde(default, deserialize_with = "non_null")]
        ttl_s: Option<u64>,
    }

    #[test]
    fn null_is_refused_where_absence_is_allowed() {
        let v: Nullless = parse(b"{}").unwrap();
        assert!(v.ttl_s.is_none());
        let v: Nullless = parse(br#"{"ttl_s":5}"#).unwrap();
        assert_eq!(v.ttl_s, Some(5));
        let e = parse::<Nullless>(br#"{"ttl_s":null}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("ttl_s"))
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        ttl_s: Option<u64>,
        #[serde(default)]
        items: Vec<Inner>,
    }

    fn err(body: &str) -> HttpError {
        parse::<Outer>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        for b in ["{", "not json", "", "{\"name\":\"x\"} trailing"] {
            assert_eq!(err(b).code, "invalid_json", "{b}");
        }
    }

    #[test]
    fn field_errors_name_the_field() {
        let e = err(r#"{"ttl_s":1}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("name"))
        );
        let e = err(r#"{"name":"x","bogus":1}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("bogus"))
        );
        let e = err(r#"{"name":"x","ttl_s":"+8613812345678"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("ttl_s"))
        );
        assert!(!e.message.contains("13812345678"), "{}", e.message);
        let e = err(r#"{"name":"x","items":[{"number":"1"},{}]}"#);
        assert_eq!(e.field.as_deref(), Some("items[1].number"));
        let e = err(r#"{"name":"x","+8613812345678":1}"#);
        assert_eq!(e.code, "unknown_field");
        assert!(!e.message.contains("13812345678"), "{}", e.message);
        let e = err(r#"[1]"#);
        assert_eq!(e.code, "invalid_field");
        assert_eq!(e.message, "the request body must be a JSON object ({...})");
        let e = err(r#"{"name":"x","name":"y"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("name"))
        );
        assert!(e.message.contains("more than once"), "{}", e.message);
        let e = err(r#"{"name":"x","items":[[]]}"#);
        assert_eq!(e.field.as_deref(), Some("items[0]"));
        assert!(!e.message.contains("struct"), "{}", e.message);
    }
}
