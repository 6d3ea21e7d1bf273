//! `store_bench`: the Redis store measured without the HTTP API.
//!
//! Against a running Redis (`--url`), in one run:
//! 1. **load / raw allocation ceiling**: creates a pool with enough numbers for `--n`
//!    bindings at `--cap` per number, then drives the allocation script directly
//!    (`EVALSHA`, `--conns` connections, `--pipeline` commands in flight per
//!    connection) until `--n` bindings exist → bindings/s;
//! 2. **memory**: `INFO memory` `used_memory` before and after the load, per live
//!    binding, plus `MEMORY USAGE` of a sample of each key kind;
//! 3. **route**: `--routes` lookups through `RedisStore::route` (one `GET` each) from
//!    `--c` concurrent tasks sharing the store's multiplexed connections → lookups/s
//!    with p50/p99/p99.9 latency;
//! 4. **store create**: `--creates` bindings through `RedisStore::create_binding`
//!    from `--c` tasks (hashing, sealing, script, decoding) → bindings/s.
//!
//! Parties are synthetic: a courier per 100 bindings (so couriers hold many numbers,
//! as real ones do) and a fresh customer per binding. Everything lives in a fresh pool
//! `sb-<random>`; `--keep` leaves it in Redis (default: the run's keys are deleted).

#[path = "../numbers.rs"]
mod numbers;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use maskline::bindings::{now_ms, Created, NewBinding, PoolSpec};
use maskline::numbers::{NumberHasher, Sealer, E164};
use maskline::store::redis::{RedisOptions, RedisStore};
use maskline::store::{BindingStore, StoreError};
use rand::Rng;
use redis::Value;

/// Command-line options.
#[derive(Parser, Debug, Clone)]
#[command(
    about = "Redis store benchmark: raw allocation ceiling, memory per binding, route lookups"
)]
struct Args {
    /// Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    url: String,
    /// Bindings to load (raw allocation phase; memory is measured over them).
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Live bindings per number (`max_bindings_per_number` of the pool).
    #[arg(long, default_value_t = 200)]
    cap: u32,
    /// Connections driving the allocation script in the raw phase.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Commands in flight per connection in the raw phase.
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
    /// Multiplexed connections of the `RedisStore` (route and store-create phases).
    #[arg(long, default_value_t = 1)]
    store_conns: usize,
    /// Concurrent tasks for the route and store-create phases.
    #[arg(long, default_value_t = 128)]
    c: usize,
    /// Route lookups (0 skips).
    #[arg(long, default_value_t = 1_000_000)]
    routes: usize,
    /// Bindings created through `RedisStore::create_binding` (0 skips).
    #[arg(long, default_value_t = 100_000)]
    creates: usize,
    /// Keep the pool's keys in Redis after the run.
    #[arg(long)]
    keep: bool,
}

fn courier(run: u32, i: usize) -> E164 {
    // +86 13x: run-specific prefix so runs never share parties.
    E164::parse(&format!("+8613{:03}{:07}", run % 1000, i / 100)).unwrap_or_else(|_| unreachable!())
}

fn customer(run: u32, i: usize) -> E164 {
    E164::parse(&format!("+8615{:03}{:07}", run % 1000, i)).unwrap_or_else(|_| unreachable!())
}

fn request(pool: &str, run: u32, i: usize, ttl_ms: i64) -> NewBinding {
    NewBinding {
        pool: pool.to_owned(),
        shipment_id: format!("SB{run}-{i}"),
        party_a: courier(run, i),
        party_b: customer(run, i),
        expires_at: now_ms() + ttl_ms,
        area: None,
        extension: None,
    }
}

async fn used_memory(c: &mut redis::aio::MultiplexedConnection) -> Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(c).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no used_memory in INFO")
}

