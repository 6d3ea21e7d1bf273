//! The HTTP gateway for CPaaS providers.
//!
//! Inbound (`POST /v1/sms/inbound`, `POST /v1/sms/receipts`, served by the API):
//! the provider signs each request with a shared secret:
//! `X-Maskline-Timestamp: <unix seconds>` and
//! `X-Maskline-Signature: <hex HMAC-SHA256(secret, "<timestamp>." + body)>`
//! (a `sha256=` prefix is accepted). A timestamp further than
//! `replay_window_s` from now, or a signature that does not match (compared in
//! constant time), is `401`. Bodies are JSON or form-encoded with `from`, `to`,
//! `text` and `id` (the provider's message id; receipts: `id` and `status`).
//!
//! Outbound ([`HttpCarrier`]): each text is one JSON `POST` to `outbound_url`
//! (`{"id","from","to","text"}`, optional bearer token); 2xx is accepted (a JSON
//! `id` in the answer is kept for receipts), 5xx, 429 and timeouts are transient
//! (the worker retries with back-off), other answers are permanent failures.
//! Plain `http://` only: put a TLS proxy in front of an `https://` provider.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use sha2::Sha256;

use super::worker::{Carrier, SendError};
use crate::numbers::E164;

/// Header with the signing time.
pub const TIMESTAMP_HEADER: &str = "x-maskline-timestamp";
/// Header with the signature.
pub const SIGNATURE_HEADER: &str = "x-maskline-signature";

/// Why a signed request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No inbound secret configured.
    #[error("the HTTP gateway takes no inbound texts (no sms.http.inbound_secret)")]
    Disabled,
    /// Header missing or malformed.
    #[error("missing or malformed signature headers")]
    Missing,
    /// Timestamp outside the replay window.
    #[error("timestamp outside the replay window")]
    Stale,
    /// Signature does not match.
    #[error("signature does not match")]
    Mismatch,
}

/// The HMAC of `"<timestamp>.<body>"` under `secret`, hex.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks the signature headers of a request with `body`, at `now_s`.
pub fn verify(
    secret: &[u8],
    window_s: u64,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_s: i64,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::Disabled);
    }
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let t: i64 = ts.trim().parse().map_err(|_| SignatureError::Missing)?;
    if now_s.abs_diff(t) > window_s {
        return Err(SignatureError::Stale);
    }
    let sig = sig.trim();
    let sig = sig.strip_prefix("sha256=").unwrap_or(sig);
    let given = hex::decode(sig).map_err(|_| SignatureError::Mismatch)?;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Err(SignatureError::Mismatch);
    };
    mac.update(ts.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// An inbound text as the provider posts it.
// The API's `SmsInbound`: these doc comments are its OpenAPI descriptions.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SmsInbound)]
pub struct InboundForm {
    /// Sender, E.164.
    pub from: String,
    /// The virtual number, E.164.
    pub to: String,
    /// Body.
    pub text: String,
    /// Provider message id (duplicates are taken once).
    #[serde(default)]
    #[schema(nullable = false, max_length = 128)]
    pub id: Option<String>,
}

/// A delivery receipt as the provider posts it.
// The API's `SmsReceipt`: these doc comments are its OpenAPI descriptions.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SmsReceipt)]
pub struct ReceiptForm {
    /// The provider id from our outbound POST's answer.
    pub id: String,
    /// `delivered`, or anything else for a failure.
    pub status: String,
    /// Provider's error text.
    #[serde(default)]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// Parses a JSON or form-encoded body (by content type).
pub fn parse_body<T: serde::de::DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, String> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = url_decode_pairs(body);
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
fn url_decode_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn dec(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    match std::str::from_utf8(&s[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut it = p.splitn(2, |&b| b == b'=');
            let k = dec(it.next().unwrap_or(&[]));
            let v = dec(it.next().unwrap_or(&[]));
            (k, v)
        })
        .collect()
}

/// Outbound to the provider.
pub struct HttpCarrier {
    client: Client<HttpConnector, Full<Bytes>>,
    url: hyper::Uri,
    token: String,
    timeout: Duration,
}

impl std::fmt::Debug for HttpCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCarrier")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl HttpCarrier {
    /// A carrier posting to `url`.
    pub fn new(url: &str, token: &str, timeout: Duration) -> Result<Self, String> {
        let url: hyper::Uri = url
            .parse()
            .map_err(|e| format!("sms.http.outbound_url: {e}"))?;
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        Ok(Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(conn),
            url,
            token: token.to_owned(),
            timeout,
        })
    }
}

#[async_trait]
impl Carrier for HttpCarrier {
    async fn send(
        &self,
        job_id: &str,
        from: &E164,
        to: &E164,
        body: &str,
    ) -> Result<Vec<String>, SendError> {
        let payload = serde_json::json!({
            "id": job_id,
            "from": from.expose(),
            "to": to.expose(),
            "text": body,
        });
        let mut req = hyper::Request::post(self.url.clone())
            .header("content-type", "application/json")
            .header("idempotency-key", job_id);
        if !self.token.is_empty() {
            req = req.header("authorization", format!("Bearer {}", self.token));
        }
        let req = req
            .body(Full::new(Bytes::from(payload.to_string())))
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => return Err(SendError::Transient("provider timed out".into())),
            Ok(Err(e)) => return Err(SendError::Transient(format!("provider unreachable: {e}"))),
            Ok(Ok(r)) => r,
        };
        if status.is_success() {
            let id = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from));
            return Ok(id.into_iter().collect());
        }
        let why = format!("provider answered {}", status.as_u16());
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(SendError::Transient(why))
        } else {
            Err(SendError::Permanent(why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_check_secret_window_and_body() {
        let secret = b"0123456789abcdef";
        let body = br#"{"from":"+8613800138000"}"#;
        let sig = sign(secret, "1000", body);
        assert_eq!(
            verify(secret, 300, Some("1000"), Some(&sig), body, 1100),
            Ok(())
        );
        let prefixed = format!("sha256={sig}");
        assert_eq!(
            verify(secret, 300, Some("1000"), Some(&prefixed), body, 1000),
            Ok(())
        );
        assert_eq!(
            verify(secret, 300, Some("1000"), Some(&sig), body, 1400),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(secret, 300, Some("1000"), Some(&sig), b"{}", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"other-secret-0000",
                300,
                Some("1000"),
                Some(&sig),
                body,
                1000
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(secret, 300, None, Some(&sig), body, 1000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(b"", 300, Some("1000"), Some(&sig), body, 1000),
            Err(SignatureError::Disabled)
        );
    }

    #[test]
    fn form_and_json_bodies_parse() {
        let f: InboundForm = parse_body(
            Some("application/x-www-form-urlencoded"),
            b"from=%2B8613800138000&to=%2B8617000000001&text=hi+there+%E5%BF%AB&id=p1",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.from, "+8613800138000");
        assert_eq!(f.text, "hi there 快");
        assert_eq!(f.id.as_deref(), Some("p1"));
        let j: InboundForm = parse_body(
            Some("application/json"),
            br#"{"from":"a","to":"b","text":"c"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(j.id, None);
    }
}
