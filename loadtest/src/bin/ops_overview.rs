//! `ops_overview`: how fast the ops console's pool overview answers on a big pool.
//!
//! Against a running Redis (`--url`): creates a pool of `--numbers` numbers, loads
//! `--n` live bindings through the allocation script (pipelined `EVALSHA`, as
//! `store_bench` does; a courier per 100 bindings, so busiest parties are real),
//! then measures
//! 1. `RedisStore::pool_overview` (the store call behind
//!    `GET /v1/pools/{pool}/overview`), `--reps` times → p50/p99/max;
//! 2. the same through the HTTP API (the relay's router in-process on
//!    127.0.0.1, one request at a time) → p50/p99/max;
//! 3. a page of 50 numbers (`list_numbers`) → p50/p99/max.
//!
//! The pool's keys are deleted at the end unless `--keep`.

use std::sync::Arc;
use std::time::Instant;

#[path = "../numbers.rs"]
mod numbers;

use anyhow::{bail, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use maskline::api::{key_hash, Api};
use maskline::bindings::{now_ms, NewBinding, PoolSpec};
use maskline::config::{ApiConfig, ApiKeyConfig, Role};
use maskline::numbers::{NumberHasher, Sealer, E164};
use maskline::store::redis::RedisStore;
use maskline::store::BindingStore;
use rand::Rng;
use redis::Value;

/// Command-line options.
#[derive(Parser, Debug, Clone)]
#[command(about = "Pool overview latency on a big Redis pool (ops console)")]
struct Args {
    /// Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    url: String,
    /// Numbers in the pool.
    #[arg(long, default_value_t = 50_000)]
    numbers: usize,
    /// Live bindings to load.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Connections driving the allocation script.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Commands in flight per connection.
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
    /// Overview calls measured (each way).
    #[arg(long, default_value_t = 200)]
    reps: usize,
    /// Keep the pool's keys in Redis after the run.
    #[arg(long)]
    keep: bool,
}

fn request(pool: &str, run: u32, i: usize) -> Result<NewBinding> {
    Ok(NewBinding {
        pool: pool.to_owned(),
        shipment_id: format!("OV{run}-{i}"),
        party_a: E164::parse(&format!("+8613{:03}{:07}", run % 1000, i / 100))?,
        party_b: E164::parse(&format!("+8615{:03}{:07}", run % 1000, i))?,
        expires_at: now_ms() + 3 * 86_400_000,
        area: None,
        extension: None,
    })
}

fn report(name: &str, h: &Histogram<u64>) {
    println!(
        "{name}: n {} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.numbers == 0 || args.conns == 0 || args.pipeline == 0 || args.reps == 0 {
        bail!("--numbers, --conns, --pipeline and --reps must be positive");
    }
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    let store =
        Arc::new(RedisStore::connect(&args.url, NumberHasher::new(&key)?, Sealer::random()).await?);
    store.load_scripts().await?;
    let client = redis::Client::open(args.url.as_str())?;
    let run: u32 = rand::rng().random_range(0..1_000_000);
    let pool = format!("ov-{run}");
    let cap = u32::try_from(args.n.div_ceil(args.numbers) * 2 + 1)?;
    store
        .create_pool(PoolSpec {
            name: pool.clone(),
            country: 86,
            grace_s: 3600,
            cooling_s: 86_400,
            max_bindings_per_number: cap,
            allow_foreign_parties: false,
            extensions: false,
            extension_len: maskline::bindings::DEFAULT_EXTENSION_LEN,
        })
        .await?;
    let xs = numbers::import(store.as_ref(), &pool, u64::from(run), args.numbers).await?;
    println!("pool {pool}: {} numbers, cap {cap}", args.numbers);

    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.conns {
        let store = store.clone();
        let mut conn = client.get_multiplexed_async_connection().await?;
        let (pool, n, step, depth) = (pool.clone(), args.n, args.conns, args.pipeline);
        tasks.push(tokio::spawn(async move {
            let mut made = 0usize;
            let mut i = w;
            while i < n {
                let mut pipe = redis::pipe();
                let mut k = 0;
                while k < depth && i < n {
                    pipe.add_command(store.create_command(&request(&pool, run, i)?, now_ms()).await?);
                    i += step;
                    k += 1;
                }
                let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
                made += replies
                    .iter()
                    .filter(|r| matches!(r, Value::Array(a) if matches!(a.first(), Some(Value::BulkString(t)) if t == b"n")))
                    .count();
            }
            Ok::<_, anyhow::Error>(made)
        }));
    }
    let mut made = 0;
    for t in tasks {
        made += t.await??;
    }
    println!(
        "loaded {made} live bindings in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // 1. The store call.
    let mut h = Histogram::<u64>::new(3)?;
    let mut last = None;
    for _ in 0..args.reps {
        let t = Instant::now();
        let o = store.pool_overview(&pool, now_ms()).await?;
        h.record(t.elapsed().as_micros() as u64)?;
        last = Some(o);
    }
    if let Some(o) = &last {
        println!(
            "overview: active {} live {} per-number min/median/p95/max {}/{}/{}/{} busiest party {} allocations 1h {}",
            o.active,
            o.live_bindings,
            o.per_number.min,
            o.per_number.median,
            o.per_number.p95,
            o.per_number.max,
            o.busiest_parties.first().map_or(0, |p| p.live_bindings),
            o.last_hour.allocations
        );
    }
    report("RedisStore::pool_overview", &h);

    // 2. Through HTTP (the relay's own router, in-process).
    let cfg = ApiConfig {
        listen: "127.0.0.1:0".into(),
        keys: vec![ApiKeyConfig {
            name: "bench-ops".into(),
            role: Role::Ops,
            hash: key_hash("bench-ops-key"),
        }],
        rate_per_key_per_s: 1_000_000,
        rate_burst: 1_000_000,
        ..ApiConfig::default()
    };
    let api = Api::new(&cfg, store.clone(), None)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api.serve(listener, async {
        let _ = stopped.await;
    }));
    let http: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut h = Histogram::<u64>::new(3)?;
    let mut size = 0;
    for _ in 0..args.reps {
        let req = Request::get(format!("http://{addr}/v1/pools/{pool}/overview"))
            .header("authorization", "Bearer bench-ops-key")
            .body(Empty::new())?;
        let t = Instant::now();
        let resp = http.request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        h.record(t.elapsed().as_micros() as u64)?;
        if !status.is_success() {
            bail!(
                "overview answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        size = body.len();
    }
    report(
        &format!("GET /v1/pools/{{pool}}/overview ({size} bytes)"),
        &h,
    );
    let _ = stop.send(());
    server.await??;

    // 3. A page of numbers.
    let mut h = Histogram::<u64>::new(3)?;
    let mut cursor: Option<String> = None;
    for _ in 0..args.reps {
        let t = Instant::now();
        let page = store.list_numbers(&pool, cursor.as_deref(), 50).await?;
        h.record(t.elapsed().as_micros() as u64)?;
        cursor = page.next;
    }
    report("RedisStore::list_numbers (50)", &h);

    if !args.keep {
        let mut c = client.get_multiplexed_async_connection().await?;
        let mut cur = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cur)
                .arg("MATCH")
                .arg(format!("{{{pool}}}*"))
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut c)
                .await?;
            if !keys.is_empty() {
                let _: () = redis::cmd("UNLINK").arg(&keys).query_async(&mut c).await?;
            }
            if next == 0 {
                break;
            }
            cur = next;
        }
        for chunk in xs.chunks(5000) {
            let digits: Vec<&str> = chunk.iter().map(|x| &x.expose()[1..]).collect();
            let _: () = redis::cmd("HDEL")
                .arg("ml:x")
                .arg(digits)
                .query_async(&mut c)
                .await?;
        }
        let _: () = redis::cmd("HDEL")
            .arg("ml:pools")
            .arg(&pool)
            .query_async(&mut c)
            .await?;
        println!("pool {pool} deleted");
    }
    Ok(())
}
