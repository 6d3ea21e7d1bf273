//! A real Redis Cluster for tests: 3 masters and 3 replicas on loopback.
//!
//! [`Cluster::start`] starts six `redis-server --cluster-enabled yes` processes in a
//! temporary directory on free ports (a random base in 21000–21899, cluster bus
//! ports +10000), joins them with `redis-cli --cluster create ... --cluster-replicas 1
//! --cluster-yes` and waits until every slot is served and every replica is in sync.
//! The servers run under one shell that kills them (and removes the directory) when
//! its stdin closes: when the [`Cluster`] is dropped, or when the test process ends
//! (for the [`shared`] one, which statics never drop). `cluster-node-timeout` is
//! 1000 ms so a killed master's replica is promoted within a few seconds.
//!
//! Without `redis-server` the tests that need a cluster are skipped with a message
//! (`scripts/test` installs it, so CI always runs them).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::redis_procs as procs;
pub use procs::cli;
use procs::port_free;

use std::io::Write;
use std::process::{Child, ChildStdin, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::Rng;

/// `cluster-node-timeout` of the test clusters, ms.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// A running 3-master/3-replica cluster (killed on drop).
pub struct Cluster {
    ports: Vec<u16>,
    dir: std::path::PathBuf,
    shell: Child,
    stdin: Option<ChildStdin>,
    /// Nodes added after start (replicas for a promoted master), each under its own shell.
    added: std::sync::Mutex<Vec<(Child, ChildStdin)>>,
}

fn server_cmd(port: u16, dir: &std::path::Path) -> String {
    format!(
        "redis-server --port {port} --bind 127.0.0.1 --cluster-enabled yes \
         --cluster-config-file nodes.conf --cluster-node-timeout {NODE_TIMEOUT_MS} \
         --appendonly yes --appendfsync everysec --save '' --dir '{}'",
        dir.join(port.to_string()).display()
    )
}

/// Whether `redis-server` and `redis-cli` are installed (says why a test is skipped).
pub fn available() -> bool {
    procs::available("Redis Cluster")
}

static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();

/// One cluster shared by the tests of a test binary that do not break it (no
/// failover); `None` (after a message) without `redis-server`.
pub fn shared() -> Option<&'static Cluster> {
    SHARED
        .get_or_init(|| available().then(Cluster::start))
        .as_ref()
}

impl Cluster {
    /// Starts a fresh cluster (panics if it cannot: call [`available`] first).
    ///
    /// Starts within one test process take turns (two picking ports at once could
    /// pick the same ones), and a cluster that does not form is torn down and
    /// started again on other ports, up to three times; the panic says what
    /// `redis-cli --cluster create` printed.
    pub fn start() -> Cluster {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let mut why = Vec::new();
        for _ in 0..3 {
            match Cluster::try_start() {
                Ok(c) => return c,
                Err(e) => {
                    eprintln!("cluster_support: a cluster did not form, starting another: {e}");
                    why.push(e)
                }
            }
        }
        panic!("no Redis Cluster in three attempts:\n{}", why.join("\n"));
    }

