//! Helpers for tests that run their own `redis-server` processes (a cluster, a
//! sentinel set): free ports, `redis-cli`, whether the tools are installed, and a
//! SIGKILL that waits until the server is gone. Used by `cluster_support` and
//! `sentinel_support`, so neither repeats them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// Starts `commands` (shell command lines, output discarded) in the background
/// under one `sh` that SIGKILLs them all — and removes `cleanup`, if given — when
/// its stdin closes: drop the returned stdin (then wait on the child), or let the
/// test process end.
pub fn spawn_group(commands: &[String], cleanup: Option<&Path>) -> (Child, ChildStdin) {
    let mut script = String::from("pids=''\n");
    for c in commands {
        script.push_str(&format!("{c} >/dev/null 2>&1 & pids=\"$pids $!\"\n"));
    }
    script.push_str("read _; kill -9 $pids 2>/dev/null; wait\n");
    if let Some(dir) = cleanup {
        script.push_str(&format!("rm -rf '{}'\n", dir.display()));
    }
    let mut shell = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh");
    let stdin = shell.stdin.take().expect("stdin");
    (shell, stdin)
}

/// Whether nothing listens on loopback port `p`.
pub fn port_free(p: u16) -> bool {
    TcpListener::bind(("127.0.0.1", p)).is_ok()
}

/// What `redis-cli -p port args...` prints.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` to completion within `limit` (killed after it), with its output.
/// `None` when it ran out of time: e.g. `redis-cli --cluster create` waits for
/// the nodes to agree with no limit of its own.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Option<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(child.wait_with_output().expect("output"))
}

/// Whether `redis-server` and `redis-cli` are installed; if not, says which
/// tests (`what`) are skipped and how to get them.
pub fn available(what: &str) -> bool {
    let ok = ["redis-server", "redis-cli"].iter().all(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        eprintln!(
            "SKIPPED: {what} tests need redis-server and redis-cli (Debian packages \
             redis-server, redis-tools; scripts/test installs them)"
        );
    }
    ok
}

/// Kills the server on `port` (SIGKILL, as a power loss) and waits until it no
/// longer accepts connections.
pub fn kill(port: u16) {
    let info = cli(port, &["info", "server"]);
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .expect("process_id")
        .trim()
        .to_owned();
    let status = Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "port {port} still accepts 10 s after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
