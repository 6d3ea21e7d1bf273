//! End-to-end tests of `maskline pool ...`: the real binary talks to a real
//! `maskline serve` (memory store, port 0) over HTTP, with the one-time admin key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use std::process::Output;

use cli_support::{json, maskline, text, write, Relay};

/// Runs `maskline pool ARGS` against `relay` with `key` (through the environment).
fn pool(relay: &Relay, key: &str, args: &[&str]) -> Output {
    maskline()
        .arg("pool")
        .args(args)
        .env("MASKLINE_URL", format!("http://{}", relay.addr))
        .env("MASKLINE_KEY", key)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    stdout
}

#[test]
fn pool_commands_create_import_show_and_retire_over_http() {
    let relay = Relay::start(&[("MASKLINE_LOG_LEVEL", "warn")]);
    let key = relay.admin_key();
    let dir = tempfile::tempdir().unwrap();

    // create, with the optional settings.
    let out = ok(&pool(
        &relay,
        &key,
        &[
            "create",
            "ops1",
            "--country",
            "86",
            "--grace-s",
            "600",
            "--cooling-s",
            "60",
            "--max-bindings-per-number",
            "7",
        ],
    ));
    let created = json(&out);
    assert_eq!(created["name"], "ops1", "{out}");
    assert_eq!(created["grace_s"], 600, "{out}");
    assert_eq!(created["cooling_s"], 60, "{out}");
    assert_eq!(created["max_bindings_per_number"], 7, "{out}");
    // Pretty-printed, not one line.
    assert!(out.trim_end().lines().count() > 3, "{out}");
    // Creating it again: the server's refusal, non-zero exit.
    let again = pool(&relay, &key, &["create", "ops1", "--country", "86"]);
    assert!(!again.status.success());
    let (_, stderr) = text(&again);
    assert!(stderr.contains("(HTTP 409)"), "{stderr}");

    // list shows it beside the demo pool.
    let out = ok(&pool(&relay, &key, &["list"]));
    let names: Vec<String> = json(&out)["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"ops1".to_string()), "{out}");
    assert!(names.contains(&"demo".to_string()), "{out}");

    // import a CSV with a bad line 3 (header is line 1).
    let csv = write(
        dir.path(),
        "numbers.csv",
        "number,area\n+8617100000001,sh\nnot-a-number,sh\n17100000002,bj\n",
    );
    // Some rows rejected: the good ones are added, and the exit status says so.
    let partial = pool(&relay, &key, &["import", "ops1", csv.to_str().unwrap()]);
    let (out, stderr) = text(&partial);
    assert!(
        !partial.status.success(),
        "a partial import must fail: {out}"
    );
    assert!(stderr.contains("1 entries rejected"), "{stderr}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("added 2, skipped 0, errors 1"), "{out}");
    let err_line = lines.next().unwrap_or_default();
    assert!(err_line.contains("line 3:"), "{out}");
    assert!(err_line.contains("number"), "{out}");

    // JSON from stdin: one known number is skipped, one new one added.
    let mut child = maskline()
        .args(["pool", "import", "ops1", "-", "--format", "json"])
        .env("MASKLINE_URL", format!("http://{}", relay.addr))
        .env("MASKLINE_KEY", &key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(br#"{"numbers":[{"number":"+8617100000001"},{"number":"+8617100000003","area":"gz"}]}"#)
            .unwrap();
    }
    let out = ok(&child.wait_with_output().unwrap());
    assert_eq!(out.trim_end(), "added 1, skipped 1, errors 0", "{out}");

    // stats shows the three numbers, in clear (virtual numbers are ours).
    let out = ok(&pool(&relay, &key, &["stats", "ops1"]));
    let stats = json(&out);
    assert_eq!(stats["numbers"], 3, "{out}");
    assert_eq!(stats["active"], 3, "{out}");
    let numbers: Vec<&str> = stats["per_number"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    for n in ["+8617100000001", "+8617100000002", "+8617100000003"] {
        assert!(numbers.contains(&n), "{n} missing: {out}");
    }

    // retire one: it shows as retired.
    let out = ok(&pool(&relay, &key, &["retire", "ops1", "+8617100000002"]));
    assert!(out.contains("retired +8617100000002"), "{out}");
    let stats = json(&ok(&pool(&relay, &key, &["stats", "ops1"])));
    assert_eq!(stats["retired"], 1, "{stats}");
    assert_eq!(stats["active"], 2, "{stats}");
    let retired = stats["per_number"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number"] == "+8617100000002")
        .unwrap();
    assert_eq!(retired["state"], "retired", "{stats}");

    // A pool that does not exist: the server's 404 code on stderr.
    let out = pool(&relay, &key, &["stats", "nope"]);
    assert!(!out.status.success());
    let (stdout, stderr) = text(&out);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("(HTTP 404)"), "{stderr}");
}

#[test]
fn pool_commands_fail_with_the_server_error_and_never_echo_the_key() {
    let relay = Relay::start(&[("MASKLINE_LOG_LEVEL", "warn")]);
    let wrong = "mk_wrong_key_for_the_test";
    let out = pool(&relay, wrong, &["list"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("unauthorized"), "{stderr}");
    assert!(stderr.contains("(HTTP 401)"), "{stderr}");
    assert!(!stderr.contains(wrong), "the key leaked: {stderr}");

    // Also as --key on the command line.
    let out = maskline()
        .args(["pool", "stats", "demo", "--key", wrong, "--url"])
        .arg(format!("http://{}", relay.addr))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("unauthorized"), "{stderr}");
    assert!(!stderr.contains(wrong), "the key leaked: {stderr}");

    // A bad file is refused before anything is sent.
    let key = relay.admin_key();
    let out = pool(&relay, &key, &["import", "demo", "numbers.txt"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains(".csv or .json"), "{stderr}");
}

#[test]
fn pool_commands_default_to_the_configured_listen_address_and_refuse_https() {
    let relay = Relay::start(&[("MASKLINE_LOG_LEVEL", "warn")]);
    let key = relay.admin_key();
    // No --url: http:// + [api] listen (here from MASKLINE_API_LISTEN).
    let out = maskline()
        .args(["pool", "stats", "demo"])
        .env("MASKLINE_API_LISTEN", &relay.addr)
        .env("MASKLINE_KEY", &key)
        .output()
        .unwrap();
    let stats = json(&ok(&out));
    assert_eq!(stats["numbers"], 8, "{stats}");

    let out = maskline()
        .args(["pool", "list", "--url", "https://127.0.0.1:1"])
        .env("MASKLINE_KEY", &key)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("https is not supported"), "{stderr}");
}
