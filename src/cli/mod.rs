//! Ops commands that talk to a running relay over its HTTP API (`maskline pool ...`,
//! `maskline shipment show`, `maskline audit`).
//!
//! Owns the connection options (`--url`, `--key`, `--config`), the small hyper 1
//! client that sends one request and reads the whole answer, and the error type the
//! commands report. Going through the API (instead of opening the store directly)
//! means the commands work the same with the memory and the Redis store, and every
//! change passes the relay's authentication, roles and audit logs.
//!
//! The API key is held in [`ApiKey`], whose `Debug` is redacted, and is sent as a
//! sensitive header: it is never printed.

pub mod ops;
pub mod pool;
mod table;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use maskline::config::{Config, ConfigError};

/// How long one request may take, connect to last byte (imports can be large).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Options every remote command takes.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// Relay base URL, e.g. http://127.0.0.1:8080 (default: http:// + `[api] listen`
    /// from the config).
    #[arg(long, env = "MASKLINE_URL", global = true, value_name = "URL")]
    pub url: Option<String>,
    /// API key (an `ops` key can read, an `admin` key can also change pools).
    #[arg(
        long,
        env = "MASKLINE_KEY",
        hide_env_values = true,
        global = true,
        value_name = "KEY"
    )]
    pub key: Option<ApiKey>,
    /// Config file used for the default URL (default: $MASKLINE_CONFIG, else
    /// config/maskline.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// An API key from `--key`/`MASKLINE_KEY`; `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl std::str::FromStr for ApiKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(Self(s.trim().to_owned()))
    }
}

/// Why a remote command failed. `Display` is what the user reads on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The relay answered with a non-2xx status and its JSON error.
    #[error("{code}: {message}{} (HTTP {status})", field.as_deref().map(|f| format!(" [field {f}]")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// `error.code`.
        code: String,
        /// `error.message`.
        message: String,
        /// `error.field`, when the server named one.
        field: Option<String>,
    },
    /// The relay answered non-2xx without the JSON error shape.
    #[error("HTTP {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Bad or missing option; the message names it.
    #[error("{0}")]
    Usage(String),
    /// An import was answered, but the relay rejected some entries (listed above).
    #[error("{0} entries rejected; fix them and import the file again (numbers already imported are skipped)")]
    Rejected(usize),
    /// The config file needed for the default URL is unusable.
    #[error("{0} (or pass --url / set MASKLINE_URL)")]
    Config(#[from] ConfigError),
    /// Connecting, sending or reading failed.
    #[error("{url}: {detail}")]
    Transport {
        /// The request URL.
        url: String,
        /// What went wrong, with its causes.
        detail: String,
    },
    /// A local file or stdin could not be read.
    #[error("{what}: {error}")]
    Read {
        /// The file, or `stdin`.
        what: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The relay answered 2xx with something that is not JSON.
    #[error("the relay's answer is not JSON: {0}")]
    BadAnswer(String),
}

/// An error and its causes, `a: b: c`, for transport failures whose top-level
/// message alone ("client error (Connect)") says little.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// A relay the commands can talk to: base URL and key.
pub struct Relay {
    base: String,
    key: ApiKey,
}

/// The relay's 2xx answer.
pub struct Answer {
    /// Body bytes (empty for 204).
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, CliError> {
        serde_json::from_slice(&self.body).map_err(|e| CliError::BadAnswer(e.to_string()))
    }
}

/// Loopback for a wildcard listen address, so `0.0.0.0:8080` is reachable locally.
fn dialable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Checks a base URL: `http://host[:port][/prefix]`, no query.
/// `source` names where the URL came from, for the error.
fn check_base(url: &str, source: &str) -> Result<String, CliError> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("https://") {
        return Err(CliError::Usage(format!(
            "{source} {url}: https is not supported by the maskline CLI; use an http:// URL \
             (e.g. on the relay host or through a TLS-terminating tunnel) with --url"
        )));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(CliError::Usage(format!(
            "{source} {url:?}: expected http://HOST:PORT"
        )));
    };
    if rest.is_empty() || rest.starts_with('/') || url.contains(['?', '#']) {
        return Err(CliError::Usage(format!(
            "{source} {url:?}: expected http://HOST:PORT"
        )));
    }
    url.parse::<Uri>()
        .map_err(|e| CliError::Usage(format!("{source} {url:?}: {e}")))?;
    Ok(url.to_owned())
}