fn print_hist(name: &str, h: &Histogram<u64>) {
    println!(
        "  {name} latency µs: p50 {} p99 {} p99.9 {} max {}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.n == 0 || args.cap == 0 || args.conns == 0 || args.pipeline == 0 || args.c == 0 {
        bail!("--n, --cap, --conns, --pipeline and --c must be positive");
    }
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    let hasher = NumberHasher::new(&key)?;
    let store = Arc::new(
        RedisStore::connect_with(
            &args.url,
            hasher,
            Sealer::random(),
            RedisOptions {
                connections: args.store_conns,
                ..RedisOptions::default()
            },
        )
        .await?,
    );
    store.load_scripts().await?;
    let client = redis::Client::open(args.url.as_str())?;
    let mut admin = client.get_multiplexed_async_connection().await?;

    let run: u32 = rand::rng().random_range(0..1_000_000);
    let pool = format!("sb-{run}");
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
    let total = args.n + args.creates;
    let numbers = total.div_ceil(args.cap as usize) + total.div_ceil(args.cap as usize) / 50 + 1;
    let xs = numbers::import(store.as_ref(), &pool, u64::from(run), numbers).await?;
    println!(
        "pool {pool}: {numbers} numbers, cap {} per number; {} bindings to load",
        args.cap, args.n
    );
    let before = used_memory(&mut admin).await?;

    // ---- 1. raw allocation ceiling: EVALSHA pipelined over `conns` connections.
    let ttl_ms = 3 * 86_400_000;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.conns {
        let store = store.clone();
        let mut conn = client.get_multiplexed_async_connection().await?;
        let (pool, n, step, depth) = (pool.clone(), args.n, args.conns, args.pipeline);
        tasks.push(tokio::spawn(async move {
            let mut made = 0usize;
            let mut errors = 0usize;
            let mut i = w;
            while i < n {
                let mut pipe = redis::pipe();
                let mut k = 0;
                while k < depth && i < n {
                    pipe.add_command(
                        store
                            .create_command(&request(&pool, run, i, ttl_ms), now_ms())
                            .await?,
                    );
                    i += step;
                    k += 1;
                }
                let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
                for r in replies {
                    match r {
                        Value::Array(a) if matches!(a.first(), Some(Value::BulkString(t)) if t == b"n") => {
                            made += 1
                        }
                        _ => errors += 1,
                    }
                }
            }
            Ok::<_, anyhow::Error>((made, errors))
        }));
    }
    let (mut made, mut errors) = (0, 0);
    for t in tasks {
        let (m, e) = t.await??;
        made += m;
        errors += e;
    }
    let dt = t0.elapsed();
    println!(
        "raw allocation (EVALSHA, {} conns × {} pipelined): {made} bindings in {:.2} s = {:.0} bindings/s ({errors} not created)",
        args.conns,
        args.pipeline,
        dt.as_secs_f64(),
        made as f64 / dt.as_secs_f64()
    );

    // ---- 2. memory per live binding.
    let after = used_memory(&mut admin).await?;
    println!(
        "memory: used_memory +{} bytes for {made} live bindings = {:.0} bytes/binding (incl. per-number indexes)",
        after - before,
        (after - before) as f64 / made.max(1) as f64
    );
    // MEMORY USAGE of a sample of each key kind, and per entry for the shared ones.
    let sample = |pattern: String, len_cmd: &'static str| {
        let mut c = admin.clone();
        async move {
            let keys: Vec<Vec<u8>> = redis::cmd("SCAN")
                .arg(0)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(50_000)
                .query_async::<(u64, Vec<Vec<u8>>)>(&mut c)
                .await
                .map(|(_, k)| k)
                .unwrap_or_default();
            let (mut bytes, mut entries, mut n) = (0i64, 0i64, 0usize);
            for k in keys.iter().take(300) {
                let u: Option<i64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(k)
                    .arg("SAMPLES")
                    .arg(0)
                    .query_async(&mut c)
                    .await
                    .unwrap_or(None);
                let len: i64 = if len_cmd.is_empty() {
                    1
                } else {
                    redis::cmd(len_cmd)
                        .arg(k)
                        .query_async(&mut c)
                        .await
                        .unwrap_or(1)
                };
                if let Some(u) = u {
                    bytes += u;
                    entries += len;
                    n += 1;
                }
            }
            (n, bytes, entries)
        }
    };
    for (what, pattern, len_cmd) in [
        (
            "route/hold key (2 per binding)",
            format!("{{{pool}}}r*"),
            "",
        ),
        (
            "record shard hash (1 entry per binding)",
            format!("{{{pool}}}s*"),
            "HLEN",
        ),
        (
            "per-number binding zset shard (1 entry per binding)",
            format!("{{{pool}}}l8*"),
            "ZCARD",
        ),
    ] {
        let (n, bytes, entries) = sample(pattern, len_cmd).await;
        if n > 0 {
            println!(
                "  MEMORY USAGE {what}: {:.0} bytes per key over {n} keys, {:.1} bytes per entry",
                bytes as f64 / n as f64,
                bytes as f64 / entries.max(1) as f64
            );
        }
    }
    let mut cs = admin.clone();
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut cs)
        .await?;
    if let Some(l) = stats.lines().find(|l| l.starts_with("cmdstat_evalsha:")) {
        println!("  Redis-side script cost (cumulative since CONFIG RESETSTAT): {l}");
    }

    // ---- 3. route lookups through the store (one GET each).
    if args.routes > 0 && made > 0 {
        let per = args.routes.div_ceil(args.c);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..args.c {
            let store = store.clone();
            let pool = pool.clone();
            let n = args.n;
            tasks.push(tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3)?;
                let picks: Vec<usize> = {
                    let mut rng = rand::rng();
                    (0..64.min(n)).map(|_| rng.random_range(0..n)).collect()
                };
                let mut found = 0usize;
                // Pick bindings by index; the number is looked up once per task
                // chunk from the route itself (the caller knows X in real life).
                let mut cache: Vec<(E164, E164)> = Vec::new();
                for i in picks {
                    let b = store
                        .find_by_shipment(Some(&pool), &format!("SB{run}-{i}"), now_ms())
                        .await?;
                    if let Some(b) = b.into_iter().next() {
                        cache.push((b.number, b.party_b));
                    }
                }
                if cache.is_empty() {
                    bail!("no binding found to route");
                }
                for j in 0..per {
                    let (x, caller) = &cache[(j + w) % cache.len()];
                    let t = Instant::now();
                    if store.route(&pool, x, caller, now_ms()).await?.is_some() {
                        found += 1;
                    }
                    h.record(t.elapsed().as_micros() as u64)?;
                }
                Ok::<_, anyhow::Error>((found, h))
            }));
        }
        let mut hist = Histogram::<u64>::new(3)?;
        let mut found = 0;
        for t in tasks {
            let (f, h) = t.await??;
            found += f;
            hist.add(h)?;
        }
        let dt = t0.elapsed();
        println!(
            "route (RedisStore::route, {} tasks): {} lookups in {:.2} s = {:.0} lookups/s ({found} routed)",
            args.c,
            hist.len(),
            dt.as_secs_f64(),
            hist.len() as f64 / dt.as_secs_f64()
        );
        print_hist("route", &hist);
    }

    // ---- 4. allocation through the store API.
    if args.creates > 0 {
        let per = args.creates.div_ceil(args.c);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..args.c {
            let store = store.clone();
            let pool = pool.clone();
            let base = args.n;
            let total = args.creates;
            tasks.push(tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3)?;
                let mut made = 0usize;
                for j in 0..per {
                    let i = base + w * per + j;
                    if i >= base + total {
                        break;
                    }
                    let t = Instant::now();
                    match store
                        .create_binding(request(&pool, run, i, ttl_ms), now_ms())
                        .await
                    {
                        Ok(Created::New(_)) => made += 1,
                        Ok(Created::Existing(_)) | Err(StoreError::PoolExhausted { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    h.record(t.elapsed().as_micros() as u64)?;
                }
                Ok::<_, anyhow::Error>((made, h))
            }));
        }
        let mut hist = Histogram::<u64>::new(3)?;
        let mut made = 0;
        for t in tasks {
            let (m, h) = t.await??;
            made += m;
            hist.add(h)?;
        }
        let dt = t0.elapsed();
        println!(
            "store create (RedisStore::create_binding, {} tasks): {made} bindings in {:.2} s = {:.0} bindings/s",
            args.c,
            dt.as_secs_f64(),
            made as f64 / dt.as_secs_f64()
        );
        print_hist("create", &hist);
    }

    if !args.keep {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{{{pool}}}*"))
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut admin)
                .await?;
            if !keys.is_empty() {
                let _: () = redis::cmd("UNLINK")
                    .arg(keys)
                    .query_async(&mut admin)
                    .await?;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let _: () = redis::cmd("HDEL")
            .arg("ml:pools")
            .arg(&pool)
            .query_async(&mut admin)
            .await?;
        let mut del = redis::cmd("HDEL");
        del.arg("ml:x");
        for x in &xs {
            del.arg(&x.expose()[1..]);
        }
        let _: () = del.query_async(&mut admin).await?;
        println!("removed pool {pool} from Redis (use --keep to keep it)");
    }
    Ok(())
}
