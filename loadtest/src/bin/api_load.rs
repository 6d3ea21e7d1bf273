//! `api_load`: allocation and route-view load against a running maskline relay.
//!
//! Creates a pool (or reuses it), imports enough virtual numbers for `--n` bindings
//! at the pool's per-number cap, then creates `--n` bindings with `--c` concurrent
//! HTTP/1.1 keep-alive clients (`POST /v1/bindings`) and looks each of them up again
//! through the troubleshooting route view
//! (`GET /v1/pools/{pool}/numbers/{number}/route?caller=...`). For each phase it prints
//! the rate and p50/p99/p99.9/max latency (HdrHistogram, microsecond resolution).
//!
//! Parties are synthetic numbers in `+861xxxxxxxxxx` drawn from a random base per run,
//! so runs never collide with each other's idempotency keys or holds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use serde_json::{json, Value};

/// Command-line options.
#[derive(Parser, Debug, Clone)]
#[command(about = "Binding-creation and route-view load against a running maskline relay")]
struct Args {
    /// Base URL of the relay (http only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Admin API key (creates the pool and imports numbers; reads routes).
    #[arg(long, env = "MASKLINE_KEY")]
    key: String,
    /// Pool to use; created if missing. Default: a fresh `lt-<random>` pool.
    #[arg(long)]
    pool: Option<String>,
    /// Bindings to create.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Concurrent clients (one keep-alive connection each).
    #[arg(long, default_value_t = 64)]
    c: usize,
    /// `max_bindings_per_number` of a pool this tool creates.
    #[arg(long, default_value_t = 200)]
    per_number: u32,
    /// Route-view lookups (cycling over the created bindings); 0 skips the phase.
    #[arg(long)]
    routes: Option<usize>,
    /// Binding lifetime, seconds.
    #[arg(long, default_value_t = 3600)]
    ttl_s: u64,
    /// `NAME=PID` of a process (relay, redis-server) whose CPU time per request to
    /// report for each phase (Linux `/proc`); repeatable. The load generator's own
    /// CPU is always reported.
    #[arg(long = "watch", value_name = "NAME=PID")]
    watch: Vec<String>,
    /// Runtime threads of the load generator. 1 (default) is a single-threaded
    /// runtime: cheapest per request, and it leaves the other core to the relay and
    /// Redis on a small box. Raise it when the relay runs elsewhere.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// CPU time (user + system) of a process in microseconds, from `/proc/<pid>/stat`.
fn cpu_us(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th
    // and 13th of those (14th and 15th overall), in clock ticks (100 Hz on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) * 10_000)
}

/// Processes whose CPU is sampled around each phase.
struct Watched(Vec<(String, String)>);

impl Watched {
    fn new(args: &[String]) -> Result<Self> {
        let mut v = vec![("api_load".to_string(), "self".to_string())];
        for a in args {
            let (name, pid) = a
                .split_once('=')
                .ok_or_else(|| anyhow!("--watch wants NAME=PID, got {a:?}"))?;
            if cpu_us(pid).is_none() {
                bail!("--watch {a}: no readable /proc/{pid}/stat");
            }
            v.push((name.to_string(), pid.to_string()));
        }
        Ok(Self(v))
    }

    fn sample(&self) -> Vec<Option<u64>> {
        self.0.iter().map(|(_, pid)| cpu_us(pid)).collect()
    }

    /// Prints CPU µs per request of each watched process between two samples.
    fn report(&self, phase: &str, before: &[Option<u64>], requests: u64) {
        let after = self.sample();
        let parts: Vec<String> = self
            .0
            .iter()
            .zip(before.iter().zip(after))
            .filter_map(|((name, _), (b, a))| {
                let d = a?.checked_sub((*b)?)?;
                Some(format!("{name} {:.1}", d as f64 / requests.max(1) as f64))
            })
            .collect();
        println!("{phase}: CPU µs per request: {}", parts.join(", "));
    }
}

/// One HTTP client shared by all workers. The hot loops build requests from
/// pre-parsed parts so the load generator spends as little CPU as it can (it shares
/// the box with the relay it measures).
#[derive(Clone)]
struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    auth: HeaderValue,
}

impl Api {
    /// A request with a JSON `body` (or none) to `path`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        let uri: Uri = format!("{}{}", self.base, path).parse()?;
        let body = match body {
            Some(v) => Some(Bytes::from(serde_json::to_vec(v)?)),
            None => None,
        };
        self.send(method, uri, body).await
    }

    /// Sends one request; `body` is JSON when present.
    async fn send(
        &self,
        method: Method,
        uri: Uri,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, self.auth.clone());
        if body.is_some() {
            req = req.header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let resp = self
            .client
            .request(req.body(Full::new(body.unwrap_or_default()))?)
            .await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

/// The string value of `"key":"..."` in a flat JSON object (no escapes expected:
/// the relay's numbers are `+` and digits). Avoids a full parse per response.
fn json_str<'a>(body: &'a [u8], key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = body.windows(pat.len()).position(|w| w == pat.as_bytes())? + pat.len();
    let len = body.get(start..)?.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(body.get(start..start + len)?).ok()
}

