//! Helpers for the API integration tests: start the real server in-process on
//! `127.0.0.1:0` (optionally with TLS) and talk to it over real HTTP/1.1 or HTTP/2
//! with a small hyper client (one connection per request, so every request goes
//! through the accept loop, the TLS handshake and the router).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use maskline::api::{key_hash, Api, ApiError};
use maskline::config::{ApiConfig, ApiKeyConfig, Role, TlsConfig};
use maskline::store::memory::MemoryStore;
use maskline::store::BindingStore;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const APP: &str = "app-key-0123456789";
pub const OPS: &str = "ops-key-0123456789";
pub const ADMIN: &str = "admin-key-0123456789";
pub const AUDITOR: &str = "auditor-key-0123456789";

/// The process-wide metrics recorder (installed once per test binary).
pub fn metrics() -> PrometheusHandle {
    static H: OnceLock<PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        maskline::telemetry::prometheus_builder()
            .unwrap()
            .install_recorder()
            .unwrap()
    })
    .clone()
}

/// An `[api]` config with one key per role.
pub fn config() -> ApiConfig {
    let key = |name: &str, role: Role, k: &str| ApiKeyConfig {
        name: name.into(),
        role,
        hash: key_hash(k),
    };
    ApiConfig {
        listen: "127.0.0.1:0".into(),
        max_body_bytes: 64 * 1024,
        rate_per_key_per_s: 100_000,
        rate_burst: 100_000,
        header_timeout_ms: 10_000,
        body_timeout_ms: 30_000,
        idle_timeout_ms: 60_000,
        max_connections: 10_000,
        tls: None,
        keys: vec![
            key("platform", Role::App, APP),
            key("night-ops", Role::Ops, OPS),
            key("root", Role::Admin, ADMIN),
            key("audit-team", Role::Auditor, AUDITOR),
        ],
        ..ApiConfig::default()
    }
}

/// TLS client settings: trust this certificate, and the name to ask for.
#[derive(Clone)]
pub struct ClientTls {
    pub connector: tokio_rustls::TlsConnector,
    pub name: rustls::pki_types::ServerName<'static>,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: hyper::Version,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The error code of our error shape.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text()))
            .to_owned()
    }
    pub fn field(&self) -> Option<String> {
        self.json()["error"]["field"].as_str().map(str::to_owned)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub tls: Option<ClientTls>,
    /// Speak HTTP/2 (prior knowledge in clear, ALPN over TLS).
    pub h2: bool,
}

