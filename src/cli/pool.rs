//! `maskline pool list|stats|create|import|retire` (and the ops console's
//! `ls|show|quarantine|release`, in [`super::ops`]): pool administration through
//! the relay's `/v1/pools` API.
//!
//! Answers are printed as the server's JSON, pretty; `import` prints a summary line
//! (`added N, skipped N, errors N`) and then each bad entry with its CSV line or JSON
//! index, so an operator can fix the file and import it again (numbers already in
//! the pool are skipped). An import with any rejected entry exits non-zero.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use hyper::Method;

use super::{segment, CliError, Relay, Remote};

/// `maskline pool ...`
#[derive(Subcommand, Debug)]
pub enum PoolCommand {
    /// List the pools and their settings.
    List,
    /// A pool's statistics: numbers and their state and load, live bindings, cooling.
    Stats {
        /// Pool name.
        pool: String,
    },
    /// Create a pool (admin key).
    Create {
        /// Pool name.
        pool: String,
        /// Country calling code of the pool's numbers (86, 1, 44, ...); numbers
        /// imported without a leading + are read in this country.
        #[arg(long, value_name = "CC")]
        country: u16,
        /// Seconds a binding lives on after `delivered` (server default: 72 h).
        #[arg(long, value_name = "N")]
        grace_s: Option<u64>,
        /// Seconds before a party may get the same number again (server default: 24 h).
        #[arg(long, value_name = "N")]
        cooling_s: Option<u64>,
        /// Most live bindings one number may carry.
        #[arg(long, value_name = "N")]
        max_bindings_per_number: Option<u32>,
        /// Accept parties (courier, customer) of other countries than --country.
        #[arg(long)]
        allow_foreign_parties: bool,
    },
    /// Import numbers from a CSV (`number,area[,voice,sms]` header) or JSON
    /// (`{"numbers":[{"number","area"}]}`) file (admin key).
    Import {
        /// Pool name.
        pool: String,
        /// `.csv` or `.json` file, or `-` for stdin (with --format).
        file: PathBuf,
        /// File format (default: from the file's extension; required for stdin).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Retire a number: no new bindings, existing ones live out (admin key; with
    /// --reason an ops key may, and the change is audited).
    Retire {
        /// Pool name.
        pool: String,
        /// The virtual number, E.164 (`+8617000000001`).
        number: String,
        /// Why (written to the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The pools at a glance: numbers, live bindings, busiest party, sizing.
    Ls {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// One pool: overview, sizing advice, busiest parties, numbers with health.
    Show {
        /// Pool name.
        pool: String,
        /// Numbers listed (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Quarantine a number (e.g. flagged as spam): no new bindings, existing ones
    /// live out (ops or admin key; audited).
    Quarantine {
        /// Pool name.
        pool: String,
        /// The virtual number.
        number: String,
        /// Why (required; written to the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Return a quarantined or retired number to service (ops or admin key; audited).
    Release {
        /// Pool name.
        pool: String,
        /// The virtual number.
        number: String,
        /// Why (required; written to the audit log).
        #[arg(long)]
        reason: String,
    },
}

/// Import file formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Sent as `text/csv`.
    Csv,
    /// Sent as `application/json`.
    Json,
}

impl Format {
    fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Json => "application/json",
        }
    }
}

/// The format to send `file` as: `--format`, else its extension.
fn format_of(file: &Path, format: Option<Format>) -> Result<Format, CliError> {
    if let Some(f) = format {
        return Ok(f);
    }
    if file == Path::new("-") {
        return Err(CliError::Usage(
            "reading numbers from stdin: say --format csv or --format json".into(),
        ));
    }
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(Format::Csv),
        Some("json") => Ok(Format::Json),
        _ => Err(CliError::Usage(format!(
            "{}: cannot tell the format from the name; use a .csv or .json file or --format",
            file.display()
        ))),
    }
}

fn read_input(file: &Path) -> Result<Vec<u8>, CliError> {
    if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|error| CliError::Read {
                what: "stdin".into(),
                error,
            })?;
        Ok(buf)
    } else {
        std::fs::read(file).map_err(|error| CliError::Read {
            what: file.display().to_string(),
            error,
        })
    }
}

fn print_pretty(v: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::BadAnswer(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// The import summary: `added N, skipped N, errors N`, then one line per error.
fn import_summary(v: &serde_json::Value) -> Result<String, CliError> {
    let count = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| CliError::BadAnswer(format!("no '{k}' count in {v}")))
    };
    let errors = v
        .get("errors")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| CliError::BadAnswer(format!("no 'errors' list in {v}")))?;
    let mut out = format!(
        "added {}, skipped {}, errors {}",
        count("added")?,
        count("skipped")?,
        errors.len()
    );
    for e in errors {
        let message = e
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let at = match (
            e.get("line").and_then(serde_json::Value::as_u64),
            e.get("index").and_then(serde_json::Value::as_u64),
        ) {
            (Some(l), _) => format!("line {l}"),
            (None, Some(i)) => format!("index {i}"),
            (None, None) => "entry".into(),
        };
        out.push_str(&format!("\n  {at}: {message}"));
    }
    Ok(out)
}

