//! `cluster_bench`: allocation and route throughput of the Redis store on a Redis
//! Cluster, through the store itself (`RedisStore::create_binding` / `route`, the
//! calls a relay makes, without HTTP), with `--c` calls in flight.
//!
//! Creates a pool of `--subpools` sub-pools (slots), imports enough numbers, creates
//! `--n` bindings, then looks `--routes` of them up. For each phase it prints the
//! rate, latency percentiles, and the Redis CPU time per operation summed over the
//! masters (and over all nodes: replicas apply every write too), read from each
//! node's `INFO cpu`; and the masters' memory per live binding (`INFO memory`).
//! `loadtest/cluster/run.sh` runs it against 1 and 3 masters.

#[path = "../numbers.rs"]
mod numbers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use maskline::bindings::{now_ms, Created, NewBinding, PoolSpec};
use maskline::numbers::{NumberHasher, Sealer, E164};
use maskline::store::redis::{RedisOptions, RedisStore};
use maskline::store::BindingStore;
use rand::Rng;

/// Command-line options.
#[derive(Parser, Debug, Clone)]
#[command(about = "Allocation and route throughput of the Redis store on a Redis Cluster")]
struct Args {
    /// Cluster nodes, comma-separated `redis://host:port` (all of them: CPU and
    /// memory are read from each).
    #[arg(long)]
    nodes: String,
    /// Sub-pools (slots) of the pool.
    #[arg(long, default_value_t = 3)]
    subpools: u32,
    /// Bindings to create.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Route lookups.
    #[arg(long, default_value_t = 100_000)]
    routes: usize,
    /// Calls in flight.
    #[arg(long, default_value_t = 256)]
    c: usize,
    /// `max_bindings_per_number`.
    #[arg(long, default_value_t = 200)]
    cap: u32,
    /// Raw allocations (pre-built `EVALSHA`s, see the source) before the store
    /// phase; 0 skips them.
    #[arg(long, default_value_t = 0)]
    raw: usize,
    /// `replica_ack` of the store (replicas that must hold a binding before
    /// `create_binding` answers).
    #[arg(long, default_value_t = 0)]
    replica_ack: u32,
    /// Pick a pool name whose sub-pools' slots are on as many different masters as
    /// possible (placement is by hash: with few sub-pools, two may share a master).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    spread: bool,
    /// Store connections (each a cluster connection, one socket per node).
    #[arg(long, default_value_t = 1)]
    conns: usize,
}