impl Client {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let auth = key.map(|k| format!("Bearer {k}"));
        self.send_auth(method, path, auth.as_deref(), content_type, body)
            .await
    }

    /// Like `send`, with a raw `Authorization` header value.
    pub async fn send_auth(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let key = authorization;
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        match &self.tls {
            Some(tls) => {
                let s = tls.connector.connect(tls.name.clone(), tcp).await.unwrap();
                self.exchange(TokioIo::new(s), method, path, key, content_type, body)
                    .await
            }
            None => {
                self.exchange(TokioIo::new(tcp), method, path, key, content_type, body)
                    .await
            }
        }
    }

    async fn exchange<I>(
        &self,
        io: I,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut b = Request::builder().method(method);
        if self.h2 {
            b = b.uri(format!("{scheme}://localhost:{}{path}", self.addr.port()));
        } else {
            b = b
                .uri(path)
                .header("host", format!("localhost:{}", self.addr.port()));
        }
        if let Some(k) = key {
            b = b.header("authorization", k);
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        let req = b.body(Full::new(Bytes::from(body))).unwrap();
        let resp = if self.h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let version = resp.version();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
            version,
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Resp {
        self.send(Method::GET, path, key, None, Vec::new()).await
    }

    pub async fn delete(&self, path: &str, key: Option<&str>) -> Resp {
        self.send(Method::DELETE, path, key, None, Vec::new()).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Resp {
        self.send(
            Method::POST,
            path,
            key,
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn patch(&self, path: &str, key: Option<&str>, body: &Value) -> Resp {
        self.send(
            Method::PATCH,
            path,
            key,
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, key: Option<&str>, ct: &str, body: &str) -> Resp {
        self.send(Method::POST, path, key, Some(ct), body.as_bytes().to_vec())
            .await
    }
}

/// A running server.
pub struct TestServer {
    pub client: Client,
    pub routes: Vec<(&'static str, &'static [&'static str])>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ApiError>>>,
}

impl TestServer {
    /// Asks for shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> Result<(), ApiError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }

    /// Asks for shutdown and returns the serve task (to check it drains).
    pub fn begin_stop(mut self) -> JoinHandle<Result<(), ApiError>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap()
    }
}

/// Starts the API with `cfg` over `store` on a free loopback port.
pub async fn start_with(
    cfg: ApiConfig,
    store: Arc<dyn BindingStore>,
    tls: Option<ClientTls>,
) -> TestServer {
    let api = Api::new(&cfg, store, Some(metrics())).unwrap();
    let routes = api.routes().to_vec();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(api.serve(listener, async {
        let _ = rx.await;
    }));
    TestServer {
        client: Client {
            addr,
            tls,
            h2: false,
        },
        routes,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// Starts the API with the default test config and `records` as the call and SMS
/// record store.
pub async fn start_with_records(
    store: Arc<dyn BindingStore>,
    records: Arc<dyn maskline::events::RecordStore>,
) -> TestServer {
    let api = Api::with_records(&config(), store, records, Some(metrics())).unwrap();
    let routes = api.routes().to_vec();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(api.serve(listener, async {
        let _ = rx.await;
    }));
    TestServer {
        client: Client {
            addr,
            tls: None,
            h2: false,
        },
        routes,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// Starts the API with the default test config.
pub async fn start(store: Arc<dyn BindingStore>) -> TestServer {
    start_with(config(), store, None).await
}

/// A self-signed certificate for `localhost`, written to a temp dir, with the TLS
/// config pointing at it and a client that trusts it.
pub fn self_signed(dir: &std::path::Path) -> (TlsConfig, ClientTls) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = ck.cert.pem();
    let key_pem = ck.signing_key.serialize_pem();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cc = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (
        TlsConfig {
            cert: cert_path.display().to_string(),
            key: key_path.display().to_string(),
        },
        ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(cc)),
            name: rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        },
    )
}

/// Creates a pool (as admin) and imports `numbers` into it; panics on failure.
pub async fn pool_with_numbers(c: &Client, pool: &str, numbers: &[&str]) {
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &serde_json::json!({"name": pool, "country": 86, "cooling_s": 3600}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let entries: Vec<Value> = numbers
        .iter()
        .map(|n| serde_json::json!({"number": n, "area": "sh"}))
        .collect();
    let r = c
        .post(
            &format!("/v1/pools/{pool}/numbers"),
            Some(ADMIN),
            &serde_json::json!({ "numbers": entries }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["added"], numbers.len(), "{}", r.text());
}

/// `+` percent-encoded for paths and queries.
pub fn enc(n: &str) -> String {
    n.replace('+', "%2B")
}

/// A store wrapper that can fail audit writes, be "down", or slow down creations,
/// to test how the API behaves when the store misbehaves.
pub struct FlakyStore {
    pub inner: Arc<dyn BindingStore>,
    pub fail_audit: std::sync::atomic::AtomicBool,
    pub down: std::sync::atomic::AtomicBool,
    pub create_delay_ms: std::sync::atomic::AtomicU64,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn BindingStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_audit: false.into(),
            down: false.into(),
            create_delay_ms: 0.into(),
        })
    }

    fn check(&self) -> Result<(), maskline::store::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(maskline::store::StoreError::Unavailable(
                "test: store down".into(),
            ))
        } else {
            Ok(())
        }
    }
}

mod flaky_impl {
    use super::FlakyStore;
    use maskline::bindings::*;
    use maskline::numbers::E164;
    use maskline::store::{AuditEntry, BindingStore, StoreError};
    use std::sync::atomic::Ordering;

    #[async_trait::async_trait]
    impl BindingStore for FlakyStore {
        async fn create_pool(&self, spec: PoolSpec) -> Result<(), StoreError> {
            self.check()?;
            self.inner.create_pool(spec).await
        }
        async fn get_pool(&self, pool: &str) -> Result<PoolSpec, StoreError> {
            self.check()?;
            self.inner.get_pool(pool).await
        }
        async fn list_pools(&self) -> Result<Vec<PoolSpec>, StoreError> {
            self.check()?;
            self.inner.list_pools().await
        }
        async fn import_numbers(
            &self,
            pool: &str,
            numbers: Vec<NumberSpec>,
        ) -> Result<ImportOutcome, StoreError> {
            self.check()?;
            self.inner.import_numbers(pool, numbers).await
        }
        async fn retire_number(&self, pool: &str, number: &E164) -> Result<(), StoreError> {
            self.check()?;
            self.inner.retire_number(pool, number).await
        }
        async fn pool_of_number(&self, number: &E164) -> Result<Option<String>, StoreError> {
            self.check()?;
            self.inner.pool_of_number(number).await
        }
        async fn pool_stats(&self, pool: &str, now: UnixMs) -> Result<PoolStats, StoreError> {
            self.check()?;
            self.inner.pool_stats(pool, now).await
        }
        async fn set_number_state(
            &self,
            pool: &str,
            number: &E164,
            state: NumberState,
        ) -> Result<NumberState, StoreError> {
            self.check()?;
            self.inner.set_number_state(pool, number, state).await
        }
        async fn pool_overview(&self, pool: &str, now: UnixMs) -> Result<PoolOverview, StoreError> {
            self.check()?;
            self.inner.pool_overview(pool, now).await
        }
        async fn list_numbers(
            &self,
            pool: &str,
            cursor: Option<&str>,
            limit: usize,
        ) -> Result<NumberPage, StoreError> {
            self.check()?;
            self.inner.list_numbers(pool, cursor, limit).await
        }
        async fn create_binding(
            &self,
            req: NewBinding,
            now: UnixMs,
        ) -> Result<Created, StoreError> {
            self.check()?;
            let d = self.create_delay_ms.load(Ordering::SeqCst);
            if d > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(d)).await;
            }
            self.inner.create_binding(req, now).await
        }
        async fn get_binding(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
            self.check()?;
            self.inner.get_binding(id, now).await
        }
        async fn find_by_shipment(
            &self,
            pool: Option<&str>,
            shipment_id: &str,
            now: UnixMs,
        ) -> Result<Vec<Binding>, StoreError> {
            self.check()?;
            self.inner.find_by_shipment(pool, shipment_id, now).await
        }
        async fn update_binding(
            &self,
            id: BindingId,
            patch: BindingPatch,
            now: UnixMs,
        ) -> Result<Binding, StoreError> {
            self.check()?;
            self.inner.update_binding(id, patch, now).await
        }
        async fn mark_delivered(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
            self.check()?;
            self.inner.mark_delivered(id, now).await
        }
        async fn delete_binding(&self, id: BindingId, now: UnixMs) -> Result<(), StoreError> {
            self.check()?;
            self.inner.delete_binding(id, now).await
        }
        async fn route(
            &self,
            pool: &str,
            number: &E164,
            caller: &E164,
            now: UnixMs,
        ) -> Result<Option<Route>, StoreError> {
            self.check()?;
            self.inner.route(pool, number, caller, now).await
        }
        async fn route_extension(
            &self,
            pool: &str,
            number: &E164,
            extension: &str,
            now: UnixMs,
        ) -> Result<maskline::bindings::ExtensionRoute, StoreError> {
            self.check()?;
            self.inner
                .route_extension(pool, number, extension, now)
                .await
        }
        async fn reap(&self, now: UnixMs) -> Result<u64, StoreError> {
            self.check()?;
            self.inner.reap(now).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.check()?;
            self.inner.ping().await
        }
        async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
            self.check()?;
            if self.fail_audit.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("test: audit write failed".into()));
            }
            self.inner.append_audit(entry).await
        }
        async fn read_audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
            self.check()?;
            self.inner.read_audit(limit).await
        }
    }
}

