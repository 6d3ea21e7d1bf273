//! Throughput and memory figures of the memory store (an ignored test, run by hand).

use super::*;

/// Throughput figures, not a timed test: run with
/// `cargo test --release --lib store::memory::tests::throughput -- --ignored --nocapture`.
/// Prints wall-clock rates and rates per CPU-second of this process (the latter
/// mean more on a shared, loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn throughput() {
    use std::sync::Arc;
    use std::time::Instant;

    const BINDINGS: u64 = 200_000;
    const ROUTES: u64 = 1_000_000;
    let report = |what: &str, ops: u64, t: Instant, cpu0: f64| {
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu0);
        println!(
            "{what}: {ops} in {wall:.2} s wall, {cpu:.2} s CPU = {:.0}/s wall, {:.0}/CPU-s",
            ops as f64 / wall,
            ops as f64 / cpu.max(0.01)
        );
    };
    let store = Arc::new(MemoryStore::new());
    store
        .create_pool(spec("p", 86_400, 3600, 200))
        .await
        .unwrap();
    store
        .import_numbers("p", numbers(0..2000, None))
        .await
        .unwrap();
    let couriers = 5000;
    let mut made = Vec::with_capacity(BINDINGS as usize);
    let rss_before = rss_bytes();
    let (t, cpu0) = (Instant::now(), cpu_secs());
    for i in 0..BINDINGS {
        let a = E164::parse(&format!("+86139{:08}", i % couriers)).unwrap();
        let b = E164::parse(&format!("+86138{i:08}")).unwrap();
        let c = store
            .create_binding(new("p", &format!("s{i}"), &a, &b, T0 + 3_600_000), T0)
            .await
            .unwrap();
        made.push((c.binding().number.clone(), a));
    }
    report("create (1 task)", BINDINGS, t, cpu0);
    // The test's own list of (number, caller) pairs is about 64 bytes a binding.
    println!(
        "memory: ~{} bytes per live binding (RSS growth, incl. ~64 B of test data)",
        (rss_bytes() - rss_before) / BINDINGS as i64
    );
    let made = Arc::new(made);
    for tasks in [1u64, 2] {
        let (t, cpu0) = (Instant::now(), cpu_secs());
        let handles: Vec<_> = (0..tasks)
            .map(|k| {
                let (store, made) = (store.clone(), made.clone());
                tokio::spawn(async move {
                    for i in 0..ROUTES / tasks {
                        let (x, caller) = &made[((i * 7919 + k) % BINDINGS) as usize];
                        let r = store.route("p", x, caller, T0).await.unwrap();
                        assert!(r.is_some());
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        report(&format!("route ({tasks} tasks)"), ROUTES, t, cpu0);
    }
    let (t, cpu0) = (Instant::now(), cpu_secs());
    let stats = store.pool_stats("p", T0).await.unwrap();
    report("pool_stats", 1, t, cpu0);
    assert_eq!(stats.live_bindings, BINDINGS);
    let (t, cpu0) = (Instant::now(), cpu_secs());
    let reaped = store.reap(T0 + 3_600_000).await.unwrap();
    report("reap (expired bindings)", reaped, t, cpu0);
    let (t, cpu0) = (Instant::now(), cpu_secs());
    store.reap(T0 + 3_600_000 + 86_400_000).await.unwrap();
    report("purge (cooled holds)", 2 * reaped, t, cpu0);
}

/// Resident set size of this process (Linux), for the throughput figures.
fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// User + system CPU seconds of this process so far (Linux, 100 Hz ticks).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}
