//! End-to-end tests of the `maskline` binary's offline commands: `check-config` and
//! `key new`, run as a user would run them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use cli_support::{maskline, text, write};
use sha2::{Digest, Sha256};

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
