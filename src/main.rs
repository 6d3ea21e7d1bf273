//! The `maskline` command: `serve`, `check-config` and `key new`.
//!
//! Owns process start-up: load and validate the config before anything binds, set up
//! telemetry, build the store, start the reaper, bind the API listener, print the
//! bound address, and drain on SIGINT/SIGTERM. stdout carries only what a person or
//! a script needs to read (address, one-time keys, `check-config` verdict); logs go
//! to stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use maskline::config::{self, Config, Role};

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
        Command::CheckConfig { config } => check_config(config.as_deref()),
        Command::Key {
            command: KeyCommand::New { role, name },
        } => key_new(role.into(), name),
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
        match cfg.store.backend {
            config::Backend::Memory => "memory",
            config::Backend::Redis => "redis",
        },
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
