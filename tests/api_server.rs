//! The server around the handlers: TLS, HTTP/2, graceful drain on shutdown, a store
//! outage (503 with Retry-After, then recovery) and Prometheus metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use api_support::*;

#[tokio::test]
async fn tls_serves_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let (tls_cfg, client_tls) = self_signed(dir.path());
    let mut cfg = config();
    cfg.tls = Some(tls_cfg);
    let srv = start_with(cfg, memory(), Some(client_tls)).await;
    let mut c = srv.client.clone();
    pool_with_numbers(&c, "tls", &[X1]).await;
    let r = c
        .post("/v1/bindings", Some(APP), &binding_req("tls", "T1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    c.h2 = true;
    let r = c.get("/healthz", None).await;
    assert_eq!((r.status, r.version), (200, hyper::Version::HTTP_2));
    let r = c.get("/v1/bindings?shipment_id=T1", Some(APP)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["bindings"].as_array().unwrap().len(), 1);
    // A plain-HTTP client gets no answer from the TLS port.
    let plain = Client {
        addr: c.addr,
        tls: None,
        h2: false,
    };
    let res = tokio::time::timeout(Duration::from_secs(5), async move {
        let tcp = tokio::net::TcpStream::connect(plain.addr).await.unwrap();
        let (mut s, conn) = hyper::client::conn::http1::handshake::<
            _,
            http_body_util::Empty<bytes::Bytes>,
        >(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
        tokio::spawn(conn);
        s.send_request(
            hyper::Request::get("/healthz")
                .header("host", "x")
                .body(http_body_util::Empty::new())
                .unwrap(),
        )
        .await
    })
    .await
    .unwrap();
    assert!(
        res.is_err(),
        "plain HTTP must not be answered on the TLS port"
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn cleartext_http2_prior_knowledge_works() {
    let srv = start(memory()).await;
    let mut c = srv.client.clone();
    c.h2 = true;
    let r = c.get("/readyz", None).await;
    assert_eq!((r.status, r.version), (200, hyper::Version::HTTP_2));
    let r = c.get("/v1/nothing", Some(APP)).await;
    assert_eq!(err_of(&r), e(404, "not_found", None));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let flaky = FlakyStore::new(memory());
    let srv = start(flaky.clone()).await;
    let c = srv.client.clone();
    pool_with_numbers(&c, "drain", &[X1]).await;
    flaky.create_delay_ms.store(700, Ordering::SeqCst);
    let c2 = c.clone();
    let in_flight = tokio::spawn(async move {
        c2.post("/v1/bindings", Some(APP), &binding_req("drain", "D1"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let serve = srv.begin_stop();
    let r = in_flight.await.unwrap();
    assert_eq!(
        r.status,
        201,
        "in-flight request must be answered: {}",
        r.text()
    );
    tokio::time::timeout(Duration::from_secs(10), serve)
        .await
        .expect("serve returns after draining")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(c.addr).await.is_err());
}

#[tokio::test]
async fn store_down_is_503_with_retry_after_and_recovers() {
    let flaky = FlakyStore::new(memory());
    let srv = start(flaky.clone()).await;
    let c = &srv.client;
    pool_with_numbers(c, "down", &[X1]).await;
    flaky.down.store(true, Ordering::SeqCst);
    let r = c.get("/readyz", None).await;
    assert_eq!(err_of(&r), e(503, "store_unavailable", None));
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(c.get("/healthz", None).await.status, 200);
    let r = c
        .post("/v1/bindings", Some(APP), &binding_req("down", "W1"))
        .await;
    assert_eq!(err_of(&r), e(503, "store_unavailable", None));
    assert!(
        !r.text().contains("test: store down"),
        "internal detail leaked"
    );
    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(c.get("/readyz", None).await.status, 200);
    let r = c
        .post("/v1/bindings", Some(APP), &binding_req("down", "W1"))
        .await;
    assert_eq!(r.status, 201);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_route_templates_never_numbers() {
    let srv = start(memory()).await;
    let c = &srv.client;
    pool_with_numbers(c, "met", &[X1]).await;
    assert_eq!(
        c.post("/v1/bindings", Some(APP), &binding_req("met", "M1"))
            .await
            .status,
        201
    );
    assert_eq!(
        c.post("/v1/bindings", Some(APP), &binding_req("met", "M1"))
            .await
            .status,
        200
    );
    let _ = c
        .get(
            &format!(
                "/v1/pools/met/numbers/{}/route?caller={}",
                enc(X1),
                enc(COURIER)
            ),
            Some(OPS),
        )
        .await;
    let _ = c
        .get(&format!("/v1/no/such/{}", enc(COURIER)), Some(OPS))
        .await;
    let m = c.get("/metrics", None).await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("maskline_http_requests_total")
                && l.contains("route=\"/v1/bindings\"")
                && l.contains("status=\"201\"")),
        "{text}"
    );
    assert!(text.contains("route=\"/v1/pools/{pool}/numbers/{number}/route\""));
    assert!(text.contains("route=\"unmatched\""));
    assert!(text.contains("maskline_bindings_created_total{outcome=\"new\"}"));
    assert!(text.contains("maskline_bindings_created_total{outcome=\"existing\"}"));
    assert!(text.contains("maskline_http_request_duration_seconds_bucket"));
    assert_no_party_in_clear(&text);
    assert!(
        !text.contains(X1.trim_start_matches('+')),
        "virtual number in a label"
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_promptly() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let srv = start(memory()).await;
    let addr = srv.client.addr;
    // One idle HTTP/1.1 keep-alive connection and one idle HTTP/2 connection.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut h1, h1_conn) =
        hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(tcp))
            .await
            .unwrap();
    let h1_task = tokio::spawn(h1_conn);
    let req = hyper::Request::get("/healthz")
        .header("host", "x")
        .body(Empty::new())
        .unwrap();
    let r = h1.send_request(req).await.unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.into_body().collect().await.unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut h2, h2_conn) = hyper::client::conn::http2::handshake::<_, _, Empty<bytes::Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let h2_task = tokio::spawn(h2_conn);
    let req = hyper::Request::get(format!("http://localhost:{}/healthz", addr.port()))
        .body(Empty::new())
        .unwrap();
    assert_eq!(h2.send_request(req).await.unwrap().status(), 200);

    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), srv.begin_stop())
        .await
        .expect("idle connections must not hold up shutdown")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // The server closed both connections.
    tokio::time::timeout(Duration::from_secs(5), h1_task)
        .await
        .unwrap()
        .unwrap()
        .ok();
    tokio::time::timeout(Duration::from_secs(5), h2_task)
        .await
        .unwrap()
        .unwrap()
        .ok();
    drop((h1, h2));
}

/// Sends `head` and then `body` on a raw connection (as common clients do: the
/// whole body first), and returns what the server answered, or the I/O error.
async fn raw_exchange(
    addr: std::net::SocketAddr,
    head: String,
    body: Vec<u8>,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut rd, mut wr) = tcp.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(&body).await?;
        wr.flush().await?;
        Ok::<_, std::io::Error>(wr)
    });
    // Let the client finish writing before reading, like a client that sends the
    // whole request first.
    let _wr = writer.await.unwrap()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"}") {
                    break;
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Issue 6.8: a body over the limit gets its 413 even from a client that writes the
/// whole body before reading (the server reads and discards it, up to a bound),
/// instead of a connection reset.
#[tokio::test]
async fn an_oversized_body_gets_its_413_not_a_reset() {
    let srv = start(memory()).await;
    let addr = srv.client.addr;
    let size = 32 * 1024 * 1024; // 512 times the test limit (64 KiB)
    let head = format!(
        "POST /v1/bindings HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {APP}\r\n\
         content-type: application/json\r\ncontent-length: {size}\r\n\r\n"
    );
    let answer = raw_exchange(addr, head, vec![b' '; size])
        .await
        .expect("the client must get an answer, not a reset");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    srv.stop().await.unwrap();
}

/// Reads from `s` until EOF or an error (the server closed), giving up after 10 s;
/// returns what was read, or `None` if the connection stayed open.
async fn read_until_closed(s: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    closed
        .ok()
        .map(|()| String::from_utf8_lossy(&out).into_owned())
}

/// Issue 6.2: a client that sends nothing, or stops in the middle of a body, is cut
/// off after the configured timeouts, while other clients are served.
#[tokio::test]
async fn stalled_clients_are_cut_off_while_others_are_served() {
    use tokio::io::AsyncWriteExt;
    let mut cfg = config();
    cfg.header_timeout_ms = 1000;
    cfg.body_timeout_ms = 1000;
    cfg.idle_timeout_ms = 1000;
    let srv = start_with(cfg, memory(), None).await;
    let c = srv.client.clone();
    let addr = c.addr;

    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut half_body = tokio::net::TcpStream::connect(addr).await.unwrap();
    half_body
        .write_all(
            format!(
                "POST /v1/pools HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\n\
                 content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut idle_keep_alive = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle_keep_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();

    // Others are served meanwhile.
    assert_eq!(c.get("/healthz", None).await.status, 200);
    pool_with_numbers(&c, "busy", &[X1]).await;

    let cut = read_until_closed(&mut silent).await;
    assert_eq!(
        cut.as_deref(),
        Some(""),
        "a silent connection must be closed"
    );
    let cut = read_until_closed(&mut half_body)
        .await
        .expect("a stalled body must be cut off");
    assert!(cut.starts_with("HTTP/1.1 408"), "{cut}");
    assert!(cut.contains("request_timeout"), "{cut}");
    let cut = read_until_closed(&mut idle_keep_alive)
        .await
        .expect("an idle keep-alive connection must be closed");
    assert!(cut.starts_with("HTTP/1.1 200"), "{cut}");
    assert_eq!(c.get("/healthz", None).await.status, 200);
    srv.stop().await.unwrap();
}

/// Issue 6.2: beyond `api.max_connections`, new connections are closed at once, and
/// served again once a slot is free.
#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let mut cfg = config();
    cfg.max_connections = 2;
    let srv = start_with(cfg, memory(), None).await;
    let addr = srv.client.addr;
    let hold1 = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _hold2 = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_until_closed(&mut extra).await.as_deref(), Some(""));
    drop(hold1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = srv.client.clone();
        let served = tokio::spawn(async move { c.get("/healthz", None).await.status }).await;
        if matches!(served, Ok(200)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    srv.stop().await.unwrap();
}

/// Issue 6.5: every error a client can get is the JSON error shape with a message
/// written for people: also a garbage request line, an overlong URL, a JSON array
/// or a duplicate key as body, and a pool name that no pool can have.
#[tokio::test]
async fn every_error_is_the_json_shape_with_a_human_message() {
    let srv = start(memory()).await;
    let c = srv.client.clone();
    let addr = c.addr;
    let body_of = |answer: &str| -> serde_json::Value {
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };

    let answer = raw_exchange(addr, "GARBAGE\r\n\r\n".into(), Vec::new())
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(body_of(&answer)["error"]["message"].is_string(), "{answer}");

    let long = format!(
        "GET /v1/pools/{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let answer = raw_exchange(addr, long, Vec::new()).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert_eq!(body_of(&answer)["error"]["code"], "uri_too_long");

    let r = c
        .post_raw("/v1/bindings", Some(APP), "application/json", "[1,2]")
        .await;
    assert_eq!(r.status, 400);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("JSON object") && !msg.contains("struct"),
        "{msg}"
    );

    let r = c
        .post_raw(
            "/v1/bindings",
            Some(APP),
            "application/json",
            r#"{"pool":"p","pool":"q","shipment_id":"S","party_a":"+8613900000001","party_b":"+8613700000001","ttl_s":60}"#,
        )
        .await;
    assert_eq!(err_of(&r), e(400, "invalid_field", Some("pool")));
    assert!(r.text().contains("more than once"), "{}", r.text());

    let r = c.get("/v1/pools/a%00b", Some(ADMIN)).await;
    assert_eq!(err_of(&r), e(400, "invalid_path", Some("pool")));
    assert!(!r.text().contains("\\u0000"), "{}", r.text());
    assert!(!r.text().contains("a\u{0}b"), "{}", r.text());

    // Ordinary requests still work, also over one kept-alive HTTP/2 connection.
    assert_eq!(c.get("/healthz", None).await.status, 200);
    srv.stop().await.unwrap();
}