/// Redis Cluster hash slot of a key's hash tag (CRC16/XMODEM mod 16384), for a
/// whole tag given without braces.
fn key_slot(tag: &str) -> u16 {
    let mut crc: u16 = 0;
    for b in tag.bytes() {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Slot ranges and the address of the master serving each (`CLUSTER SLOTS`).
async fn slot_owners(node: &str) -> Result<Vec<(u16, u16, String)>> {
    let mut c = redis::Client::open(node)?
        .get_multiplexed_async_connection()
        .await?;
    let v: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut c)
        .await?;
    let mut out = Vec::new();
    for r in v {
        if let redis::Value::Array(r) = r {
            let int = |v: Option<&redis::Value>| match v {
                Some(redis::Value::Int(i)) => Some(*i),
                _ => None,
            };
            let (Some(a), Some(b)) = (int(r.first()), int(r.get(1))) else {
                continue;
            };
            let port = match r.get(2) {
                Some(redis::Value::Array(m)) => int(m.get(1)).unwrap_or(0),
                _ => 0,
            };
            out.push((a as u16, b as u16, port.to_string()));
        }
    }
    Ok(out)
}

/// Per node: (is master, CPU seconds used, used_memory bytes).
async fn node_stats(nodes: &[String]) -> Result<Vec<(bool, f64, f64)>> {
    let mut out = Vec::new();
    for n in nodes {
        let mut c = redis::Client::open(n.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        let info: String = redis::cmd("INFO").query_async(&mut c).await?;
        let field = |k: &str| -> f64 {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        out.push((
            info.contains("role:master"),
            field("used_cpu_user:") + field("used_cpu_sys:"),
            field("used_memory:"),
        ));
    }
    Ok(out)
}

/// (master CPU s, all nodes CPU s, masters' memory bytes) between two readings.
fn delta(a: &[(bool, f64, f64)], b: &[(bool, f64, f64)]) -> (f64, f64, f64) {
    let (mut m, mut all, mut mem) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        all += y.1 - x.1;
        if y.0 {
            m += y.1 - x.1;
            mem += y.2 - x.2;
        }
    }
    (m, all, mem)
}

fn report(name: &str, ops: usize, secs: f64, h: &Histogram<u64>, d: (f64, f64, f64)) {
    println!(
        "{name}: {ops} in {secs:.2} s = {:.0}/s; latency µs p50 {} p99 {} max {}; Redis CPU \
         µs/op: masters {:.1}, all nodes {:.1}",
        ops as f64 / secs,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max(),
        d.0 * 1e6 / ops.max(1) as f64,
        d.1 * 1e6 / ops.max(1) as f64
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.n == 0 || args.c == 0 || args.cap == 0 {
        bail!("--n, --c and --cap must be positive");
    }
    let nodes: Vec<String> = args.nodes.split(',').map(str::to_owned).collect();
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    let store = Arc::new(
        RedisStore::connect_cluster(
            &nodes,
            NumberHasher::new(&key)?,
            Sealer::random(),
            RedisOptions {
                connections: args.conns,
                subpools: args.subpools,
                replica_ack: args.replica_ack,
                ..RedisOptions::default()
            },
        )
        .await?,
    );
    let mut run: u32 = rand::rng().random_range(0..1_000_000);
    let mut pool = format!("cb-{run}");
    if args.spread {
        let owners = slot_owners(&nodes[0]).await?;
        let masters = owners
            .iter()
            .map(|(_, _, m)| m)
            .collect::<std::collections::HashSet<_>>();
        let want = masters.len().min(args.subpools as usize);
        for _ in 0..10_000 {
            let mut used = std::collections::HashSet::new();
            for k in 0..args.subpools {
                let tag = if k == 0 {
                    pool.clone()
                } else {
                    format!("{pool}~{k}")
                };
                let slot = key_slot(&tag);
                if let Some((_, _, m)) = owners.iter().find(|(a, b, _)| (*a..=*b).contains(&slot)) {
                    used.insert(m.clone());
                }
            }
            if used.len() >= want {
                break;
            }
            run = rand::rng().random_range(0..1_000_000);
            pool = format!("cb-{run}");
        }
    }
    store
        .create_pool(PoolSpec {
            name: pool.clone(),
            country: 86,
            grace_s: 3600,
            cooling_s: 86_400,
            max_bindings_per_number: args.cap,
            allow_foreign_parties: false,
            extensions: false,
            extension_len: maskline::bindings::DEFAULT_EXTENSION_LEN,
        })
        .await?;
    // Room for every binding in every sub-pool (numbers split by hash) plus slack.
    let numbers =
        ((args.n + args.raw).div_ceil(args.cap as usize) * 5 / 4 + 8) * args.subpools as usize;
    numbers::import(store.as_ref(), &pool, u64::from(run), numbers).await?;
    println!(
        "pool {pool}: {} sub-pools, {numbers} numbers, cap {}; {} bindings, {} in flight",
        args.subpools, args.cap, args.n, args.c
    );
    let party = move |i: usize, side: u64| {
        E164::parse(&format!(
            "+86{}{:09}",
            130 + side,
            (run as usize * 7919 + i) % 1_000_000_000
        ))
    };

    // ---- raw allocation: the create script's EVALSHA commands, built beforehand
    // (hashing and sealing out of the timed part), sent with `--c` in flight over
    // one cluster connection: what the masters can take, with the client as cheap
    // as it gets.
    if args.raw > 0 {
        store.load_scripts().await?;
        let mut cmds = Vec::with_capacity(args.raw);
        for i in 0..args.raw {
            let j = args.n + i;
            let req = NewBinding {
                pool: pool.clone(),
                shipment_id: format!("R{run}-{j}"),
                party_a: party(j, 9)?,
                party_b: party(j, 7)?,
                expires_at: now_ms() + 3 * 86_400_000,
                area: None,
                extension: None,
            };
            cmds.push(store.create_command(&req, now_ms()).await?);
        }
        let cmds = Arc::new(cmds);
        let conn = maskline::store::redis::conn::cluster(&nodes, Duration::from_secs(5))?;
        let s0 = node_stats(&nodes).await?;
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..args.c {
            let (cmds, mut conn, c) = (cmds.clone(), conn.clone(), args.c);
            tasks.push(tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3)?;
                let mut made = 0usize;
                let mut i = w;
                while i < cmds.len() {
                    let t = Instant::now();
                    let v: redis::Value = cmds[i].query_async(&mut conn).await?;
                    h.record(t.elapsed().as_micros() as u64)?;
                    if let redis::Value::Array(a) = v {
                        if matches!(a.first(), Some(redis::Value::BulkString(t)) if t == b"n") {
                            made += 1;
                        }
                    }
                    i += c;
                }
                Ok::<_, anyhow::Error>((h, made))
            }));
        }
        let mut hist = Histogram::<u64>::new(3)?;
        let mut made = 0;
        for t in tasks {
            let (h, m) = t.await??;
            hist.add(h)?;
            made += m;
        }
        let secs = t0.elapsed().as_secs_f64();
        let s1 = node_stats(&nodes).await?;
        report("raw allocation", made, secs, &hist, delta(&s0, &s1));
    }

    // ---- allocation
    let s0 = node_stats(&nodes).await?;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.c {
        let (store, pool, n, c) = (store.clone(), pool.clone(), args.n, args.c);
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut made = Vec::new();
            let mut i = w;
            while i < n {
                let (a, b) = (party(i, 9)?, party(i, 7)?);
                let req = NewBinding {
                    pool: pool.clone(),
                    shipment_id: format!("S{run}-{i}"),
                    party_a: a.clone(),
                    party_b: b,
                    expires_at: now_ms() + 3 * 86_400_000,
                    area: None,
                    extension: None,
                };
                let t = Instant::now();
                if let Created::New(bd) = store.create_binding(req, now_ms()).await? {
                    made.push((bd.number, a));
                }
                h.record(t.elapsed().as_micros() as u64)?;
                i += c;
            }
            Ok::<_, anyhow::Error>((h, made))
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let mut made = Vec::new();
    for t in tasks {
        let (h, m) = t.await??;
        hist.add(h)?;
        made.extend(m);
    }
    let secs = t0.elapsed().as_secs_f64();
    let s1 = node_stats(&nodes).await?;
    let d = delta(&s0, &s1);
    report("allocation", made.len(), secs, &hist, d);
    let split: Vec<String> = s0
        .iter()
        .zip(&s1)
        .filter(|(_, b)| b.0)
        .map(|(a, b)| format!("{:.1}", b.1 - a.1))
        .collect();
    println!("allocation: CPU seconds per master: {}", split.join(", "));
    println!(
        "memory: masters' used_memory +{:.0} bytes for {} live bindings = {:.0} bytes/binding",
        d.2,
        made.len(),
        d.2 / made.len().max(1) as f64
    );

    // ---- routes
    if args.routes > 0 && !made.is_empty() {
        let made = Arc::new(made);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..args.c {
            let (store, pool, made, n, c) = (
                store.clone(),
                pool.clone(),
                made.clone(),
                args.routes,
                args.c,
            );
            tasks.push(tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3)?;
                let mut found = 0usize;
                let mut i = w;
                while i < n {
                    let (x, a) = &made[i % made.len()];
                    let t = Instant::now();
                    if store.route(&pool, x, a, now_ms()).await?.is_some() {
                        found += 1;
                    }
                    h.record(t.elapsed().as_micros() as u64)?;
                    i += c;
                }
                Ok::<_, anyhow::Error>((h, found))
            }));
        }
        let mut hist = Histogram::<u64>::new(3)?;
        let mut found = 0;
        for t in tasks {
            let (h, f) = t.await??;
            hist.add(h)?;
            found += f;
        }
        let secs = t0.elapsed().as_secs_f64();
        let s2 = node_stats(&nodes).await?;
        report("route", args.routes, secs, &hist, delta(&s1, &s2));
        if found != args.routes {
            bail!(
                "{} of {} route lookups found their binding",
                found,
                args.routes
            );
        }
    }
    Ok(())
}