    fn try_start() -> Result<Cluster, String> {
        let mut rng = rand::rng();
        let base = (0..50)
            .map(|_| rng.random_range(21000u16..21900))
            .find(|b| (0..6).all(|i| port_free(b + i) && port_free(b + i + 10000)))
            .expect("six free ports (and bus ports) in 21000-21999");
        let ports: Vec<u16> = (0..6).map(|i| base + i).collect();
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let mut servers = Vec::new();
        for p in &ports {
            std::fs::create_dir_all(dir.join(p.to_string())).expect("node dir");
            servers.push(server_cmd(*p, &dir));
        }
        let (shell, stdin) = procs::spawn_group(&servers, Some(&dir));
        let stdin = Some(stdin);
        let me = Cluster {
            ports,
            dir,
            shell,
            stdin,
            added: std::sync::Mutex::new(Vec::new()),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in &me.ports {
            while procs::cli(*p, &["ping"]).trim() != "PONG" {
                if Instant::now() > deadline {
                    return Err(format!("redis-server on port {p} did not start"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let nodes: Vec<String> = me.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = procs::run_bounded(
            Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&nodes)
                .args(["--cluster-replicas", "1", "--cluster-yes"]),
            Duration::from_secs(30),
        );
        match out {
            Some(o) if o.status.success() => {}
            Some(o) => {
                return Err(format!(
                    "redis-cli --cluster create failed: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ))
            }
            None => return Err("redis-cli --cluster create: no cluster within 30 s".into()),
        }
        me.wait_healthy(Duration::from_secs(30));
        Ok(me)
    }

    /// Seed URLs (every node).
    pub fn seeds(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Ports of the nodes that are masters now (alive), in port order.
    pub fn masters(&self) -> Vec<u16> {
        self.ports
            .iter()
            .copied()
            .filter(|p| cli(*p, &["role"]).lines().next() == Some("master"))
            .collect()
    }

    /// The port of the master serving `key`'s slot now.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot: u16 = cli(self.ports[0], &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("slot");
        for p in self.masters() {
            for line in cli(p, &["cluster", "nodes"]).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 9 || !f[2].contains("myself") || !f[2].contains("master") {
                    continue;
                }
                for range in &f[8..] {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                        if (a..=b).contains(&slot) {
                            return p;
                        }
                    }
                }
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// The port of a replica of the master on `master` (from that master's view).
    pub fn replica_of(&self, master: u16) -> Option<u16> {
        cli(master, &["info", "replication"]).lines().find_map(|l| {
            // slave0:ip=127.0.0.1,port=21003,state=online,offset=...,lag=0
            let rest = l.strip_prefix("slave")?.split_once(':')?.1;
            rest.split(',')
                .find_map(|f| f.strip_prefix("port="))
                .and_then(|p| p.parse().ok())
        })
    }

    /// Waits (up to `limit`) until the replica on `replica` holds `key`: a read on
    /// the replica itself (`READONLY` on the same connection). Whether it did.
    pub fn replica_holds(&self, replica: u16, key: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let mut child = Command::new("redis-cli")
                .args(["-p", &replica.to_string()])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("redis-cli");
            let mut stdin = child.stdin.take().expect("stdin");
            let _ = writeln!(stdin, "READONLY\nEXISTS {key}");
            drop(stdin);
            let out = child.wait_with_output().expect("redis-cli output");
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == "1" || l.trim() == "(integer) 1")
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills (SIGKILL: a crash) the node on `port`.
    pub fn kill(&self, port: u16) {
        procs::kill(port);
    }

    /// Adds a fresh, empty node as a replica of the master on `master` (after a
    /// failover left that master without one). Unlike restarting the dead node, a
    /// fresh node never held slots, so no client can be sent to it for data.
    pub fn add_replica(&self, master: u16) -> u16 {
        let port = (22000u16..22900)
            .find(|p| port_free(*p) && port_free(p + 10000))
            .expect("a free port (and bus port) in 22000-22899");
        std::fs::create_dir_all(self.dir.join(port.to_string())).expect("node dir");
        self.spawn_node(port);
        let id = cli(master, &["cluster", "myid"]).trim().to_owned();
        let out = procs::run_bounded(
            Command::new("redis-cli")
                .args(["--cluster", "add-node"])
                .arg(format!("127.0.0.1:{port}"))
                .arg(format!("127.0.0.1:{master}"))
                .args(["--cluster-slave", "--cluster-master-id", &id]),
            Duration::from_secs(30),
        )
        .expect("redis-cli --cluster add-node finished within 30 s");
        assert!(
            out.status.success(),
            "redis-cli --cluster add-node failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        port
    }

    /// Starts a cluster node on `port` (data in its directory under the
    /// cluster's), killed with the cluster, and waits until it accepts connections.
    fn spawn_node(&self, port: u16) {
        let shell = procs::spawn_group(&[server_cmd(port, &self.dir)], None);
        self.added.lock().unwrap().push(shell);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the live nodes agree that every slot is served by a master and
    /// every live replica is in sync with its master.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let live: Vec<u16> = self
                .ports
                .iter()
                .copied()
                .filter(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
                .collect();
            let ok = live.iter().all(|p| {
                let info = cli(*p, &["cluster", "info"]);
                let repl = cli(*p, &["info", "replication"]);
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && (repl.contains("role:master") || repl.contains("master_link_status:up"))
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs one command on the node on `port` (redis-cli), for checks.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (mut shell, mut stdin) in self.added.lock().unwrap().drain(..) {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = shell.wait();
        }
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"\n");
        }
        let _ = self.shell.wait();
    }
}
