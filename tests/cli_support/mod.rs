//! Helpers for the CLI end-to-end tests: run the real `maskline` binary with a clean
//! environment, and drive a `maskline serve` child over plain HTTP/1.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

pub fn maskline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maskline"));
    // A developer's own MASKLINE_* settings must not leak into the tests.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MASKLINE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    // Never the well-known SIP port: tests run in parallel.
    cmd.env("MASKLINE_SIP_LISTEN", "udp:127.0.0.1:0,tcp:127.0.0.1:0");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A `maskline serve` child process, killed when dropped.
pub struct Relay {
    pub child: std::process::Child,
    /// `host:port` the relay bound.
    pub addr: String,
    /// `http` or `https`.
    pub scheme: String,
    /// stdout lines up to and including "listening on ...".
    pub banner: Vec<String>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Relay {
    pub fn start(envs: &[(&str, &str)]) -> Relay {
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

    pub fn admin_key(&self) -> String {
        self.banner
            .iter()
            .find_map(|l| l.strip_prefix("admin key: "))
            .expect("an admin key line")
            .to_string()
    }

    /// One HTTP/1.1 request (Connection: close); returns status and body.
    pub fn http(&self, method: &str, path: &str, key: &str, body: Option<&str>) -> (u16, String) {
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
    pub fn terminate(mut self) -> std::process::ExitStatus {
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

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Environment for a Redis-backed relay: fresh secrets and one admin key.
pub fn redis_env(url: &str) -> (Vec<(&'static str, String)>, String) {
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