/// Runs one `pool` command against the relay.
pub fn run(remote: Remote, command: PoolCommand) -> Result<(), CliError> {
    // Check local inputs before anything touches the network.
    let import = match &command {
        PoolCommand::Import { file, format, .. } => {
            let format = format_of(file, *format)?;
            Some((format, read_input(file)?))
        }
        _ => None,
    };
    let relay = Relay::from_options(remote)?;
    match command {
        PoolCommand::List => print_pretty(&relay.send(Method::GET, "/v1/pools", None)?.json()?),
        PoolCommand::Stats { pool } => print_pretty(
            &relay
                .send(Method::GET, &format!("/v1/pools/{}", segment(&pool)), None)?
                .json()?,
        ),
        PoolCommand::Create {
            pool,
            country,
            grace_s,
            cooling_s,
            max_bindings_per_number,
            allow_foreign_parties,
        } => {
            let mut body = serde_json::json!({ "name": pool, "country": country,
                                               "allow_foreign_parties": allow_foreign_parties });
            for (k, v) in [
                ("grace_s", grace_s),
                ("cooling_s", cooling_s),
                (
                    "max_bindings_per_number",
                    max_bindings_per_number.map(u64::from),
                ),
            ] {
                if let (Some(v), Some(obj)) = (v, body.as_object_mut()) {
                    obj.insert(k.into(), v.into());
                }
            }
            let bytes = serde_json::to_vec(&body).map_err(|e| CliError::Usage(e.to_string()))?;
            print_pretty(
                &relay
                    .send(Method::POST, "/v1/pools", Some(("application/json", bytes)))?
                    .json()?,
            )
        }
        PoolCommand::Import { pool, .. } => {
            let Some((format, bytes)) = import else {
                return Err(CliError::Usage("import: nothing read".into()));
            };
            let answer = match format {
                Format::Csv => {
                    let text = String::from_utf8(bytes)
                        .map_err(|_| CliError::Usage("the CSV file is not UTF-8".into()))?;
                    super::ops::import_csv(&relay, &pool, &text)?
                }
                Format::Json => relay
                    .send(
                        Method::POST,
                        &format!("/v1/pools/{}/numbers", segment(&pool)),
                        Some((format.media_type(), bytes)),
                    )?
                    .json()?,
            };
            println!("{}", import_summary(&answer)?);
            match answer.get("errors").and_then(serde_json::Value::as_array) {
                Some(errors) if !errors.is_empty() => Err(CliError::Rejected(errors.len())),
                _ => Ok(()),
            }
        }
        PoolCommand::Ls { json } => super::ops::pool_ls(&relay, json),
        PoolCommand::Show { pool, limit, json } => {
            super::ops::pool_show(&relay, &pool, limit, json)
        }
        PoolCommand::Quarantine {
            pool,
            number,
            reason,
        } => super::ops::set_state(&relay, &pool, &number, "quarantine", &reason),
        PoolCommand::Release {
            pool,
            number,
            reason,
        } => super::ops::set_state(&relay, &pool, &number, "release", &reason),
        PoolCommand::Retire {
            pool,
            number,
            reason: Some(reason),
        } => super::ops::set_state(&relay, &pool, &number, "retire", &reason),
        PoolCommand::Retire { pool, number, .. } => {
            relay.send(
                Method::DELETE,
                &format!(
                    "/v1/pools/{}/numbers/{}",
                    segment(&pool),
                    segment(number.trim())
                ),
                None,
            )?;
            // Virtual numbers belong to the operator: shown in clear, as in stats.
            println!(
                "retired {} in pool {pool}: no new bindings; existing ones live out",
                number.trim()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn format_comes_from_the_flag_or_the_extension() {
        assert_eq!(format_of(Path::new("n.csv"), None).unwrap(), Format::Csv);
        assert_eq!(
            format_of(Path::new("dir/N.JSON"), None).unwrap(),
            Format::Json
        );
        assert_eq!(
            format_of(Path::new("n.txt"), Some(Format::Csv)).unwrap(),
            Format::Csv
        );
        assert_eq!(
            format_of(Path::new("-"), Some(Format::Json)).unwrap(),
            Format::Json
        );
        let e = format_of(Path::new("-"), None).unwrap_err().to_string();
        assert!(e.contains("--format"), "{e}");
        assert!(format_of(Path::new("numbers"), None).is_err());
        assert_eq!(Format::Csv.media_type(), "text/csv");
    }

    #[test]
    fn import_summary_lists_each_error_with_its_place() {
        let v = serde_json::json!({
            "added": 2, "skipped": 1,
            "errors": [
                {"line": 3, "message": "number: not a phone number"},
                {"index": 0, "message": "unknown field"}
            ]
        });
        assert_eq!(
            import_summary(&v).unwrap(),
            "added 2, skipped 1, errors 2\n  line 3: number: not a phone number\n  index 0: unknown field"
        );
        assert!(import_summary(&serde_json::json!({"added": 1})).is_err());
    }
}
