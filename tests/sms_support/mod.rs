//! Helpers for the SMS end-to-end tests: a real local HTTP server standing in for
//! the CPaaS provider, signed webhook posts, a pool + binding made over the API,
//! and polling.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli_support::{json, Relay};

pub const SECRET: &str = "test-secret-0123456789";

/// A provider: answers `POST`s with 200 `{"id":"prov-N"}` (or 503 for the first
/// `fail_first` requests) and keeps every JSON body it accepted.
pub struct Provider {
    pub url: String,
    pub received: Arc<Mutex<Vec<Value>>>,
    pub requests: Arc<AtomicUsize>,
}

impl Provider {
    pub fn start(fail_first: usize) -> Provider {
        Self::listen(TcpListener::bind("127.0.0.1:0").unwrap(), fail_first)
    }

    /// A provider on a given loopback port.
    pub fn start_on(port: u16) -> Provider {
        Self::listen(TcpListener::bind(("127.0.0.1", port)).unwrap(), 0)
    }

    fn listen(listener: TcpListener, fail_first: usize) -> Provider {
        let url = format!("http://{}/sms", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let (rec, reqs) = (received.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (rec, reqs) = (rec.clone(), reqs.clone());
                std::thread::spawn(move || serve_conn(conn, rec, reqs, fail_first));
            }
        });
        Provider {
            url,
            received,
            requests,
        }
    }

    pub fn texts(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` texts arrived; returns them.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.texts();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve_conn(
    conn: std::net::TcpStream,
    rec: Arc<Mutex<Vec<Value>>>,
    reqs: Arc<AtomicUsize>,
    fail_first: usize,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut len = 0usize;
        let mut first = String::new();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let n = reqs.fetch_add(1, Ordering::SeqCst);
        let (status, answer) = if n < fail_first {
            ("503 Service Unavailable", "{}".to_string())
        } else {
            rec.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            ("200 OK", format!(r#"{{"id":"prov-{n}"}}"#))
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// POSTs a signed webhook; returns status and body.
pub fn post_signed(
    relay: &Relay,
    path: &str,
    content_type: &str,
    body: &str,
    ts: i64,
    secret: &str,
) -> (u16, String) {
    let sig = maskline::sms::http::sign(secret.as_bytes(), &ts.to_string(), body.as_bytes());
    let mut s = std::net::TcpStream::connect(&relay.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nX-Maskline-Timestamp: {ts}\r\nX-Maskline-Signature: {sig}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        relay.addr,
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, rest.to_string())
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A text from `from` to `to` through the HTTP gateway.
pub fn text_in(relay: &Relay, from: &str, to: &str, text: &str, id: &str) -> (u16, String) {
    let body = serde_json::json!({"from": from, "to": to, "text": text, "id": id}).to_string();
    post_signed(
        relay,
        "/v1/sms/inbound",
        "application/json",
        &body,
        now_s(),
        SECRET,
    )
}

/// One binding: returns (X, courier, customer, binding id, shipment).
pub struct Bound {
    pub x: String,
    pub courier: String,
    pub customer: String,
    pub binding_id: String,
    pub shipment: String,
}

pub fn bind(relay: &Relay, key: &str) -> Bound {
    let pool = format!("sms{}", rand::random::<u32>());
    let x = format!("+86172{:08}", rand::random::<u32>() % 100_000_000);
    let courier = crate::common::random_e164("+86138");
    let customer = crate::common::random_e164("+86139");
    let shipment = format!("SF{}", rand::random::<u32>());
    let (s, b) = relay.http(
        "POST",
        "/v1/pools",
        key,
        Some(&format!(r#"{{"name":"{pool}","country":86}}"#)),
    );
    assert_eq!(s, 201, "{b}");
    let (s, b) = relay.http(
        "POST",
        &format!("/v1/pools/{pool}/numbers"),
        key,
        Some(&format!(r#"{{"numbers":[{{"number":"{x}"}}]}}"#)),
    );
    assert_eq!(s, 200, "{b}");
    let (s, b) = relay.http(
        "POST",
        "/v1/bindings",
        key,
        Some(&format!(
            r#"{{"pool":"{pool}","shipment_id":"{shipment}","party_a":"{courier}","party_b":"{customer}","ttl_s":3600}}"#
        )),
    );
    assert_eq!(s, 201, "{b}");
    let created = json(&b);
    assert_eq!(created["number"], x.as_str());
    Bound {
        x,
        courier,
        customer,
        binding_id: created["id"].as_str().unwrap().to_string(),
        shipment,
    }
}

/// `GET /v1/messages?...` until `pred` holds for the list (or time runs out).
pub fn messages_until(
    relay: &Relay,
    key: &str,
    query: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, b) = relay.http("GET", &format!("/v1/messages?{query}"), key, None);
        assert_eq!(s, 200, "{b}");
        let list = json(&b)["messages"].as_array().unwrap().clone();
        if pred(&list) || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The environment of an SMS relay on `redis_url` posting to `provider`.
pub fn sms_env(redis_url: &str, provider: &str) -> (Vec<(&'static str, String)>, String) {
    let (mut env, key) = crate::cli_support::redis_env(redis_url);
    env.extend([
        ("MASKLINE_SIP_ENABLED", "false".to_string()),
        ("MASKLINE_SMS_ENABLED", "true".to_string()),
        ("MASKLINE_SMS_CARRIER", "http".to_string()),
        ("MASKLINE_SMS_HTTP_INBOUND_SECRET", SECRET.to_string()),
        ("MASKLINE_SMS_HTTP_OUTBOUND_URL", provider.to_string()),
        ("MASKLINE_SMS_CONSUMER", "relay-a".to_string()),
    ]);
    (env, key)
}

pub fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The node-smpp SMS centre (`tests/smsc/smsc.js`), killed when dropped.
pub struct Smsc {
    pub port: u16,
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    events: std::sync::mpsc::Receiver<Value>,
    /// Every event seen so far.
    pub seen: Vec<Value>,
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the SMSC's pinned npm packages once (`npm ci`); fails with a clear
/// message when node or npm is missing: never a silent skip.
fn smsc_ready() -> std::path::PathBuf {
    static READY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    READY
        .get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smsc");
            let node_ok = std::process::Command::new("node")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                node_ok,
                "the SMPP tests need Node.js: install the Debian packages nodejs and npm \
                 (.ci/run does), then `npm ci` in tests/smsc"
            );
            if !dir.join("node_modules/smpp/package.json").exists() {
                let st = std::process::Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&dir)
                    .status()
                    .expect("the SMPP tests need npm (Debian package npm) to install tests/smsc");
                assert!(st.success(), "`npm ci` in tests/smsc failed");
            }
            dir
        })
        .clone()
}

impl Smsc {
    /// Starts the SMSC on `port` (0: any free port) and waits until it listens.
    pub fn start(port: u16) -> Smsc {
        use std::process::{Command, Stdio};
        let dir = smsc_ready();
        let mut child = Command::new("node")
            .arg(dir.join("smsc.js"))
            .args([
                "--port",
                &port.to_string(),
                "--system-id",
                "maskline",
                "--password",
                "pw",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let mut me = Smsc {
            port: 0,
            child,
            stdin,
            events: rx,
            seen: Vec::new(),
        };
        let ev = me.wait(|e| e["event"] == "listening", Duration::from_secs(20));
        me.port = ev["port"].as_u64().unwrap() as u16;
        me
    }

    /// Waits for the next event matching `pred` (earlier ones are kept in `seen`).
    pub fn wait(&mut self, pred: impl Fn(&Value) -> bool, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("SMSC: no matching event; seen {:?}", self.seen),
            }
        }
    }

    /// Collects `n` events matching `pred` (from `seen` and new ones).
    pub fn collect(
        &mut self,
        n: usize,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got: Vec<Value> = self.seen.iter().filter(|e| pred(e)).cloned().collect();
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .events
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(v) => self.seen.push(v),
                Err(_) if Instant::now() >= deadline => return got,
                Err(_) => {}
            }
        }
    }

    /// Drains events for `d` (to see that nothing more arrives).
    pub fn settle(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(v) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(v);
        }
    }

    pub fn send(&mut self, cmd: Value) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// A `deliver_sm` from `source` to `dest` (E.164 with `+`).
    pub fn deliver(&mut self, tag: &str, source: &str, dest: &str, text: &str, extra: Value) {
        let mut cmd = serde_json::json!({
            "cmd": "deliver", "tag": tag,
            "source": source.trim_start_matches('+'), "dest": dest.trim_start_matches('+'),
            "text": text,
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            cmd[k] = v;
        }
        self.send(cmd);
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay config file with one SMPP link to `port` (2 binds) as the carrier;
/// the HTTP gateway takes inbound texts too.
pub fn smpp_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let p = dir.join("maskline.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[sip]
enabled = false

[sms]
enabled = true
carrier = "smpp:smsc1"

[sms.http]
inbound_secret = "{SECRET}"

[[sms.smpp]]
name = "smsc1"
address = "127.0.0.1:{port}"
system_id = "maskline"
password = "pw"
binds = 2
window = 16
submit_rate = 2000
enquire_link_s = 1
"#
        ),
    )
    .unwrap();
    p
}
