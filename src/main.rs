//! The `maskline` command: `serve`, `check-config`, `key new`, and the `pool` ops
//! commands (in [`cli`]) that talk to a running relay over HTTP.
//!
//! Owns process start-up: load and validate the config before anything binds, set up
//! telemetry, build the store, start the reaper, bind the API listener, print the
//! bound address, and drain on SIGINT/SIGTERM. stdout carries only what a person or
//! a script needs to read (address, one-time keys, `check-config` verdict); logs go
//! to stderr.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use maskline::bindings::{self, NumberSpec, PoolSpec};
use maskline::config::{self, Backend, Config, Role};
use maskline::events::{MemoryRecords, RecordStore, RedisRecords};
use maskline::media::MediaRelay;
use maskline::numbers::E164;
use maskline::store::open::redacted_url;
use maskline::store::{BindingStore, StoreError};
use maskline::voice::Voice;

/// The Redis Stream record store of `cfg`.
fn redis_records(cfg: &maskline::config::StoreConfig) -> anyhow::Result<Arc<dyn RecordStore>> {
    let client = maskline::store::redis::conn::Target::from_store_config(cfg)
        .context("store.redis_url / store.cluster_nodes")?;
    Ok(Arc::new(RedisRecords::new(
        client,
        RECORD_RETENTION,
        Duration::from_millis(cfg.redis_timeout_ms),
    )))
}

/// mimalloc instead of glibc's allocator: the SIP engine allocates and frees many
/// small buffers per message, and glibc's allocator (with its arena trimming and
/// page faults) took about a tenth of the CPU of a call's set-up in the
/// `loadtest/voice.sh` profile.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long call records are kept (the deletion period the industry follows).
const RECORD_RETENTION: Duration = Duration::from_secs(30 * 86_400);

