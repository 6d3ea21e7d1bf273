//! End-to-end tests of the `maskline` binary: `check-config`, `key new`, and
//! `serve` start-up checks, run as a user would run them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn maskline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maskline"));
    // A developer's own MASKLINE_* settings must not leak into the tests.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MASKLINE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn check_config_accepts_the_shipped_file() {
    let out = maskline().arg("check-config").output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("OK: config/maskline.toml"), "{stdout}");
}

#[test]
fn check_config_names_the_bad_field_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.toml",
        "[api]\nlisten = \"127.0.0.1:8080\"\n\n[[api.keys]]\nname = \"x\"\nrole = \"boss\"\nhash = \"sha256:00\"\n",
    );
    let out = maskline()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(!stdout.contains("OK"), "{stdout}");
    assert!(
        stderr.contains("api.keys[0].role: unknown role \"boss\""),
        "{stderr}"
    );

    let typo = write(dir.path(), "typo.toml", "[store]\nbakend = \"redis\"\n");
    let out = maskline()
        .args(["check-config", "--config"])
        .arg(&typo)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("store.bakend: unknown key"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn check_config_reads_maskline_config_and_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "m.toml", "[api]\nlisten = \"127.0.0.1:9\"\n");
    let out = maskline()
        .arg("check-config")
        .env("MASKLINE_CONFIG", &file)
        .env("MASKLINE_API_LISTEN", "127.0.0.1:7777")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("m.toml"), "{stdout}");
    assert!(stdout.contains("listen 127.0.0.1:7777"), "{stdout}");

    let out = maskline()
        .arg("check-config")
        .env("MASKLINE_API_LISTEN", "nowhere")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).1.contains("api.listen:"), "{:?}", text(&out));
}

#[test]
fn key_new_prints_a_key_whose_hash_is_in_the_config_lines() {
    let out = maskline()
        .args(["key", "new", "--role", "auditor", "--name", "audit-1"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let key = stdout
        .lines()
        .find(|l| l.starts_with("mk_"))
        .expect("a key line")
        .trim();
    assert!(key.len() >= 3 + 43, "32 random bytes encoded: {key}");
    let hash_line = stdout
        .lines()
        .find(|l| l.starts_with("hash = "))
        .expect("a hash line");
    let want = format!("hash = \"sha256:{}\"", hex::encode(Sha256::digest(key)));
    assert_eq!(hash_line, want);
    assert!(stdout.contains("[[api.keys]]\nname = \"audit-1\"\nrole = \"auditor\"\n"));

    // The printed lines are a valid config holding the key.
    let toml: String = stdout
        .lines()
        .skip_while(|l| *l != "[[api.keys]]")
        .take(4)
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "k.toml", &toml);
    let out = maskline()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("1 API key(s)"));

    // Two keys are never the same.
    let again = maskline()
        .args(["key", "new", "--role", "auditor"])
        .output()
        .unwrap();
    assert!(!text(&again).0.contains(key));
}

#[test]
fn key_new_rejects_unknown_roles() {
    let out = maskline()
        .args(["key", "new", "--role", "boss"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).1.contains("boss"));
}

#[test]
fn redis_backend_without_secrets_is_refused_naming_the_field() {
    let out = maskline()
        .arg("check-config")
        .env("MASKLINE_STORE_BACKEND", "redis")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("secrets.hmac_key: required"),
        "{:?}",
        text(&out)
    );
}

/// A `maskline serve` child process, killed when dropped.
struct Relay {
    child: std::process::Child,
    /// `host:port` the relay bound.
    addr: String,
    /// `http` or `https`.
    scheme: String,
    /// stdout lines up to and including "listening on ...".
    banner: Vec<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Relay {
    fn start(envs: &[(&str, &str)]) -> Relay {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        let mut cmd = maskline();
        cmd.arg("serve")
            .env("MASKLINE_API_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn maskline serve");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let addr = loop {
            match rx.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(line) => {
                    banner.push(line.clone());
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.to_string();
                    }
                }
                Err(_) => panic!(
                    "no 'listening on' line; stdout so far {banner:?}; stderr {}",
                    stderr.lock().unwrap()
                ),
            }
        };
        // Keep draining stdout so the relay never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        let (scheme, addr) = addr.split_once("://").expect("a URL");
        let (scheme, addr) = (scheme.to_string(), addr.to_string());
        Relay {
            child,
            addr,
            scheme,
            banner,
            stderr,
        }
    }

    fn admin_key(&self) -> String {
        self.banner
            .iter()
            .find_map(|l| l.strip_prefix("admin key: "))
            .expect("an admin key line")
            .to_string()
    }

    /// One HTTP/1.1 request (Connection: close); returns status and body.
    fn http(&self, method: &str, path: &str, key: &str, body: Option<&str>) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP response");
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        (status, body)
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "relay did not stop after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

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

/// Environment for a Redis-backed relay: fresh secrets and one admin key.
fn redis_env(url: &str) -> (Vec<(&'static str, String)>, String) {
    use base64::Engine;
    let b64 = |b: [u8; 32]| base64::engine::general_purpose::STANDARD.encode(b);
    let key = maskline::config::generate_api_key();
    let env = vec![
        ("MASKLINE_STORE_BACKEND", "redis".to_string()),
        ("MASKLINE_STORE_REDIS_URL", url.to_string()),
        ("MASKLINE_SECRETS_HMAC_KEY", b64(rand::random())),
        (
            "MASKLINE_SECRETS_SEAL_KEYS",
            format!("1:{}", b64(rand::random())),
        ),
        (
            "MASKLINE_API_KEYS",
            format!("cli-admin:admin:{}", maskline::config::api_key_hash(&key)),
        ),
        ("MASKLINE_LOG_LEVEL", "warn".to_string()),
    ];
    (env, key)
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
fn serve_names_redis_url_when_redis_is_unreachable() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (env, _) = redis_env(&format!("redis://127.0.0.1:{port}/"));
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
