//! The ops console's commands: `pool ls|show|quarantine|release` (and `retire
//! --reason`), `shipment show ID`, `audit [--since]`, and the chunked CSV import
//! with a progress bar. Readable aligned tables by default, `--json` for scripts.
//! Parties stay masked unless an auditor asks `shipment show --reveal --reason`,
//! which the relay audits before answering.

use clap::{Args, Subcommand};
use hyper::Method;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::table::{cell, pct, render};
use super::{segment, CliError, Relay, Remote};

/// CSV data lines sent per request by `pool import` (each chunk repeats the header).
pub const IMPORT_CHUNK: usize = 10_000;

fn print_json(v: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::BadAnswer(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn get(relay: &Relay, path: &str) -> Result<Value, CliError> {
    relay.send(Method::GET, path, None)?.json()
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `pool ls`: one line per pool with its load and sizing verdict.
pub fn pool_ls(relay: &Relay, as_json: bool) -> Result<(), CliError> {
    let pools = get(relay, "/v1/pools")?;
    let mut overviews = Vec::new();
    for p in arr(&pools, "pools") {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        overviews.push(get(
            relay,
            &format!("/v1/pools/{}/overview", segment(name)),
        )?);
    }
    if as_json {
        return print_json(&json!({ "pools": overviews }));
    }
    let rows: Vec<Vec<String>> = overviews
        .iter()
        .map(|o| {
            vec![
                cell(&o["pool"]["name"]),
                cell(&o["numbers"]["active"]),
                cell(&o["numbers"]["quarantined"]),
                cell(&o["numbers"]["draining"]),
                cell(&o["live_bindings"]),
                cell(&o["cooling"]),
                pct(&o["sizing"]["peak_party_exhaustion"]),
                cell(&o["last_hour"]["exhausted"]),
                if o["sizing"]["add_now"] == true {
                    format!("add {}", cell(&o["sizing"]["add"]))
                } else {
                    "ok".into()
                },
            ]
        })
        .collect();
    println!(
        "{}",
        render(
            &[
                "pool",
                "active",
                "quarantined",
                "draining",
                "live",
                "cooling",
                "peak party",
                "exhausted 1h",
                "sizing",
            ],
            &rows
        )
    );
    Ok(())
}

/// `pool show POOL`: the overview, then the first page of numbers with health.
pub fn pool_show(relay: &Relay, pool: &str, limit: u32, as_json: bool) -> Result<(), CliError> {
    let o = get(relay, &format!("/v1/pools/{}/overview", segment(pool)))?;
    let n = get(
        relay,
        &format!("/v1/pools/{}/numbers?limit={limit}", segment(pool)),
    )?;
    if as_json {
        return print_json(&json!({ "overview": o, "numbers": n }));
    }
    let q = &o["bindings_per_number"];
    let facts = vec![
        vec!["numbers active".into(), cell(&o["numbers"]["active"])],
        vec!["numbers draining".into(), cell(&o["numbers"]["draining"])],
        vec!["numbers retired".into(), cell(&o["numbers"]["retired"])],
        vec![
            "numbers quarantined".into(),
            cell(&o["numbers"]["quarantined"]),
        ],
        vec!["live bindings".into(), cell(&o["live_bindings"])],
        vec!["cooling holds".into(), cell(&o["cooling"])],
        vec![
            "bindings/number min/med/p95/max".into(),
            format!(
                "{}/{}/{}/{}",
                cell(&q["min"]),
                cell(&q["median"]),
                cell(&q["p95"]),
                cell(&q["max"])
            ),
        ],
        vec![
            "allocations 1h / 24h".into(),
            format!(
                "{} / {}",
                cell(&o["last_hour"]["allocations"]),
                cell(&o["last_day"]["allocations"])
            ),
        ],
        vec![
            "pool_exhausted 1h / 24h".into(),
            format!(
                "{} / {}",
                cell(&o["last_hour"]["exhausted"]),
                cell(&o["last_day"]["exhausted"])
            ),
        ],
    ];
    println!("pool {pool}\n{}", render(&["", ""], &facts));
    let s = &o["sizing"];
    println!(
        "\nsizing: {} ({} recommended, {} in service)\n  {}",
        if s["add_now"] == true {
            format!("ADD {} NUMBERS NOW", cell(&s["add"]))
        } else {
            "sufficient".into()
        },
        cell(&s["recommended_numbers"]),
        cell(&s["in_service"]),
        cell(&s["reason"])
    );
    let parties: Vec<Vec<String>> = arr(&o, "busiest_parties")
        .iter()
        .map(|p| {
            vec![
                cell(&p["party"]),
                cell(&p["live_bindings"]),
                pct(&p["exhaustion"]),
            ]
        })
        .collect();
    if !parties.is_empty() {
        println!(
            "\n{}",
            render(&["busiest party (masked)", "live", "of pool"], &parties)
        );
    }
    let rows: Vec<Vec<String>> = arr(&n, "numbers")
        .iter()
        .map(|x| {
            vec![
                cell(&x["number"]),
                cell(&x["state"]),
                cell(&x["live_bindings"]),
                cell(&x["calls_24h"]),
                cell(&x["texts_24h"]),
                pct(&x["answer_ratio"]),
                pct(&x["short_call_ratio"]),
                cell(&x["rejections_24h"]),
                if x["suspect"] == true {
                    format!("SUSPECT: {}", cell(&x["evidence"]))
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    println!(
        "\n{}",
        render(
            &[
                "number", "state", "live", "calls", "texts", "answered", "short", "rejected",
                "health"
            ],
            &rows
        )
    );
    if let Some(c) = n.get("next_cursor").and_then(Value::as_str) {
        println!("(more numbers: --json and the API's cursor={c})");
    }
    Ok(())
}

/// `pool quarantine|release|retire --reason`: an audited state change.
pub fn set_state(
    relay: &Relay,
    pool: &str,
    number: &str,
    verb: &str,
    reason: &str,
) -> Result<(), CliError> {
    let body = serde_json::to_vec(&json!({ "reason": reason }))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let v = relay
        .send(
            Method::POST,
            &format!(
                "/v1/pools/{}/numbers/{}/{verb}",
                segment(pool),
                segment(number.trim())
            ),
            Some(("application/json", body)),
        )?
        .json()?;
    println!(
        "{}: {} -> {} (audited)",
        cell(&v["number"]),
        cell(&v["previous"]),
        cell(&v["state"])
    );
    Ok(())
}

/// `maskline shipment ...`
#[derive(Subcommand, Debug)]
pub enum ShipmentCommand {
    /// A shipment's bindings (X, extension, expiry, state) and its call and SMS
    /// records, parties masked.
    Show {
        /// Shipment id.
        id: String,
        /// Show the parties in clear (auditor key; written to the audit log first).
        #[arg(long, requires = "reason")]
        reveal: bool,
        /// Why you reveal (required with --reveal).
        #[arg(long)]
        reason: Option<String>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `maskline shipment ...`.
pub fn shipment(remote: Remote, command: ShipmentCommand) -> Result<(), CliError> {
    let relay = Relay::from_options(remote)?;
    let ShipmentCommand::Show {
        id,
        reveal,
        reason,
        json: as_json,
    } = command;
    let mut path = format!("/v1/shipments/{}", segment(&id));
    if reveal {
        path.push_str(&format!(
            "?reveal=true&reason={}",
            segment(reason.as_deref().unwrap_or(""))
        ));
    }
    let s = get(&relay, &path)?;
    if as_json {
        return print_json(&s);
    }
    let b: Vec<Vec<String>> = arr(&s, "bindings")
        .iter()
        .map(|b| {
            [
                "pool",
                "number",
                "extension",
                "party_a",
                "party_b",
                "expires_at",
                "state",
            ]
            .iter()
            .map(|k| cell(b.get(*k).unwrap_or(&Value::Null)))
            .collect()
        })
        .collect();
    println!(
        "shipment {id}{}\n{}",
        if s["revealed"] == true {
            " (revealed; audited)"
        } else {
            ""
        },
        render(
            &["pool", "X", "ext", "party A", "party B", "expires", "state"],
            &b
        )
    );
    let calls: Vec<Vec<String>> = arr(&s, "calls")
        .iter()
        .map(|c| {
            vec![
                cell(&c["number"]),
                cell(&c["caller"]),
                cell(&c["callee"]),
                cell(&c["end_reason"]),
                format!("{}", c["duration_ms"].as_u64().unwrap_or(0) / 1000),
            ]
        })
        .collect();
    println!(
        "\ncalls\n{}",
        render(&["X", "caller", "callee", "result", "seconds"], &calls)
    );
    let texts: Vec<Vec<String>> = arr(&s, "messages")
        .iter()
        .map(|m| {
            vec![
                cell(&m["number"]),
                cell(&m["sender"]),
                cell(&m["recipient"]),
                cell(&m["status"]),
            ]
        })
        .collect();
    println!(
        "\ntexts\n{}",
        render(&["X", "sender", "recipient", "status"], &texts)
    );
    Ok(())
}

/// `maskline audit` options.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only entries since this time: RFC 3339, or an age such as 30m, 24h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// Only this API key name.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action (e.g. number.quarantine, shipment.read_unmasked).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this pool.
    #[arg(long)]
    pub pool: Option<String>,
    /// At most this many entries (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Print the server's JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (at,actor,role,action,target,pool,reason).
    #[arg(long)]
    pub csv: bool,
}

/// `--since` as RFC 3339: given as such, or as an age before now.
fn since_rfc3339(s: &str) -> Result<String, CliError> {
    let s = s.trim();
    let unit = |c: char| match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        _ => None,
    };
    if let Some(last) = s.chars().last() {
        if let (Some(mult), Ok(n)) = (unit(last), s[..s.len() - 1].parse::<i64>()) {
            let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(n * mult);
            return t
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| CliError::Usage(e.to_string()));
        }
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|_| s.to_owned())
        .map_err(|_| {
            CliError::Usage(format!(
                "--since {s}: an RFC 3339 time (2026-12-01T00:00:00Z) or an age (30m, 24h, 7d)"
            ))
        })
}

/// Runs `maskline audit`.
pub fn audit(remote: Remote, a: AuditArgs) -> Result<(), CliError> {
    let mut q = vec![format!("limit={}", a.limit)];
    if let Some(s) = &a.since {
        q.push(format!("since={}", segment(&since_rfc3339(s)?)));
    }
    for (k, v) in [
        ("actor", &a.actor),
        ("action", &a.action),
        ("pool", &a.pool),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", segment(v)));
        }
    }
    if a.csv {
        q.push("format=csv".into());
    }
    let relay = Relay::from_options(remote)?;
    let answer = relay.send(Method::GET, &format!("/v1/audit?{}", q.join("&")), None)?;
    if a.csv {
        print!("{}", String::from_utf8_lossy(&answer.body));
        return Ok(());
    }
    let v = answer.json()?;
    if a.json {
        return print_json(&v);
    }
    let rows: Vec<Vec<String>> = arr(&v, "entries")
        .iter()
        .map(|e| {
            ["at", "actor", "role", "action", "target", "pool", "reason"]
                .iter()
                .map(|k| cell(e.get(*k).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect();
    println!(
        "{}",
        render(
            &["at", "actor", "role", "action", "target", "pool", "reason"],
            &rows
        )
    );
    Ok(())
}

/// Sends a CSV import in chunks of [`IMPORT_CHUNK`] lines (each with the header),
/// with a progress bar on a terminal; line numbers in the merged answer are the
/// file's own (the header is line 1).
pub fn import_csv(relay: &Relay, pool: &str, text: &str) -> Result<Value, CliError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(h) = lines.iter().position(|l| !l.trim().is_empty()) else {
        // Let the server word the error.
        return relay
            .send(
                Method::POST,
                &format!("/v1/pools/{}/numbers", segment(pool)),
                Some(("text/csv", text.as_bytes().to_vec())),
            )?
            .json();
    };
    let data = lines.len().saturating_sub(h + 1);
    let bar = ProgressBar::new(data as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} numbers {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut added, mut skipped, mut errors) = (0u64, 0u64, Vec::new());
    let mut start = h + 1;
    while start < lines.len() || start == h + 1 {
        let end = (start + IMPORT_CHUNK).min(lines.len());
        let mut chunk = String::from(lines[h]);
        for l in &lines[start..end] {
            chunk.push('\n');
            chunk.push_str(l);
        }
        let v = relay
            .send(
                Method::POST,
                &format!("/v1/pools/{}/numbers", segment(pool)),
                Some(("text/csv", chunk.into_bytes())),
            )?
            .json()?;
        added += v["added"].as_u64().unwrap_or(0);
        skipped += v["skipped"].as_u64().unwrap_or(0);
        for e in arr(&v, "errors") {
            let mut e = e.clone();
            if let Some(l) = e.get("line").and_then(Value::as_u64) {
                // Chunk line 1 is the header; line 2 is lines[start].
                e["line"] = json!(start as u64 + l - 1);
            }
            errors.push(e);
        }
        bar.set_position((end - h - 1) as u64);
        if end >= lines.len() {
            break;
        }
        start = end;
    }
    bar.finish_and_clear();
    Ok(json!({ "added": added, "skipped": skipped, "errors": errors }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn since_takes_an_age_or_a_time() {
        assert_eq!(
            since_rfc3339("2026-12-01T00:00:00Z").unwrap(),
            "2026-12-01T00:00:00Z"
        );
        assert!(since_rfc3339("24h").unwrap().ends_with('Z'));
        assert!(since_rfc3339("yesterday").is_err());
    }
}