/// Percent-encodes one path segment (keeps unreserved characters and `+`).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads the relay's `{"error":{"code","message","field"}}`, or keeps the raw body.
fn api_error(status: StatusCode, body: &[u8]) -> CliError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let text = |k: &str| {
        err.and_then(|e| e.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match (text("code"), text("message")) {
        (Some(code), Some(message)) => CliError::Api {
            status: status.as_u16(),
            code,
            message,
            field: text("field"),
        },
        _ => CliError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(body).chars().take(300).collect(),
        },
    }
}

impl Relay {
    /// Resolves `--url` (or the config's `[api] listen`) and `--key`.
    pub fn from_options(remote: Remote) -> Result<Self, CliError> {
        let key = remote.key.filter(|k| !k.0.is_empty()).ok_or_else(|| {
            CliError::Usage("no API key: pass --key KEY or set MASKLINE_KEY".into())
        })?;
        let base = match remote.url.filter(|u| !u.trim().is_empty()) {
            Some(url) => check_base(&url, "--url")?,
            None => {
                let cfg = Config::load(remote.config.as_deref())?;
                let addr = dialable(cfg.api.listen_addr()?);
                let scheme = if cfg.api.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                check_base(
                    &format!("{scheme}://{addr}"),
                    "the config's [api] listen/tls gives",
                )?
            }
        };
        Ok(Self { base, key })
    }

    /// Sends one request and returns the 2xx answer; any other status is an error
    /// carrying the relay's error code and message.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Answer, CliError> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url
            .parse()
            .map_err(|e| CliError::Usage(format!("{url}: {e}")))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.key.0)).map_err(|_| {
            CliError::Usage("--key: contains characters not allowed in a header".into())
        })?;
        auth.set_sensitive(true);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, auth);
        let payload = match body {
            Some((media, bytes)) => {
                req = req.header(CONTENT_TYPE, media);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let transport = |detail: String| CliError::Transport {
            url: url.clone(),
            detail,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| transport(format!("starting the async runtime: {e}")))?;
        let (status, bytes) = runtime.block_on(async {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let exchange = async {
                let resp = client
                    .request(req)
                    .await
                    .map_err(|e| transport(chain(&e)))?;
                let status = resp.status();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| transport(format!("reading the answer: {}", chain(&e))))?
                    .to_bytes();
                Ok::<_, CliError>((status, bytes))
            };
            tokio::time::timeout(REQUEST_TIMEOUT, exchange)
                .await
                .map_err(|_| {
                    transport(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))
                })?
        })?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok(Answer { body: bytes })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            check_base("http://127.0.0.1:8080/", "--url").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_base("http://relay.internal/api", "--url").unwrap(),
            "http://relay.internal/api"
        );
        let e = check_base("https://relay:8443", "--url")
            .unwrap_err()
            .to_string();
        assert!(e.contains("https is not supported"), "{e}");
        assert!(check_base("relay:8080", "--url").is_err());
        assert!(check_base("http://", "--url").is_err());
        assert!(check_base("http://h:1/?x=1", "--url").is_err());
    }

    #[test]
    fn wildcard_listen_dials_loopback() {
        assert_eq!(
            dialable("0.0.0.0:8080".parse().unwrap()).to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(dialable("[::]:9".parse().unwrap()).to_string(), "[::1]:9");
        assert_eq!(
            dialable("10.0.0.5:80".parse().unwrap()).to_string(),
            "10.0.0.5:80"
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("+8613800000001"), "+8613800000001");
        assert_eq!(segment("+86 138/0"), "+86%20138%2F0");
        assert_eq!(segment("p?o#l"), "p%3Fo%23l");
    }

    #[test]
    fn server_errors_keep_code_message_and_field() {
        let e = api_error(
            StatusCode::UNAUTHORIZED,
            br#"{"error":{"code":"unauthorized","message":"invalid API key"}}"#,
        );
        assert_eq!(e.to_string(), "unauthorized: invalid API key (HTTP 401)");
        let e = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"code":"invalid_field","message":"country: 1 to 999","field":"country"}}"#,
        );
        assert_eq!(
            e.to_string(),
            "invalid_field: country: 1 to 999 [field country] (HTTP 400)"
        );
        let e = api_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(e.to_string(), "HTTP 502: upstream down");
    }

    #[test]
    fn the_key_is_never_in_debug_output() {
        let key: ApiKey = "mk_secret".parse().unwrap();
        assert!(!format!("{key:?}").contains("mk_secret"));
    }
}
