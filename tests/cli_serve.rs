//! End-to-end tests of `maskline serve`: the real binary on port 0 with the memory
//! store, a real Redis, and TLS, driven over HTTP; start-up failures name the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod common;

use cli_support::{json, maskline, redis_env, text, write, Relay};

#[test]
fn serve_with_memory_store_runs_a_binding_lifecycle_over_http() {
    let relay = Relay::start(&[("MASKLINE_LOG_LEVEL", "warn")]);
    assert_eq!(relay.scheme, "http");
    let key = relay.admin_key();
    assert!(key.starts_with("mk_"));
    // The key is printed exactly once, with a warning.
    let banner = relay.banner.join("\n");
    assert_eq!(banner.matches("mk_").count(), 1, "{banner}");
    assert!(banner.contains("WARNING"), "{banner}");

    // Without the key: 401.
    let (s, _) = relay.http("GET", "/v1/pools/demo", "mk_wrong", None);
    assert_eq!(s, 401);
    // The demo pool exists.
    let (s, body) = relay.http("GET", "/v1/pools/demo", &key, None);
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body)["numbers"], 8, "{body}");

    // A pool of our own with three numbers.
    let (s, body) = relay.http(
        "POST",
        "/v1/pools",
        &key,
        Some(r#"{"name":"e2e","country":86,"grace_s":3600,"cooling_s":60,"max_bindings_per_number":10}"#),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = relay.http(
        "POST",
        "/v1/pools/e2e/numbers",
        &key,
        Some(r#"{"numbers":[{"number":"+8617100000001","area":"sh"},{"number":"+8617100000002","area":"bj"},{"number":"not-a-number"}]}"#),
    );
    assert_eq!(s, 200, "{body}");
    let imported = json(&body);
    assert_eq!(imported["added"], 2, "{body}");
    assert_eq!(imported["errors"].as_array().unwrap().len(), 1, "{body}");

    // A binding, preferring area bj.
    let create = r#"{"pool":"e2e","shipment_id":"SF-E2E-1","party_a":"+8613800138000","party_b":"+8613900139000","ttl_s":600,"area":"bj"}"#;
    let (s, body) = relay.http("POST", "/v1/bindings", &key, Some(create));
    assert_eq!(s, 201, "{body}");
    let b = json(&body);
    assert_eq!(b["pool"], "e2e");
    assert_eq!(b["shipment_id"], "SF-E2E-1");
    assert_eq!(b["number"], "+8617100000002");
    assert_eq!(b["party_a"], "+86 138****8000");
    assert_eq!(b["party_b"], "+86 139****9000");
    assert_eq!(b["state"], "active");
    assert!(!body.contains("13800138000"), "{body}");
    let id = b["id"].as_str().unwrap().to_string();

    // Idempotent retry: 200, same binding.
    let (s, again) = relay.http("POST", "/v1/bindings", &key, Some(create));
    assert_eq!(s, 200, "{again}");
    assert_eq!(json(&again)["id"], b["id"]);

    // The route view: a call from A to X reaches B (masked).
    let (s, body) = relay.http(
        "GET",
        "/v1/pools/e2e/numbers/+8617100000002/route?caller=%2B8613800138000",
        &key,
        None,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body)["callee"], "+86 139****9000", "{body}");
    // A stranger routes nowhere.
    let (s, _) = relay.http(
        "GET",
        "/v1/pools/e2e/numbers/+8617100000002/route?caller=%2B8613700137000",
        &key,
        None,
    );
    assert_eq!(s, 404);

    // Delivered.
    let (s, body) = relay.http("POST", &format!("/v1/bindings/{id}/delivered"), &key, None);
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body)["state"], "delivered", "{body}");

    // Metrics are served from the recorder telemetry installed.
    let (s, body) = relay.http("GET", "/metrics", "", None);
    assert_eq!(s, 200);
    assert!(body.contains("maskline_"), "{body}");

    let stderr = relay.stderr.clone();
    let status = relay.terminate();
    assert!(status.success(), "exit {status:?}");
    let logs = stderr.lock().unwrap().clone();
    assert!(logs.contains("NOT durable"), "{logs}");
    assert!(
        !logs.contains("13800138000"),
        "a number leaked into logs: {logs}"
    );
}