/// Per-phase outcome of one worker.
struct WorkerResult {
    hist: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
    /// (virtual number, party A) of each created binding, for the route phase.
    created: Vec<(String, String)>,
}

impl WorkerResult {
    /// Counts a failed request: an unexpected status with its body, or a transport error.
    fn fail(&mut self, res: Result<(StatusCode, Bytes)>) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| match res {
            Ok((s, bytes)) => format!("{s}: {}", String::from_utf8_lossy(&bytes)),
            Err(e) => e.to_string(),
        });
    }
}

fn new_hist() -> Result<Histogram<u64>> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow!("histogram: {e}"))
}

/// Party numbers: `+861` and ten digits from `base + i`.
fn party(base: u64, i: u64) -> String {
    format!("+861{:010}", (base + i) % 10_000_000_000)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build()?,
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    if args.n == 0 || args.c == 0 {
        bail!("--n and --c must be positive");
    }
    let base = args.url.trim_end_matches('/').to_string();
    if !base.starts_with("http://") {
        bail!("--url must be http://host:port (the load generator does not speak TLS)");
    }
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.c)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector);
    let api = Api {
        client,
        base,
        auth: HeaderValue::from_str(&format!("Bearer {}", args.key))
            .context("--key: not usable in a header")?,
    };
    let mut rng = rand::rng();
    let run: u32 = rng.random_range(0..1_000_000);
    let pool = args.pool.clone().unwrap_or_else(|| format!("lt-{run}"));

    prepare_pool(&api, &pool, &args, &mut rng).await?;
    let watched = Watched::new(&args.watch)?;

    // Parties: a random base far from other runs' ranges (collisions only matter for
    // holds, which at worst make one allocation pick another number).
    let party_base: u64 = rng.random_range(0..9_000_000_000);
    let run_id = format!("{run}-{}", rng.random_range(0..1_000_000u32));

    println!(
        "create: {} bindings, {} clients, pool {pool}, {}",
        args.n, args.c, api.base
    );
    let next = Arc::new(AtomicUsize::new(0));
    let create_uri: Uri = format!("{}/v1/bindings", api.base).parse()?;
    let cpu_before = watched.sample();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.c);
    for _ in 0..args.c {
        let api = api.clone();
        let next = next.clone();
        let pool = pool.clone();
        let run_id = run_id.clone();
        let create_uri = create_uri.clone();
        let (n, ttl_s) = (args.n, args.ttl_s);
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerResult {
                hist: new_hist()?,
                errors: 0,
                first_error: None,
                created: Vec::new(),
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let a = party(party_base, 2 * i as u64);
                let b = party(party_base, 2 * i as u64 + 1);
                // Pool names and run ids are [A-Za-z0-9_-]: no JSON escaping needed.
                let body = Bytes::from(format!(
                    r#"{{"pool":"{pool}","shipment_id":"lt-{run_id}-{i}","party_a":"{a}","party_b":"{b}","ttl_s":{ttl_s}}}"#
                ));
                let t = Instant::now();
                let res = api
                    .send(Method::POST, create_uri.clone(), Some(body))
                    .await;
                let us = t.elapsed().as_micros() as u64;
                out.hist.saturating_record(us.max(1));
                match res {
                    Ok((s, bytes)) if s == StatusCode::CREATED || s == StatusCode::OK => {
                        let x = json_str(&bytes, "number").ok_or_else(|| {
                            anyhow!(
                                "create response has no number: {}",
                                String::from_utf8_lossy(&bytes)
                            )
                        })?;
                        out.created.push((x.to_string(), a));
                    }
                    other => out.fail(other),
                }
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let (hist, errors, first_error, created) = collect(tasks).await?;
    report(
        "create",
        args.n as u64,
        started.elapsed(),
        &hist,
        errors,
        first_error,
    );
    watched.report("create", &cpu_before, args.n as u64);
    if created.is_empty() {
        bail!("no binding was created; nothing to route");
    }

    let routes = args.routes.unwrap_or(args.n);
    if routes == 0 {
        return Ok(());
    }
    println!("route: {routes} lookups, {} clients", args.c);
    let created = Arc::new(created);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = watched.sample();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.c);
    for _ in 0..args.c {
        let api = api.clone();
        let next = next.clone();
        let created = created.clone();
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerResult {
                hist: new_hist()?,
                errors: 0,
                first_error: None,
                created: Vec::new(),
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= routes {
                    break;
                }
                let Some((x, a)) = created.get(i % created.len()) else {
                    break;
                };
                // `+` in a query string means space; escape it. In the path it is literal.
                let caller = a.replace('+', "%2B");
                let uri: Uri = format!(
                    "{}/v1/pools/{pool}/numbers/{x}/route?caller={caller}",
                    api.base
                )
                .parse()?;
                let t = Instant::now();
                let res = api.send(Method::GET, uri, None).await;
                out.hist
                    .saturating_record((t.elapsed().as_micros() as u64).max(1));
                match res {
                    Ok((StatusCode::OK, _)) => {}
                    other => out.fail(other),
                }
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let (hist, errors, first_error, _) = collect(tasks).await?;
    report(
        "route",
        routes as u64,
        started.elapsed(),
        &hist,
        errors,
        first_error,
    );
    watched.report("route", &cpu_before, routes as u64);
    Ok(())
}

type Collected = (Histogram<u64>, u64, Option<String>, Vec<(String, String)>);

async fn collect(tasks: Vec<tokio::task::JoinHandle<Result<WorkerResult>>>) -> Result<Collected> {
    let mut hist = new_hist()?;
    let mut errors = 0;
    let mut first_error = None;
    let mut created = Vec::new();
    for t in tasks {
        let r = t.await.context("worker panicked")??;
        hist.add(&r.hist).map_err(|e| anyhow!("histogram: {e}"))?;
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
        created.extend(r.created);
    }
    Ok((hist, errors, first_error, created))
}

fn report(
    phase: &str,
    n: u64,
    elapsed: Duration,
    hist: &Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
) {
    let secs = elapsed.as_secs_f64();
    let ok = n.saturating_sub(errors);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{phase}: {ok} ok, {errors} errors in {secs:.2} s = {:.0}/s; latency ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        ok as f64 / secs,
        ms(0.5),
        ms(0.99),
        ms(0.999),
        hist.max() as f64 / 1000.0
    );
    if let Some(e) = first_error {
        println!("{phase}: first error: {e}");
    }
}

/// Creates the pool if missing and imports enough numbers for `--n` bindings.
async fn prepare_pool(api: &Api, pool: &str, args: &Args, rng: &mut impl Rng) -> Result<()> {
    let spec = json!({
        "name": pool,
        "country": 86,
        "grace_s": 3600,
        "cooling_s": 60,
        "max_bindings_per_number": args.per_number,
    });
    let (s, body) = api.call(Method::POST, "/v1/pools", Some(&spec)).await?;
    match s {
        StatusCode::CREATED | StatusCode::OK => println!("pool {pool}: created"),
        StatusCode::CONFLICT => println!("pool {pool}: exists, reusing"),
        _ => bail!("create pool: {s}: {}", String::from_utf8_lossy(&body)),
    }
    // The per-number cap of an existing pool may differ; read it back.
    let (s, body) = api
        .call(Method::GET, &format!("/v1/pools/{pool}"), None)
        .await?;
    if s != StatusCode::OK {
        bail!("pool stats: {s}: {}", String::from_utf8_lossy(&body));
    }
    let stats: Value = serde_json::from_slice(&body)?;
    let cap = stats
        .pointer("/max_bindings_per_number")
        .or_else(|| stats.pointer("/pool/max_bindings_per_number"))
        .or_else(|| stats.pointer("/spec/max_bindings_per_number"))
        .and_then(Value::as_u64)
        .unwrap_or(u64::from(args.per_number))
        .max(1);
    // 10 % headroom plus a few, so least-loaded allocation never runs dry.
    let wanted = (args.n as u64).div_ceil(cap) * 11 / 10 + 4;
    let x_base: u64 = rng.random_range(0..90_000_000);
    let mut added = 0u64;
    let mut offset = 0u64;
    while added < wanted {
        let chunk = (wanted - added).min(5000);
        let numbers: Vec<Value> = (0..chunk)
            .map(|i| json!({"number": format!("+86170{:08}", (x_base + offset + i) % 100_000_000), "area": "lt"}))
            .collect();
        offset += chunk;
        let (s, body) = api
            .call(
                Method::POST,
                &format!("/v1/pools/{pool}/numbers"),
                Some(&json!({ "numbers": numbers })),
            )
            .await?;
        if !s.is_success() {
            bail!("import numbers: {s}: {}", String::from_utf8_lossy(&body));
        }
        let v: Value = serde_json::from_slice(&body)?;
        let got = v.get("added").and_then(Value::as_u64).unwrap_or(0);
        added += got;
        if got == 0 && offset > wanted * 4 {
            bail!("import numbers: nothing added: {v}");
        }
    }
    println!("pool {pool}: imported {added} numbers (cap {cap} bindings each)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_str_finds_flat_string_fields() {
        let body = br#"{"id":"0193","number":"+8617000000001","party_a":"+86 138****8000"}"#;
        assert_eq!(json_str(body, "number"), Some("+8617000000001"));
        assert_eq!(json_str(body, "party_a"), Some("+86 138****8000"));
        assert_eq!(json_str(body, "missing"), None);
        assert_eq!(json_str(br#"{"number":"+861"#, "number"), None);
    }

    #[test]
    fn parties_are_valid_distinct_e164() {
        let a = party(9_999_999_999, 0);
        let b = party(9_999_999_999, 1);
        assert_eq!(a.len(), 14);
        assert!(a.starts_with("+861") && b.starts_with("+861"));
        assert_ne!(a, b);
    }
}
