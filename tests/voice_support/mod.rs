//! Shared by the voice tests: a `maskline serve` child configured with one trunk,
//! real SIPp processes playing the carrier's calling side and the callee's gateway
//! (scenarios in `tests/sipp/`), and a tiny raw-UDP test UA.
//!
//! Addresses: the relay listens on 127.0.0.1, the caller (SIPp UAC) sends from
//! 127.0.0.2 and the callee's gateway (SIPp UAS) listens on 127.0.0.3, so a test
//! can tell from the bytes which side's address leaked.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[path = "../cli_support/mod.rs"]
mod cli_support;
pub use cli_support::{json, redis_env, Relay};

pub const CALLER_IP: &str = "127.0.0.2";
pub const CALLEE_IP: &str = "127.0.0.3";
pub const COURIER: &str = "+8613800138000";
pub const CUSTOMER: &str = "+8613900139000";

/// A free UDP (and, usually, TCP) port on `ip`.
pub fn free_port(ip: &str) -> u16 {
    loop {
        let u = UdpSocket::bind((ip, 0)).unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

/// Options of the relay under test.
pub struct Opts {
    pub transport: &'static str,
    pub no_answer_timeout_s: u64,
    pub calls_per_min: u32,
    pub sources: &'static str,
    pub unknown_source: &'static str,
    pub extra_env: Vec<(&'static str, String)>,
    /// TOML appended to the config (e.g. `[sip.ivr]` sections).
    pub extra_config: String,
    /// Also listen for SIP over TLS (self-signed certificate for `localhost`).
    pub tls: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            transport: "udp",
            no_answer_timeout_s: 60,
            calls_per_min: 1000,
            sources: "127.0.0.0/8",
            unknown_source: "drop",
            extra_env: Vec::new(),
            extra_config: String::new(),
            tls: false,
        }
    }
}

/// A relay with a trunk whose gateway is the callee's SIPp on `gateway_port`.
pub struct VoiceRelay {
    pub relay: Relay,
    pub key: String,
    pub sip_udp: SocketAddr,
    pub sip_tcp: SocketAddr,
    pub gateway_port: u16,
    /// TLS listen address and the certificate (DER) to trust, with `Opts::tls`.
    pub sip_tls: Option<(SocketAddr, Vec<u8>)>,
    _dir: tempfile::TempDir,
}

impl VoiceRelay {
    /// Memory store (demo pool) unless `opts.extra_env` selects Redis; `key` is the
    /// admin key (printed one-time key, or the one in `extra_env`'s key table).
    pub fn start(opts: Opts, key: Option<String>) -> VoiceRelay {
        let dir = tempfile::tempdir().unwrap();
        let gateway_port = free_port(CALLEE_IP);
        let cfg = format!(
            r#"
[api]
listen = "127.0.0.1:0"
[store]
demo_pool = true
[log]
level = "info"
[sip]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
unknown_source = "{unknown}"
no_answer_timeout_s = {noans}
calls_per_caller_per_min = {cpm}
drain_timeout_s = 2
[[sip.trunks]]
name = "carrier"
sources = ["{sources}"]
gateway = "{CALLEE_IP}:{gateway_port}"
transport = "{transport}"
{extra}
"#,
            unknown = opts.unknown_source,
            noans = opts.no_answer_timeout_s,
            cpm = opts.calls_per_min,
            sources = opts.sources,
            transport = opts.transport,
            extra = opts.extra_config,
        );
        let mut cfg = cfg;
        let mut cert_der = None;
        if opts.tls {
            let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let cert = dir.path().join("sip-cert.pem");
            let key = dir.path().join("sip-key.pem");
            std::fs::write(&cert, ck.cert.pem()).unwrap();
            std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
            cert_der = Some(ck.cert.der().to_vec());
            cfg.push_str(&format!(
                "[sip.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                key.display()
            ));
        }
        let path = dir.path().join("maskline.toml");
        std::fs::write(&path, cfg).unwrap();
        // Two engines spreading every new call over both (a loaded relay's
        // mode): each scenario's messages must find the engine that holds their
        // call by the B leg's Call-ID, the tag we gave the caller, or (a new
        // INVITE's retransmissions and CANCEL) engine 0's steering table.
        let mut env: Vec<(&str, String)> = vec![
            ("MASKLINE_CONFIG", path.to_string_lossy().into_owned()),
            ("MASKLINE_LOG_LEVEL", "info".into()),
            ("MASKLINE_SIP_ENGINES", "2".into()),
            ("MASKLINE_SIP_SPREAD_FROM_PCT", "0".into()),
        ];
        if opts.tls {
            env.push((
                "MASKLINE_SIP_LISTEN",
                "udp:127.0.0.1:0,tcp:127.0.0.1:0,tls:127.0.0.1:0".into(),
            ));
        }
        env.extend(opts.extra_env.iter().cloned());
        let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let relay = Relay::start(&env_ref);
        let find = |proto: &str| -> SocketAddr {
            relay
                .banner
                .iter()
                .find_map(|l| l.strip_prefix(&format!("sip listening on {proto}:")))
                .unwrap_or_else(|| panic!("no sip {proto} line in {:?}", relay.banner))
                .parse()
                .unwrap()
        };
        let (sip_udp, sip_tcp) = (find("udp"), find("tcp"));
        let sip_tls = cert_der.map(|der| (find("tls"), der));
        let key = key.unwrap_or_else(|| relay.admin_key());
        VoiceRelay {
            relay,
            key,
            sip_udp,
            sip_tcp,
            gateway_port,
            sip_tls,
            _dir: dir,
        }
    }

    /// A relay on the Redis at `url` (fresh secrets, an admin key), with pool `sf`
    /// (country 86) holding the one virtual number +8617100000001.
    pub fn on_redis(url: &str, extra: &[(&'static str, &str)]) -> VoiceRelay {
        let (mut env, key) = redis_env(url);
        env.retain(|(k, _)| *k != "MASKLINE_LOG_LEVEL");
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let r = VoiceRelay::start(
            Opts {
                extra_env: env,
                ..Opts::default()
            },
            Some(key),
        );
        for (path, body, want) in [
            ("/v1/pools", r#"{"name":"sf","country":86}"#, 201),
            (
                "/v1/pools/sf/numbers",
                r#"{"numbers":[{"number":"+8617100000001","area":"sh"}]}"#,
                200,
            ),
        ] {
            let (status, text) = r.relay.http("POST", path, &r.key, Some(body));
            assert_eq!(status, want, "{path}: {text}");
        }
        r
    }

    /// Creates a binding courier ↔ customer in `pool`; returns (id, X).
    pub fn bind(
        &self,
        pool: &str,
        shipment: &str,
        a: &str,
        b: &str,
        ttl_s: u64,
    ) -> (String, String) {
        let body = format!(
            r#"{{"pool":"{pool}","shipment_id":"{shipment}","party_a":"{a}","party_b":"{b}","ttl_s":{ttl_s}}}"#
        );
        let (status, body) = self
            .relay
            .http("POST", "/v1/bindings", &self.key, Some(&body));
        assert!(status == 201 || status == 200, "{status} {body}");
        let v = json(&body);
        (
            v["id"].as_str().unwrap().to_owned(),
            v["number"].as_str().unwrap().to_owned(),
        )
    }

    /// Call records, newest first (`query` like `?shipment_id=S1`).
    pub fn calls(&self, query: &str) -> Vec<serde_json::Value> {
        let (status, body) = self
            .relay
            .http("GET", &format!("/v1/calls{query}"), &self.key, None);
        assert_eq!(status, 200, "{body}");
        json(&body)["calls"].as_array().unwrap().clone()
    }

    /// Waits until `n` call records match `query`.
    pub fn wait_calls(&self, query: &str, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let c = self.calls(query);
            if c.len() >= n {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} call records for {query}, got {c:?}; relay log: {}",
                self.relay.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn metrics(&self) -> String {
        self.relay.http("GET", "/metrics", &self.key, None).1
    }
}

/// A running `sipp`, killed when dropped.
pub struct Sipp {
    child: Option<Child>,
    pub dir: PathBuf,
    pub name: String,
}

/// Scenario text with `@NAME@` placeholders replaced.
pub fn scenario(file: &str, vars: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(file);
    let mut s = std::fs::read_to_string(&path).unwrap();
    for (k, v) in vars {
        s = s.replace(&format!("@{k}@"), v);
    }
    assert!(
        !s.contains("@CALLER@")
            && !s.contains("@CALLED@")
            && !s.contains("@HOLD_MS@")
            && !s.contains("@STATUS@"),
        "unreplaced placeholder in {file}"
    );
    s
}

impl Sipp {
    /// Starts SIPp with the scenario text `xml` and `args`, logging messages.
    pub fn spawn(name: &str, xml: &str, args: &[String]) -> Sipp {
        let dir = tempfile::Builder::new()
            .prefix(&format!("maskline-sipp-{name}-"))
            .tempdir()
            .unwrap()
            .keep();
        let sf = dir.join(format!("{name}.xml"));
        std::fs::write(&sf, xml).unwrap();
        let out = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let err = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&sf)
            .args(args)
            .args(["-nostdin", "-trace_msg", "-trace_err", "-trace_logs"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start sipp ({e}): install SIPp (Debian: apt-get install sip-tester)")
            });
        Sipp {
            child: Some(child),
            dir,
            name: name.to_owned(),
        }
    }

    /// The callee's gateway: `scenario` on `CALLEE_IP:port`, `calls` calls.
    pub fn uas(xml: &str, port: u16, calls: u32, tcp: bool) -> Sipp {
        let mut args = vec![
            "-i".to_owned(),
            CALLEE_IP.to_owned(),
            "-p".to_owned(),
            port.to_string(),
            "-m".to_owned(),
            calls.to_string(),
        ];
        if tcp {
            args.extend(["-t".to_owned(), "t1".to_owned()]);
        }
        let s = Sipp::spawn("uas", xml, &args);
        // Let it bind before the first INVITE arrives.
        std::thread::sleep(Duration::from_millis(300));
        s
    }

    /// The carrier's calling side: `calls` calls at `rate` per second to `relay`.
    pub fn uac(xml: &str, relay: SocketAddr, calls: u32, rate: u32, tcp: bool) -> Sipp {
        let mut args = vec![
            relay.to_string(),
            "-i".to_owned(),
            CALLER_IP.to_owned(),
            "-p".to_owned(),
            free_port(CALLER_IP).to_string(),
            "-m".to_owned(),
            calls.to_string(),
            "-r".to_owned(),
            rate.to_string(),
            "-l".to_owned(),
            calls.to_string(),
            "-cid_str".to_owned(),
            "caller-secret-%u-%p@%s".to_owned(),
            "-timeout".to_owned(),
            "30s".to_owned(),
            "-timeout_error".to_owned(),
        ];
        if tcp {
            args.extend(["-t".to_owned(), "t1".to_owned()]);
        }
        Sipp::spawn("uac", xml, &args)
    }

    /// Waits for exit (at most `secs`), returning the status.
    pub fn wait(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sipp {} did not finish in {secs} s; {}",
                    self.name,
                    self.report()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits and asserts success (every call passed the scenario).
    pub fn expect_success(&mut self, secs: u64) {
        let s = self.wait(secs);
        assert!(
            s.success(),
            "sipp {} failed ({s}); {}",
            self.name,
            self.report()
        );
    }

    fn read_glob(&self, suffix: &str) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(suffix) {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    /// Every message this SIPp received (from the relay), in order.
    pub fn received(&self) -> Vec<String> {
        let log = self.read_glob("_messages.log");
        log.split("----------------------------------------------- ")
            .filter(|m| m.contains(" message received"))
            .map(|m| {
                m.split_once(":\n")
                    .map_or("", |x| x.1.trim_start())
                    .to_owned()
            })
            .collect()
    }

    /// The scenario's `<log>` output.
    pub fn logs(&self) -> String {
        self.read_glob("_logs.log")
    }

    pub fn report(&self) -> String {
        format!(
            "dir {}; errors: {}; stderr: {}",
            self.dir.display(),
            self.read_glob("_errors.log"),
            std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Asserts that none of `needles` appears in any of `messages`.
pub fn assert_absent(side: &str, messages: &[String], needles: &[&str]) {
    assert!(!messages.is_empty(), "{side} received nothing");
    for m in messages {
        for n in needles {
            assert!(!m.contains(n), "{side} received {n:?} (leak) in:\n{m}");
        }
    }
}

/// A raw UDP "trunk" for single-message tests.
pub struct RawUa {
    pub sock: UdpSocket,
    /// Call-ID of the last request sent: only its responses are read.
    last_call_id: std::cell::RefCell<Option<String>>,
}

impl RawUa {
    pub fn bind(ip: &str) -> RawUa {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        RawUa {
            sock,
            last_call_id: Default::default(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// An INVITE from `caller` to `called` (with SDP), with extra header lines.
    pub fn invite(&self, called: &str, caller: &str, extra: &str) -> String {
        let me = self.addr();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n",
            ip = me.ip()
        );
        format!(
            "INVITE sip:{called}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b}\r\n\
             From: <sip:{caller}@{ip}>;tag=t{b}\r\nTo: <sip:{called}@127.0.0.1>\r\n\
             Call-ID: raw-{b}\r\nCSeq: 1 INVITE\r\nContact: <sip:{caller}@{me}>\r\nMax-Forwards: 70\r\n\
             {extra}Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            b = rand::random::<u32>(),
            ip = me.ip(),
            len = sdp.len()
        )
    }

    pub fn send(&self, to: SocketAddr, msg: &str) {
        *self.last_call_id.borrow_mut() = call_id_of(msg);
        self.sock.send_to(msg.as_bytes(), to).unwrap();
    }

    /// The next response with a final status (skips 1xx), or None on timeout.
    pub fn final_response(&self) -> Option<String> {
        let mut buf = [0u8; 65535];
        loop {
            let (n, _) = self.sock.recv_from(&mut buf).ok()?;
            let s = String::from_utf8_lossy(&buf[..n]).into_owned();
            let want = self.last_call_id.borrow().clone();
            if want.is_some() && call_id_of(&s) != want {
                continue; // a retransmission answering an earlier request
            }
            if !s.starts_with("SIP/2.0 1") {
                return Some(s);
            }
        }
    }
}

/// The Call-ID header value of a message.
pub fn call_id_of(msg: &str) -> Option<String> {
    msg.lines()
        .find_map(|l| l.strip_prefix("Call-ID:").or_else(|| l.strip_prefix("i:")))
        .map(|v| v.trim().to_owned())
}

/// Status code of a response.
pub fn status_of(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
