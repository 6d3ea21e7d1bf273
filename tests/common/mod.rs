//! Shared helpers for integration tests: a real `redis-server`.
//!
//! `.ci/run` starts one and exports `MASKLINE_TEST_REDIS_URL`. When that is unset
//! (a developer running `cargo test --workspace` directly), the first test that asks
//! starts a private `redis-server` on a free loopback port for the rest of the test
//! process. If `redis-server` is not installed, the test fails with a message saying
//! so: a missing server is never a silent skip.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod redis_procs;

use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Server {
    url: String,
    _child: Option<(ChildGuard, ChildStdin)>,
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// URL of a running real Redis for tests.
pub fn redis_url() -> String {
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("MASKLINE_TEST_REDIS_URL") {
                return Server { url, _child: None };
            }
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            let dir = std::env::temp_dir().join(format!("maskline-test-redis-{port}"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            // The server's shell kills it when our stdin pipe closes, i.e. when this
            // test process exits (statics are never dropped).
            let (child, stdin) = redis_procs::spawn_group(
                &[format!(
                    "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
                     --dir '{}'",
                    dir.display()
                )],
                None,
            );
            assert!(
                which_redis(),
                "integration tests need a real redis-server: install the Debian package \
                 redis-server, or set MASKLINE_TEST_REDIS_URL (.ci/run does both)"
            );
            let guard = (ChildGuard(child), stdin);
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            Server {
                url: format!("redis://127.0.0.1:{port}/"),
                _child: Some(guard),
            }
        })
        .url
        .clone()
}

/// A pool of country 86 (one hour of grace and cooling, no foreign parties, no
/// extensions) whose numbers take up to `cap` live bindings each.
pub fn pool_spec(name: &str, cap: u32) -> maskline::bindings::PoolSpec {
    maskline::bindings::PoolSpec {
        name: name.to_owned(),
        country: 86,
        grace_s: 3600,
        cooling_s: 3600,
        max_bindings_per_number: cap,
        allow_foreign_parties: false,
        extensions: false,
        extension_len: maskline::bindings::DEFAULT_EXTENSION_LEN,
    }
}

/// A free loopback TCP port for a server a test starts *later* (a dependency
/// that is down at first), outside the kernel's ephemeral range (32768–60999):
/// a port from `bind("127.0.0.1:0")` goes back to that pool the moment it is
/// released, and another test's listener or outgoing connection can take it
/// before the server binds it (a clean CI run once saw a relay wait for "Redis"
/// on a port that had meanwhile become something else). 24000–24999 is used by
/// no other test support (clusters: 21000–22899 and +10000; sentinels: 23000–23899).
pub fn later_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..200)
        .map(|_| rng.random_range(24000u16..25000))
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free loopback port in 24000-24999")
}

/// A random number in a test-only range, unique enough for parallel tests.
pub fn random_e164(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random_range(0..100_000_000);
    format!("{prefix}{n:08}")
}

/// A unique name (pools, shipments) for one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn which_redis() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A private `redis-server` (with an append-only file, so data survives a restart).
pub struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// A private `redis-server` on a given loopback port.
    pub fn start_on(port: u16) -> Self {
        let mut me = OwnRedis {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        me.spawn();
        me
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Ours answers on that port, not something else that took it.
        let pong = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "ping"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let alive = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        assert!(
            pong == "PONG" && alive,
            "redis-server on port {} did not start (port taken?): {pong:?}",
            self.port
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