#[test]
fn serve_refuses_redis_without_secrets_before_binding() {
    let out = maskline()
        .arg("serve")
        .env("MASKLINE_STORE_BACKEND", "redis")
        .env("MASKLINE_API_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("secrets.hmac_key: required"), "{stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
}

#[test]
fn serve_reports_an_unusable_listen_address() {
    // Occupy a port, then ask the relay to listen on it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = maskline()
        .arg("serve")
        .env("MASKLINE_API_LISTEN", &addr)
        .env("MASKLINE_LOG_LEVEL", "error")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("api.listen"), "{stderr}");
    assert!(!stdout.contains("admin key"), "{stdout}");
}

#[test]
fn serve_with_redis_store_keeps_bindings_across_restarts() {
    let url = common::redis_url();
    let (env, key) = redis_env(&url);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let pool = format!("cli{}", rand::random::<u32>());
    let x = format!("+86172{:08}", rand::random::<u32>() % 100_000_000);
    let a = common::random_e164("+86138");
    let b = common::random_e164("+86139");

    let relay = Relay::start(&env_refs);
    // No one-time key with Redis: the configured key is the only way in.
    assert!(
        !relay.banner.join("\n").contains("admin key"),
        "{:?}",
        relay.banner
    );
    let (s, body) = relay.http(
        "POST",
        "/v1/pools",
        &key,
        Some(&format!(
            r#"{{"name":"{pool}","country":86,"grace_s":3600,"cooling_s":60,"max_bindings_per_number":5}}"#
        )),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = relay.http(
        "POST",
        &format!("/v1/pools/{pool}/numbers"),
        &key,
        Some(&format!(r#"{{"numbers":[{{"number":"{x}"}}]}}"#)),
    );
    assert_eq!(s, 200, "{body}");
    let create = format!(
        r#"{{"pool":"{pool}","shipment_id":"SF-R-1","party_a":"{a}","party_b":"{b}","ttl_s":600}}"#
    );
    let (s, body) = relay.http("POST", "/v1/bindings", &key, Some(&create));
    assert_eq!(s, 201, "{body}");
    let created = json(&body);
    assert_eq!(created["number"], x.as_str());
    let (s, body) = relay.http("GET", "/readyz", "", None);
    assert_eq!(s, 200, "{body}");
    assert!(relay.terminate().success());

    // A new relay process with the same secrets finds and routes the binding.
    let relay = Relay::start(&env_refs);
    let (s, body) = relay.http(
        "GET",
        &format!("/v1/bindings/{}", created["id"].as_str().unwrap()),
        &key,
        None,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body)["number"], x.as_str());
    let (s, body) = relay.http(
        "GET",
        &format!(
            "/v1/pools/{pool}/numbers/{x}/route?caller={}",
            a.replace('+', "%2B")
        ),
        &key,
        None,
    );
    assert_eq!(s, 200, "{body}");
    let callee = json(&body)["callee"].as_str().unwrap().to_string();
    assert!(
        callee.ends_with(&b[b.len() - 4..]) && callee.contains('*'),
        "{callee}"
    );
    assert!(relay.terminate().success());
}

#[test]
fn serve_starts_before_its_redis_answers_503_then_serves_once_redis_is_up() {
    // A loopback port nobody listens on yet (a cold start: the relay comes up first).
    let port = common::later_port();
    let (env, key) = redis_env(&format!("redis://127.0.0.1:{port}/"));
    let mut env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env_refs.retain(|(k, _)| *k != "MASKLINE_LOG_LEVEL");
    env_refs.push(("MASKLINE_LOG_LEVEL", "info"));
    let relay = Relay::start(&env_refs);
    let (s, body) = relay.http("GET", "/readyz", "", None);
    assert_eq!(s, 503, "{body}");
    assert_eq!(json(&body)["error"]["code"], "store_unavailable", "{body}");
    let (s, body) = relay.http("GET", "/v1/pools", &key, None);
    assert_eq!(s, 503, "{body}");
    assert_eq!(relay.http("GET", "/healthz", "", None).0, 200);
    let logs = relay.stderr.lock().unwrap().clone();
    assert!(logs.contains("waiting for Redis"), "{logs}");

    let _redis = common::OwnRedis::start_on(port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (s, body) = relay.http("GET", "/readyz", "", None);
        if s == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (s, body) = relay.http("GET", "/v1/pools", &key, None);
    assert_eq!(s, 200, "{body}");
    // The background retry (with back-off) notices too, and says so.
    while !relay.stderr.lock().unwrap().contains("Redis answers") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            relay.stderr.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(relay.terminate().success());

    // A config error still fails at once, before anything listens.
    let (env, _) = redis_env("redis://127.0.0.1:notaport/");
    let mut cmd = maskline();
    cmd.arg("serve").env("MASKLINE_API_LISTEN", "127.0.0.1:0");
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("store.redis_url"), "{stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
}

#[test]
fn serve_with_tls_announces_https_and_refuses_a_bad_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = write(dir.path(), "cert.pem", &ck.cert.pem());
    let key = write(dir.path(), "key.pem", &ck.signing_key.serialize_pem());
    let relay = Relay::start(&[
        ("MASKLINE_API_TLS_CERT", cert.to_str().unwrap()),
        ("MASKLINE_API_TLS_KEY", key.to_str().unwrap()),
        ("MASKLINE_LOG_LEVEL", "warn"),
    ]);
    assert_eq!(relay.scheme, "https");
    assert!(relay.terminate().success());

    // A key file that is not a PEM key: refused before anything listens.
    let bad = write(dir.path(), "bad.pem", "not a key");
    let out = maskline()
        .arg("serve")
        .env("MASKLINE_API_LISTEN", "127.0.0.1:0")
        .env("MASKLINE_API_TLS_CERT", &cert)
        .env("MASKLINE_API_TLS_KEY", &bad)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("api.tls"), "{stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
}