#[derive(Parser, Debug)]
#[command(
    name = "maskline",
    version,
    about = "Virtual phone number privacy relay"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the relay: the HTTP API on `[api] listen`, backed by the configured store.
    Serve {
        /// Config file (default: $MASKLINE_CONFIG, else config/maskline.toml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check a config file (and MASKLINE_* overrides) without starting anything.
    CheckConfig {
        /// Config file (default: $MASKLINE_CONFIG, else config/maskline.toml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// API key management.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Pool administration on a running relay, over its HTTP API (--url, --key).
    Pool {
        #[command(flatten)]
        remote: cli::Remote,
        #[command(subcommand)]
        command: cli::pool::PoolCommand,
    },
    /// Shipment lookup on a running relay (ops, admin, auditor key).
    Shipment {
        #[command(flatten)]
        remote: cli::Remote,
        #[command(subcommand)]
        command: cli::ops::ShipmentCommand,
    },
    /// The audit log of a running relay (admin or auditor key).
    Audit {
        #[command(flatten)]
        remote: cli::Remote,
        #[command(flatten)]
        args: cli::ops::AuditArgs,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Make a new random API key; prints it once, and the config lines holding its hash.
    New {
        /// What the key may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Name shown in logs and audit entries (default: <role>-<random>).
        #[arg(long)]
        name: Option<String>,
    },
}

/// `--role` values (the config spelling).
#[derive(ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    App,
    Ops,
    Admin,
    Auditor,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::App => Role::App,
            RoleArg::Ops => Role::Ops,
            RoleArg::Admin => Role::Admin,
            RoleArg::Auditor => Role::Auditor,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::CheckConfig { config } => check_config(config.as_deref()),
        Command::Key {
            command: KeyCommand::New { role, name },
        } => key_new(role.into(), name),
        Command::Pool { remote, command } => {
            cli::pool::run(remote, command).map_err(anyhow::Error::from)
        }
        Command::Shipment { remote, command } => {
            cli::ops::shipment(remote, command).map_err(anyhow::Error::from)
        }
        Command::Audit { remote, args } => {
            cli::ops::audit(remote, args).map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `check-config`: OK and a one-line summary, or the error naming the field.
fn check_config(path: Option<&Path>) -> Result<()> {
    let env = config::env::process_env();
    let file = Config::resolve_path(path, &env);
    let cfg = Config::load_with_env(path, &env)?;
    println!(
        "OK: {} (store {}, listen {}, {} API key(s){})",
        file.display(),
        cfg.store.backend.name(),
        cfg.api.listen,
        cfg.api.keys.len(),
        if cfg.api.tls.is_some() { ", TLS" } else { "" }
    );
    Ok(())
}

/// `key new`: the key once, then the TOML (and env) lines holding only its hash.
fn key_new(role: Role, name: Option<String>) -> Result<()> {
    let name = match name {
        Some(n) => n,
        None => {
            let suffix = config::generate_api_key();
            let tail: String = suffix
                .chars()
                .skip(config::API_KEY_PREFIX.len())
                .filter(char::is_ascii_alphanumeric)
                .take(6)
                .collect();
            format!("{role}-{}", tail.to_ascii_lowercase())
        }
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        bail!("--name: use 1 to 64 letters, digits, '-', '_' or '.'");
    }
    let key = config::generate_api_key();
    let hash = config::api_key_hash(&key);
    println!("New {role} API key (shown only now; maskline stores only its hash):");
    println!();
    println!("{key}");
    println!();
    println!("Add to the config file:");
    println!();
    println!("[[api.keys]]");
    println!("name = \"{name}\"");
    println!("role = \"{role}\"");
    println!("hash = \"{hash}\"");
    println!();
    println!("or to the environment (comma-separate several keys):");
    println!("MASKLINE_API_KEYS={name}:{role}:{hash}");
    Ok(())
}

/// Name of the demo pool `serve` creates with the memory store.
const DEMO_POOL: &str = "demo";

/// `serve`: validate everything, then build, bind, announce, serve, drain.
fn serve(path: Option<&Path>) -> Result<()> {
    // Everything that can be checked without I/O is checked before the runtime starts.
    let mut cfg = Config::load(path)?;
    let addr = cfg.api.listen_addr()?;
    let secrets = cfg.secrets()?;
    let dev_key = cfg.ensure_dev_admin_key();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let metrics = maskline::telemetry::init(&cfg.log)?;
        let upkeep = maskline::telemetry::spawn_upkeep(metrics.clone());

        // Only config errors stop start-up: an unreachable Redis is waited for in the
        // background while the API answers 503 (a cold start brings the relay up first).
        let store = maskline::store::open::open(&cfg.store, &secrets).with_context(|| {
            format!(
                "store.redis_url: cannot use Redis at {}",
                redacted_url(&cfg.store.redis_url)
            )
        })?;
        let records: Arc<dyn RecordStore> = match cfg.store.backend {
            Backend::Memory => {
                tracing::warn!(
                    "store: in-memory and NOT durable: every pool and binding is lost when \
                     this process stops; use store.backend = \"redis\" in production"
                );
                if secrets.ephemeral {
                    tracing::warn!("secrets: none configured, using random per-process secrets");
                }
                if cfg.store.demo_pool {
                    create_demo_pool(store.as_ref()).await?;
                }
                Arc::new(MemoryRecords::new(100_000, RECORD_RETENTION))
            }
            Backend::Redis | Backend::RedisCluster => {
                if cfg.store.backend == Backend::RedisCluster {
                    tracing::info!(nodes = cfg.store.cluster_nodes.len(), "store: redis-cluster");
                } else {
                    tracing::info!(redis = %redacted_url(&cfg.store.redis_url), "store: redis");
                }
                if cfg.store.demo_pool {
                    tracing::info!("store.demo_pool is ignored with the redis store");
                }
                redis_records(&cfg.store)?
            }
        };

        let (stop_reaper, reaper_stopped) = tokio::sync::oneshot::channel::<()>();
        let reaper = tokio::spawn(maskline::store::reaper::run_reaper(
            store.clone(),
            Duration::from_millis(cfg.store.reaper_interval_ms),
            async move {
                let _ = reaper_stopped.await;
            },
        ));

        // TLS material and key table are checked by Api::new, before binding.
        let mut api = maskline::api::Api::with_records(
            &cfg.api,
            store.clone(),
            records.clone(),
            Some(metrics),
        )?;
        let shutdown = shutdown_signal()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            while !*rx.borrow() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("api.listen: cannot listen on {addr}"))?;
        let bound = listener.local_addr().context("api.listen: local address")?;
        let scheme = if api.is_tls() { "https" } else { "http" };
        if let Some(key) = &dev_key {
            println!(
                "WARNING: no API keys are configured: created a one-time admin key for this process."
            );
            println!(
                "WARNING: it is shown only now and forgotten at exit. Configure [[api.keys]] (maskline key new) for real use."
            );
            println!("admin key: {key}");
        }
        let voice = if cfg.sip.enabled {
            let media = MediaRelay::start(cfg.media.relay_config()?)
                .context("media: cannot start the media relay")?;
            // With Redis the SIP engine opens its own connections on its thread.
            let own: Option<maskline::voice::EngineStores> = match cfg.store.backend {
                Backend::Memory => None,
                _ => {
                    let (store_cfg, secrets) = (cfg.store.clone(), secrets.clone());
                    Some(Arc::new(move || {
                        let store = maskline::store::open::open(&store_cfg, &secrets)
                            .map_err(|e| e.to_string())?;
                        let records = redis_records(&store_cfg).map_err(|e| e.to_string())?;
                        Ok((store, records))
                    }))
                }
            };
            let voice =
                Voice::start_with(&cfg.sip, store.clone(), records.clone(), media, own).await?;
            for a in &voice.udp_addrs {
                println!("sip listening on udp:{a}");
            }
            for (k, a) in voice.engine_udp_addrs.iter().enumerate() {
                println!("sip engine {} listening on udp:{a}", k + 1);
            }
            for a in &voice.tcp_addrs {
                println!("sip listening on tcp:{a}");
            }
            for a in &voice.tls_addrs {
                println!("sip listening on tls:{a}");
            }
            Some(voice)
        } else {
            None
        };
        let sms = if cfg.sms.enabled {
            let sms = maskline::sms::Sms::start(&cfg.sms, &cfg.store, &secrets, store.clone(), records.clone())?;
            api = api.with_sms(sms.gateway());
            Some(sms)
        } else {
            None
        };
        println!("listening on {scheme}://{bound}");
        tracing::info!(%bound, scheme, "maskline serving");

        let api_done = api.serve(listener, wait_stop(stop_rx.clone()));
        let voice_done = async {
            if let Some(v) = voice {
                wait_stop(stop_rx.clone()).await;
                v.shutdown().await;
                tracing::info!("sip: stopped: live calls ended");
            }
        };
        let sms_done = async {
            if let Some(s) = sms {
                wait_stop(stop_rx.clone()).await;
                s.shutdown().await;
                tracing::info!("sms: stopped: queued texts stay queued");
            }
        };
        let (api_result, (), ()) = tokio::join!(api_done, voice_done, sms_done);
        api_result?;
        tracing::info!("stopped: in-flight requests answered");
        let _ = stop_reaper.send(());
        let _ = reaper.await;
        upkeep.abort();
        Ok(())
    })
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal that arrives right after
/// start-up drains instead of killing) and returns a future that resolves on either.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT: draining"),
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
        }
    })
}

