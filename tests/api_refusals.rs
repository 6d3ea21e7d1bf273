//! Refused requests in the log (issue 6.6): a burst of refusals (bad keys, a scan
//! of unknown routes) writes no line per request at INFO, only a periodic summary
//! with counts by status, error code and key name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::*;
use maskline::api::Api;
use maskline::store::memory::MemoryStore;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_burst_of_refusals_is_one_summary_line_at_info() {
    let buf = Buf::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .init();

    let api = Api::new(&config(), Arc::new(MemoryStore::new()), Some(metrics()))
        .unwrap()
        .refusal_summary_every(Duration::from_millis(300));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = Client {
        addr: listener.local_addr().unwrap(),
        tls: None,
        h2: false,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(api.serve(listener, async {
        let _ = rx.await;
    }));

    for _ in 0..30 {
        assert_eq!(c.get("/v1/pools", Some("mk_wrong")).await.status, 401);
    }
    for _ in 0..20 {
        assert_eq!(c.get("/v1/pools", Some(APP)).await.status, 403);
    }
    for _ in 0..10 {
        assert_eq!(c.get("/v1/nothing", Some(APP)).await.status, 404);
    }
    assert_eq!(c.get("/healthz", None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let _ = tx.send(());
    task.await.unwrap().unwrap();

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logs.matches("request refused").count(),
        0,
        "one INFO line per refusal:\n{logs}"
    );
    assert!(
        logs.contains("requests refused since the last summary"),
        "{logs}"
    );
    assert!(logs.contains("401 unauthorized key=-: 30"), "{logs}");
    assert!(logs.contains("403 forbidden key=platform: 20"), "{logs}");
    assert!(logs.contains("404 not_found key=-: 10"), "{logs}");
    assert!(logs.lines().count() < 20, "{logs}");
}
