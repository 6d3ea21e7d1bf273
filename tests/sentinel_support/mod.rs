//! A real Sentinel-monitored Redis for tests: one master, one replica and one
//! sentinel on loopback (`redis-server --sentinel`, same package), master name
//! `mm`, `down-after-milliseconds` 1000 so a killed master's replica is promoted
//! within a few seconds. The processes run under one shell that kills them (and
//! removes their directory) when its stdin closes: when the [`Sentinel`] is
//! dropped or the test process ends. Without `redis-server` the tests that need it
//! are skipped with a message (`scripts/test` installs it, so CI runs them).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::redis_procs as procs;
pub use procs::cli;
use procs::port_free;

use std::process::{Child, ChildStdin};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::Rng;

/// A running master + replica + sentinel (killed on drop).
pub struct Sentinel {
    /// Master, replica, sentinel ports.
    pub ports: [u16; 3],
    shell: Child,
    stdin: Option<ChildStdin>,
}

static SHARED: OnceLock<Option<Sentinel>> = OnceLock::new();

/// One set shared by the tests of a test binary that do not fail it over.
pub fn shared() -> Option<&'static Sentinel> {
    SHARED
        .get_or_init(|| available().then(Sentinel::start))
        .as_ref()
}

/// Whether `redis-server` and `redis-cli` are installed (says why a test is skipped).
pub fn available() -> bool {
    procs::available("Sentinel")
}

impl Sentinel {
    /// Starts the three processes and waits until the sentinel knows the replica.
    pub fn start() -> Sentinel {
        let mut rng = rand::rng();
        let base = (0..50)
            .map(|_| rng.random_range(23000u16..23900))
            .find(|b| (0..3).all(|i| port_free(b + i)))
            .expect("three free ports in 23000-23999");
        let ports = [base, base + 1, base + 2];
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor mm 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds mm 1000\n\
                 sentinel failover-timeout mm 5000\n\
                 sentinel parallel-syncs mm 1\n",
                ports[2],
                dir.display(),
                ports[0]
            ),
        )
        .expect("sentinel.conf");
        let server = |p: u16, extra: &str| {
            format!(
                "redis-server --port {p} --bind 127.0.0.1 --save '' --appendonly no \
                 --dir '{}' --dbfilename {p}.rdb {extra}",
                dir.display()
            )
        };
        let (shell, stdin) = procs::spawn_group(
            &[
                server(ports[0], ""),
                server(ports[1], &format!("--replicaof 127.0.0.1 {}", ports[0])),
                format!("redis-server '{}' --sentinel", conf.display()),
            ],
            Some(&dir),
        );
        let stdin = Some(stdin);
        let me = Sentinel {
            ports,
            shell,
            stdin,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let replicas = cli(ports[2], &["sentinel", "replicas", "mm"]);
            let synced = cli(ports[1], &["info", "replication"]).contains("master_link_status:up");
            if synced && replicas.contains(&ports[1].to_string()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sentinel did not see the replica"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    /// `redis+sentinel://` URL of this set.
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/mm", self.ports[2])
    }

    /// Port of the master the sentinel names now.
    pub fn master(&self) -> Option<u16> {
        let out = cli(
            self.ports[2],
            &["sentinel", "get-master-addr-by-name", "mm"],
        );
        out.lines().nth(1)?.trim().parse().ok()
    }

    /// Kills the server on `port` (SIGKILL, as a power loss) and waits until it
    /// no longer accepts connections.
    pub fn kill(&self, port: u16) {
        procs::kill(port);
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.shell.wait();
    }
}