/// Ctrl-C where there are no Unix signals.
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: draining");
        } else {
            std::future::pending::<()>().await;
        }
    })
}

/// Pool `demo` (country 86) with eight `+86170...` numbers in two areas.
async fn create_demo_pool(store: &dyn BindingStore) -> Result<()> {
    let spec = PoolSpec {
        name: DEMO_POOL.into(),
        country: 86,
        grace_s: bindings::DEFAULT_GRACE_S,
        cooling_s: bindings::DEFAULT_COOLING_S,
        max_bindings_per_number: bindings::DEFAULT_MAX_BINDINGS_PER_NUMBER,
        allow_foreign_parties: false,
        extensions: false,
        extension_len: bindings::DEFAULT_EXTENSION_LEN,
    };
    match store.create_pool(spec).await {
        Ok(()) | Err(StoreError::PoolExists(_)) => {}
        Err(e) => return Err(e).context("creating the demo pool"),
    }
    let mut numbers = Vec::new();
    for i in 1..=8u32 {
        let number = E164::parse(&format!("+861700000000{i}")).context("demo pool number")?;
        numbers.push(NumberSpec {
            number,
            area: Some(if i <= 4 { "shanghai" } else { "beijing" }.into()),
            capabilities: Default::default(),
        });
    }
    let outcome = store
        .import_numbers(DEMO_POOL, numbers)
        .await
        .context("importing the demo pool's numbers")?;
    tracing::info!(
        pool = DEMO_POOL,
        added = outcome.added,
        "demo pool ready (country 86, numbers +8617000000001..8, areas shanghai/beijing)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses_the_contract_commands() {
        let cli = Cli::try_parse_from(["maskline", "serve", "--config", "x.toml"]).unwrap();
        assert!(matches!(cli.command, Command::Serve { config: Some(_) }));
        let cli = Cli::try_parse_from(["maskline", "key", "new", "--role", "app", "--name", "n"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Command::Key {
                command: KeyCommand::New {
                    role: RoleArg::App,
                    ..
                }
            }
        ));
        assert!(Cli::try_parse_from(["maskline", "key", "new"]).is_err());
        assert!(Cli::try_parse_from(["maskline", "check-config"]).is_ok());
        // Remote options go before or after the pool subcommand.
        let cli = Cli::try_parse_from([
            "maskline",
            "pool",
            "--url",
            "http://h:1",
            "import",
            "p",
            "-",
            "--format",
            "csv",
            "--key",
            "k",
        ])
        .unwrap();
        let Command::Pool { remote, command } = cli.command else {
            panic!("not a pool command");
        };
        assert_eq!(remote.url.as_deref(), Some("http://h:1"));
        assert!(remote.key.is_some());
        assert!(matches!(
            command,
            cli::pool::PoolCommand::Import {
                format: Some(cli::pool::Format::Csv),
                ..
            }
        ));
        assert!(Cli::try_parse_from(["maskline", "pool", "create", "p"]).is_err());
        assert!(Cli::try_parse_from(["maskline", "pool", "retire", "p"]).is_err());
    }
}
