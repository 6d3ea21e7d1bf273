//! Unit tests of config parsing, environment overrides and validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;

use super::*;
use crate::numbers::E164;

const SHIPPED: &str = include_str!("../../config/maskline.toml");

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_toml_with_env(text, Path::new("test.toml"), &env(pairs))
}

fn field_of(r: Result<Config, ConfigError>) -> (String, String) {
    match r {
        Err(ConfigError::Field { field, message }) => (field, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hash_hex() -> String {
    api_key_hash("mk_test")
}

fn redis_toml() -> String {
    format!(
        r#"
[[api.keys]]
name = "platform"
role = "app"
hash = "{}"

[store]
backend = "redis"
redis_url = "redis://127.0.0.1:6379/"

[secrets]
hmac_key = "{}"
seal_keys = ["2:{}", "1:{}"]
"#,
        hash_hex(),
        b64(&[7u8; 32]),
        b64(&[2u8; 32]),
        b64(&[1u8; 32])
    )
}

#[test]
fn shipped_config_loads_and_validates() {
    let c = parse(SHIPPED, &[]).unwrap();
    assert_eq!(c.api.listen, "127.0.0.1:8080");
    assert_eq!(c.store.backend, Backend::Memory);
    assert!(c.store.demo_pool);
    assert!(c.api.keys.is_empty());
    assert_eq!(c.log.format, "pretty");
    // And from disk through the public entry point, as `serve` reads it.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH);
    Config::load_with_env(Some(&path), &HashMap::new()).unwrap();
}

#[test]
fn shipped_redis_example_is_valid_once_filled_in() {
    // The commented production example, uncommented, with the placeholders filled.
    let example: String = SHIPPED
        .split("# Production example with Redis")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("# ").or(l.strip_prefix("#")).unwrap_or(l))
        .map(|l| l.split("  #").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let filled = example
        .replacen("sha256:...", &api_key_hash("a"), 1)
        .replacen("sha256:...", &api_key_hash("b"), 1)
        .replace(
            "hmac_key = \"...\"",
            &format!("hmac_key = \"{}\"", b64(&[3; 32])),
        )
        .replace("\"1:...\"", &format!("\"1:{}\"", b64(&[4; 32])));
    let c = parse(&filled, &[]).unwrap();
    assert_eq!(c.store.backend, Backend::Redis);
    assert_eq!(c.api.keys.len(), 2);
    assert_eq!(c.api.listen, "0.0.0.0:8080");
}

#[test]
fn empty_file_gives_defaults() {
    let c = parse("", &[]).unwrap();
    assert_eq!(c.api.listen, "127.0.0.1:8080");
    assert_eq!(c.api.max_body_bytes, 1024 * 1024);
    assert_eq!(c.store.reaper_interval_ms, 1000);
}

#[test]
fn full_redis_config_parses_and_yields_secrets() {
    let c = parse(&redis_toml(), &[]).unwrap();
    assert_eq!(c.api.keys[0].role, Role::App);
    assert!(c.api.keys[0].matches("mk_test"));
    assert!(!c.api.keys[0].matches("mk_other"));
    let s = c.secrets().unwrap();
    assert!(!s.ephemeral);
    // The configured keys are the ones used: key 2 seals, key 1 still opens.
    let n = E164::parse("+8613812345678").unwrap();
    let blob = s.sealer.seal_number(&n, b"p");
    assert_eq!(blob[0], 2);
    let old = crate::numbers::Sealer::new(&[(1, zeroize::Zeroizing::new(vec![1u8; 32]))]).unwrap();
    let old_blob = old.seal_number(&n, b"p");
    assert_eq!(s.sealer.open_number(&old_blob, b"p").unwrap(), n);
    let h = crate::numbers::NumberHasher::new(&[7u8; 32]).unwrap();
    assert_eq!(s.hasher.hash(&n), h.hash(&n));
}

#[test]
fn memory_without_secrets_gets_random_ephemeral_ones() {
    let c = parse("", &[]).unwrap();
    let a = c.secrets().unwrap();
    let b = c.secrets().unwrap();
    assert!(a.ephemeral);
    let n = E164::parse("+8613812345678").unwrap();
    assert_ne!(a.hasher.hash(&n), b.hasher.hash(&n));
}

#[test]
fn env_overrides_every_scalar_section() {
    let keys = format!(
        "ops1:ops:{},aud:auditor:{}",
        api_key_hash("x"),
        api_key_hash("y")
    );
    let c = parse(
        &redis_toml(),
        &[
            ("MASKLINE_API_LISTEN", "0.0.0.0:9000"),
            ("MASKLINE_API_MAX_BODY_BYTES", "4096"),
            ("MASKLINE_API_RATE_PER_KEY_PER_S", "7"),
            ("MASKLINE_API_RATE_BURST", "9"),
            ("MASKLINE_API_HEADER_TIMEOUT_MS", "1000"),
            ("MASKLINE_API_BODY_TIMEOUT_MS", "2000"),
            ("MASKLINE_API_IDLE_TIMEOUT_MS", "3000"),
            ("MASKLINE_API_MAX_CONNECTIONS", "77"),
            ("MASKLINE_API_KEYS", &keys),
            ("MASKLINE_STORE_REDIS_URL", "redis://10.0.0.5:6380/2"),
            ("MASKLINE_STORE_REAPER_INTERVAL_MS", "250"),
            ("MASKLINE_STORE_REDIS_TIMEOUT_MS", "500"),
            ("MASKLINE_STORE_REDIS_CONNECTIONS", "4"),
            ("MASKLINE_STORE_DEMO_POOL", "false"),
            (
                "MASKLINE_SECRETS_SEAL_KEYS",
                &format!("5:{}", b64(&[5; 32])),
            ),
            ("MASKLINE_LOG_FORMAT", "json"),
            ("MASKLINE_LOG_LEVEL", "maskline=debug"),
            // Not ours: ignored.
            ("MASKLINE_TEST_REDIS_URL", "redis://x/"),
        ],
    )
    .unwrap();
    assert_eq!(c.api.listen, "0.0.0.0:9000");
    assert_eq!(c.api.max_body_bytes, 4096);
    assert_eq!(c.api.rate_per_key_per_s, 7);
    assert_eq!(c.api.rate_burst, 9);
    assert_eq!(c.api.header_timeout_ms, 1000);
    assert_eq!(c.api.body_timeout_ms, 2000);
    assert_eq!(c.api.idle_timeout_ms, 3000);
    assert_eq!(c.api.max_connections, 77);
    assert_eq!(c.api.keys.len(), 2);
    assert_eq!(c.api.keys[1].name, "aud");
    assert_eq!(c.api.keys[1].role, Role::Auditor);
    assert!(c.api.keys[1].matches("y"));
    assert_eq!(c.store.redis_url, "redis://10.0.0.5:6380/2");
    assert_eq!(c.store.reaper_interval_ms, 250);
    assert_eq!(c.store.redis_timeout_ms, 500);
    assert_eq!(c.store.redis_connections, 4);
    assert!(!c.store.demo_pool);
    assert_eq!(c.secrets.parsed_seal_keys().unwrap()[0].0, 5);
    assert_eq!(c.log.format, "json");
    assert_eq!(c.log.level, "maskline=debug");
}

#[test]
fn env_can_switch_to_redis_with_secrets() {
    let keys = format!("admin:admin:{}", api_key_hash("k"));
    let seal = format!("1:{}", b64(&[1; 32]));
    let hmac = b64(&[9; 32]);
    let c = parse(
        SHIPPED,
        &[
            ("MASKLINE_STORE_BACKEND", "redis"),
            ("MASKLINE_SECRETS_HMAC_KEY", &hmac),
            ("MASKLINE_SECRETS_SEAL_KEYS", &seal),
            ("MASKLINE_API_KEYS", &keys),
        ],
    )
    .unwrap();
    assert_eq!(c.store.backend, Backend::Redis);
    assert!(!c.secrets().unwrap().ephemeral);
}

#[test]
fn env_tls_paths_and_bad_values_name_the_field() {
    let (field, msg) = field_of(parse(
        "",
        &[("MASKLINE_API_TLS_CERT", "/nonexistent/c.pem")],
    ));
    assert_eq!(field, "api.tls.cert");
    assert!(msg.contains("cannot read"), "{msg}");
    // A real file for the cert, missing key path.
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    std::fs::write(&cert, "x").unwrap();
    let (field, _) = field_of(parse(
        "",
        &[("MASKLINE_API_TLS_CERT", cert.to_str().unwrap())],
    ));
    assert_eq!(field, "api.tls.key");
    let c = parse(
        "",
        &[
            ("MASKLINE_API_TLS_CERT", cert.to_str().unwrap()),
            ("MASKLINE_API_TLS_KEY", cert.to_str().unwrap()),
        ],
    )
    .unwrap();
    assert!(c.api.tls.is_some());

    let (field, msg) = field_of(parse("", &[("MASKLINE_API_RATE_BURST", "lots")]));
    assert_eq!(field, "api.rate_burst");
    assert!(msg.contains("MASKLINE_API_RATE_BURST"), "{msg}");
    let (field, _) = field_of(parse("", &[("MASKLINE_STORE_DEMO_POOL", "maybe")]));
    assert_eq!(field, "store.demo_pool");
    let (field, msg) = field_of(parse("", &[("MASKLINE_STORE_BACKEND", "postgres")]));
    assert_eq!(field, "store.backend");
    assert!(msg.contains("postgres"), "{msg}");
    let (field, msg) = field_of(parse("", &[("MASKLINE_API_KEYS", "a:boss:sha256:00")]));
    assert_eq!(field, "api.keys[0].role");
    assert!(msg.contains("unknown role \"boss\""), "{msg}");
    let (field, _) = field_of(parse("", &[("MASKLINE_STORE_BAKCEND", "redis")]));
    assert_eq!(field, "MASKLINE_STORE_BAKCEND");
}

#[test]
fn secret_values_never_appear_in_errors_or_debug() {
    let secret = "c2VjcmV0LXRvby1zaG9ydA==";
    let err = parse("", &[("MASKLINE_SECRETS_HMAC_KEY", secret)]).unwrap_err();
    assert!(err.to_string().starts_with("secrets.hmac_key: "), "{err}");
    assert!(!err.to_string().contains(secret));
    let c = parse(&redis_toml(), &[]).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(&b64(&[7u8; 32])), "{dbg}");
    assert!(!dbg.contains(&b64(&[2u8; 32])), "{dbg}");
}

#[test]
fn unknown_toml_keys_are_named() {
    let (field, msg) = field_of(parse("[api]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n", &[]));
    assert_eq!(field, "api.lisen");
    assert!(msg.contains("unknown key"), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");
    let (field, _) = field_of(parse("[stor]\nbackend = \"memory\"\n", &[]));
    assert_eq!(field, "stor");
    let (field, _) = field_of(parse(
        "[api.tls]\ncert = \"a\"\nkey = \"b\"\nca = \"c\"\n",
        &[],
    ));
    assert_eq!(field, "api.tls.ca");
}

#[test]
fn wrong_types_and_enums_are_named() {
    let (field, msg) = field_of(parse("[api]\nlisten = 8080\n", &[]));
    assert_eq!(field, "api.listen");
    assert!(msg.contains("string"), "{msg}");
    let (field, msg) = field_of(parse("[store]\nbackend = \"mysql\"\n", &[]));
    assert_eq!(field, "store.backend");
    assert!(msg.contains("unknown backend \"mysql\""), "{msg}");
    let toml = format!(
        "[[api.keys]]\nname = \"a\"\nrole = \"app\"\nhash = \"{h}\"\n\
         [[api.keys]]\nname = \"b\"\nrole = \"boss\"\nhash = \"{h}\"\n",
        h = hash_hex()
    );
    let (field, msg) = field_of(parse(&toml, &[]));
    assert_eq!(field, "api.keys[1].role");
    assert!(msg.starts_with("unknown role \"boss\""), "{msg}");
}

#[test]
fn syntax_errors_name_the_file() {
    let err = parse("[api\nlisten = 1", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }));
    assert!(
        err.to_string().starts_with("config file test.toml: "),
        "{err}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let err = Config::load_with_env(
        Some(Path::new("/nonexistent/maskline.toml")),
        &HashMap::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/maskline.toml"),
        "{err}"
    );
}

#[test]
fn config_path_comes_from_flag_then_env_then_default() {
    let e = env(&[("MASKLINE_CONFIG", "/etc/m.toml")]);
    assert_eq!(
        Config::resolve_path(Some(Path::new("a.toml")), &e),
        Path::new("a.toml")
    );
    assert_eq!(Config::resolve_path(None, &e), Path::new("/etc/m.toml"));
    assert_eq!(
        Config::resolve_path(None, &HashMap::new()),
        Path::new(DEFAULT_PATH)
    );
}

#[test]
fn each_api_rule_names_its_field() {
    let cases: &[(&str, &str)] = &[
        ("[api]\nlisten = \"localhost\"", "api.listen"),
        ("[api]\nmax_body_bytes = 10", "api.max_body_bytes"),
        ("[api]\nrate_per_key_per_s = 0", "api.rate_per_key_per_s"),
        ("[api]\nrate_burst = 0", "api.rate_burst"),
        ("[api]\nheader_timeout_ms = 0", "api.header_timeout_ms"),
        ("[api]\nbody_timeout_ms = 10", "api.body_timeout_ms"),
        ("[api]\nidle_timeout_ms = 99999999", "api.idle_timeout_ms"),
        ("[api]\nmax_connections = 0", "api.max_connections"),
        (
            "[[api.keys]]\nname = \"\"\nrole = \"app\"\nhash = \"sha256:00\"",
            "api.keys[0].name",
        ),
        (
            "[[api.keys]]\nname = \"a\"\nrole = \"app\"\nhash = \"md5:00\"",
            "api.keys[0].hash",
        ),
        ("[[api.keys]]\nname = \"a\"\nrole = \"app\"", "api.keys[0]"),
    ];
    for (toml, want) in cases {
        let (field, _) = field_of(parse(toml, &[]));
        assert_eq!(&field, want, "for {toml:?}");
    }
    let dup_name = format!(
        "[[api.keys]]\nname = \"a\"\nrole = \"app\"\nhash = \"{}\"\n\
         [[api.keys]]\nname = \"a\"\nrole = \"ops\"\nhash = \"{}\"\n",
        api_key_hash("1"),
        api_key_hash("2")
    );
    assert_eq!(field_of(parse(&dup_name, &[])).0, "api.keys[1].name");
    let dup_hash = format!(
        "[[api.keys]]\nname = \"a\"\nrole = \"app\"\nhash = \"{h}\"\n\
         [[api.keys]]\nname = \"b\"\nrole = \"ops\"\nhash = \"{h}\"\n",
        h = api_key_hash("1")
    );
    assert_eq!(field_of(parse(&dup_hash, &[])).0, "api.keys[1].hash");
}

#[test]
fn each_store_and_log_rule_names_its_field() {
    let (field, _) = field_of(parse("[store]\nreaper_interval_ms = 0", &[]));
    assert_eq!(field, "store.reaper_interval_ms");
    let (field, _) = field_of(parse("[store]\nredis_timeout_ms = 1", &[]));
    assert_eq!(field, "store.redis_timeout_ms");
    let (field, _) = field_of(parse("[store]\nredis_connections = 0", &[]));
    assert_eq!(field, "store.redis_connections");
    let (field, _) = field_of(parse("[log]\nformat = \"xml\"", &[]));
    assert_eq!(field, "log.format");
    let (field, _) = field_of(parse("[log]\nlevel = \"maskline=loud\"", &[]));
    assert_eq!(field, "log.level");
    let bad_url = redis_toml().replace("redis://127.0.0.1:6379/", "http://127.0.0.1/");
    let (field, _) = field_of(parse(&bad_url, &[]));
    assert_eq!(field, "store.redis_url");
    // The memory store does not care about the Redis URL.
    parse("[store]\nredis_url = \"nonsense\"", &[]).unwrap();
}

#[test]
fn redis_requires_secrets_and_keys_in_that_order() {
    let full = redis_toml();
    let no_hmac: String = full
        .lines()
        .filter(|l| !l.starts_with("hmac_key"))
        .collect::<Vec<_>>()
        .join("\n");
    let (field, msg) = field_of(parse(&no_hmac, &[]));
    assert_eq!(field, "secrets.hmac_key");
    assert!(msg.contains("required"), "{msg}");
    let no_seal: String = full
        .lines()
        .filter(|l| !l.starts_with("seal_keys"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(field_of(parse(&no_seal, &[])).0, "secrets.seal_keys");
    let no_keys = full.replace("[[api.keys]]", "").replace(
        &format!(
            "name = \"platform\"\nrole = \"app\"\nhash = \"{}\"",
            hash_hex()
        ),
        "",
    );
    assert_eq!(field_of(parse(&no_keys, &[])).0, "api.keys");
    // Shipped memory config switched to redis by env alone: hmac_key is named first.
    let (field, _) = field_of(parse(SHIPPED, &[("MASKLINE_STORE_BACKEND", "redis")]));
    assert_eq!(field, "secrets.hmac_key");
}

#[test]
fn secret_formats_are_checked() {
    let short = format!("[secrets]\nhmac_key = \"{}\"", b64(&[1; 16]));
    assert_eq!(field_of(parse(&short, &[])).0, "secrets.hmac_key");
    let not_b64 = "[secrets]\nhmac_key = \"not base64!!\"";
    assert_eq!(field_of(parse(not_b64, &[])).0, "secrets.hmac_key");
    let cases = [
        format!("[\"{}\"]", b64(&[1; 32])),
        format!("[\"x:{}\"]", b64(&[1; 32])),
        format!("[\"0:{}\"]", b64(&[1; 32])),
        format!("[\"1:{}\"]", b64(&[1; 31])),
    ];
    for list in cases {
        let (field, msg) = field_of(parse(&format!("[secrets]\nseal_keys = {list}"), &[]));
        assert_eq!(field, "secrets.seal_keys[0]", "{list}");
        assert!(msg.contains("<id>:<base64 of 32 bytes>"), "{msg}");
    }
    let dup = format!(
        "[secrets]\nseal_keys = [\"1:{k}\", \"1:{k}\"]",
        k = b64(&[1; 32])
    );
    let (field, msg) = field_of(parse(&dup, &[]));
    assert_eq!(field, "secrets.seal_keys[1]");
    assert!(msg.contains("duplicate"), "{msg}");
    // URL-safe unpadded base64 is accepted too.
    let urlsafe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfb; 32]);
    parse(&format!("[secrets]\nhmac_key = \"{urlsafe}\""), &[]).unwrap();
}

#[test]
fn dev_admin_key_only_for_memory_without_keys() {
    let mut c = parse("", &[]).unwrap();
    let key = c.ensure_dev_admin_key().unwrap();
    assert!(key.starts_with(API_KEY_PREFIX));
    assert_eq!(c.api.keys.len(), 1);
    assert_eq!(c.api.keys[0].role, Role::Admin);
    assert!(c.api.keys[0].matches(&key));
    assert!(c.ensure_dev_admin_key().is_none(), "only once");
    let mut r = parse(&redis_toml(), &[]).unwrap();
    assert!(r.ensure_dev_admin_key().is_none());
}

#[test]
fn generated_keys_are_random_and_hash_as_documented() {
    let a = generate_api_key();
    let b = generate_api_key();
    assert_ne!(a, b);
    // mk_ + 43 chars of unpadded base64url (32 bytes).
    assert_eq!(a.len(), 3 + 43);
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&a[3..])
        .unwrap();
    assert_eq!(raw.len(), 32);
    // sha256("abc") is a well-known vector.
    assert_eq!(
        api_key_hash("abc"),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn role_parses_and_prints_config_spelling() {
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
    }
    assert!("root".parse::<Role>().unwrap_err().contains("unknown role"));
}

#[test]
fn every_env_override_is_documented_and_every_shipped_key_has_one() {
    for (var, field) in env::VARS {
        assert!(SHIPPED.contains(var), "{var} ({field}) is not documented");
    }
    // Every scalar key set in the shipped file has an override.
    let table: toml::Table = SHIPPED.parse().unwrap();
    for (section, v) in &table {
        for (key, value) in v.as_table().unwrap() {
            if value.is_table() || value.is_array() {
                continue;
            }
            let field = format!("{section}.{key}");
            assert!(
                env::VARS.iter().any(|(_, f)| *f == field),
                "{field} has no MASKLINE_ override"
            );
        }
    }
}

#[test]
fn env_can_switch_to_a_redis_cluster_with_sub_pools_and_replica_ack() {
    let keys = format!("admin:admin:{}", api_key_hash("k"));
    let seal = format!("1:{}", b64(&[1; 32]));
    let hmac = b64(&[9; 32]);
    let env = |nodes: &'static str| {
        [
            ("MASKLINE_STORE_BACKEND", "redis-cluster"),
            ("MASKLINE_STORE_CLUSTER_NODES", nodes),
            ("MASKLINE_STORE_SUBPOOLS", "3"),
            ("MASKLINE_STORE_REPLICA_ACK", "1"),
        ]
    };
    let mut pairs = env("redis://10.0.0.5:6379, redis://10.0.0.6:6379").to_vec();
    pairs.extend([
        ("MASKLINE_SECRETS_HMAC_KEY", hmac.as_str()),
        ("MASKLINE_SECRETS_SEAL_KEYS", seal.as_str()),
        ("MASKLINE_API_KEYS", keys.as_str()),
    ]);
    let c = parse(SHIPPED, &pairs).unwrap();
    assert_eq!(c.store.backend, Backend::RedisCluster);
    assert_eq!(
        c.store.cluster_nodes,
        ["redis://10.0.0.5:6379", "redis://10.0.0.6:6379"]
    );
    assert_eq!((c.store.subpools, c.store.replica_ack), (3, 1));
    // A cluster needs secrets like Redis does, and at least one usable seed node.
    let (field, _) = field_of(parse(SHIPPED, &env("redis://10.0.0.5:6379")));
    assert_eq!(field, "secrets.hmac_key");
    pairs[1] = ("MASKLINE_STORE_CLUSTER_NODES", "");
    assert_eq!(field_of(parse(SHIPPED, &pairs)).0, "store.cluster_nodes");
    pairs[1] = ("MASKLINE_STORE_CLUSTER_NODES", "http://10.0.0.5/");
    assert_eq!(field_of(parse(SHIPPED, &pairs)).0, "store.cluster_nodes[0]");
    pairs[1] = ("MASKLINE_STORE_CLUSTER_NODES", "redis://10.0.0.5:6379");
    pairs[2] = ("MASKLINE_STORE_SUBPOOLS", "65");
    assert_eq!(field_of(parse(SHIPPED, &pairs)).0, "store.subpools");
}

#[test]
fn sip_transaction_cap_and_spread_load_come_from_env_and_are_bounded() {
    let c = parse("", &[]).unwrap();
    assert_eq!(c.sip.max_transactions, 1_000_000);
    assert_eq!(c.sip.spread_from_pct, 35);
    let c = parse(
        "",
        &[
            ("MASKLINE_SIP_MAX_TRANSACTIONS", "50000"),
            ("MASKLINE_SIP_SPREAD_FROM_PCT", "0"),
        ],
    )
    .unwrap();
    assert_eq!(c.sip.max_transactions, 50_000);
    assert_eq!(c.sip.spread_from_pct, 0);
    let (field, msg) = field_of(parse("", &[("MASKLINE_SIP_MAX_TRANSACTIONS", "999")]));
    assert_eq!(field, "sip.max_transactions");
    assert!(msg.contains("between"), "{msg}");
    let (field, _) = field_of(parse("", &[("MASKLINE_SIP_SPREAD_FROM_PCT", "1601")]));
    assert_eq!(field, "sip.spread_from_pct");
}