// ---- shared test data and assertions ----

pub fn memory() -> Arc<dyn BindingStore> {
    Arc::new(MemoryStore::new())
}

/// Party numbers used in these tests; none may appear in clear in a non-reveal body.
pub const COURIER: &str = "+8613900001111";
pub const COURIER2: &str = "+8613900002222";
pub const CUSTOMER: &str = "+8613700003333";
pub const X1: &str = "+8617000000001";
pub const X2: &str = "+8617000000002";

pub fn assert_no_party_in_clear(body: &str) {
    for n in [COURIER, COURIER2, CUSTOMER] {
        let digits = n.trim_start_matches('+');
        assert!(!body.contains(digits), "party number in clear in: {body}");
    }
}

pub fn binding_req(pool: &str, shipment: &str) -> Value {
    json!({"pool": pool, "shipment_id": shipment, "party_a": COURIER,
           "party_b": CUSTOMER, "ttl_s": 3600})
}

pub fn err_of(r: &Resp) -> (u16, String, Option<String>) {
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json"),
        "{}",
        r.text()
    );
    (r.status, r.code(), r.field())
}

pub fn e(status: u16, code: &str, field: Option<&str>) -> (u16, String, Option<String>) {
    (status, code.to_owned(), field.map(str::to_owned))
}
