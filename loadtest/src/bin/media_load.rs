//! `media_load`: N concurrent G.711 calls through an RTP relay controlled over
//! rtpengine's ng protocol (rtpengine itself, or maskline's `media_relay_ng`).
//!
//! Per call: two UDP sockets (leg A, leg B) on 127.0.0.1, an ng `offer` (A's SDP)
//! and `answer` (B's SDP); each leg then sends a 172-byte RTP packet (12-byte
//! header + 160 bytes of PCMU) every 20 ms to the relay port named in the SDP it
//! got, paced from a fixed start instant (packet k of stream s is due at
//! `start + k·20 ms + phase(s)`, so the schedule never drifts). The receiver
//! looks the due time up from the SSRC (= stream) and sequence number: a packet
//! more than 50 ms late counts as lost. After `--warmup-s` the window of
//! `--seconds` is measured; a call passes when both of its streams lose (or
//! receive late) under 0.1 % of the window's packets. The relay's CPU over the
//! window comes from `/proc/<pid>/stat` (utime + stime) and is reported per
//! 1,000 packets relayed, with the transit delay (due time → received, 0.1 ms
//! buckets; includes the generator's own 1 ms send batches) at p50/p99/p99.9.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

#[path = "../ng.rs"]
mod ng;
use ng::Value;

#[derive(Parser, Debug, Clone)]
#[command(about = "RTP relay load generator (G.711 calls over an ng-controlled relay)")]
struct Args {
    /// ng control address of the relay.
    #[arg(long)]
    ng: SocketAddr,
    /// Label for the result line.
    #[arg(long, default_value = "relay")]
    name: String,
    /// PID of the relay process (CPU figures).
    #[arg(long)]
    pid: Option<u32>,
    /// Concurrent calls.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Warm-up before the window, seconds.
    #[arg(long, default_value_t = 2)]
    warmup_s: u64,
    /// Generator threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// First local port: call i uses base+4i (A) and base+4i+2 (B).
    #[arg(long, default_value_t = 10000)]
    base_port: u16,
    /// Later than this (ms) counts as lost.
    #[arg(long, default_value_t = 50)]
    late_ms: u64,
}

const PERIOD: Duration = Duration::from_millis(20);
const PACKET: usize = 172;
const LOCAL: [u8; 4] = [127, 0, 0, 1];

fn sdp(port: u16, sess: usize) -> Vec<u8> {
    format!(
        "v=0\r\no=- {sess} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
    .into_bytes()
}

/// The media address in an SDP body (first `c=`, first `m=`).
fn media_addr(body: &[u8]) -> Result<SocketAddr> {
    let text = String::from_utf8_lossy(body);
    let mut ip: Option<IpAddr> = None;
    let mut port = None;
    for line in text.lines() {
        if let Some(c) = line
            .strip_prefix("c=IN IP4 ")
            .or(line.strip_prefix("c=IN IP6 "))
        {
            ip = ip.or(c.trim().parse().ok());
        }
        if let Some(m) = line.strip_prefix("m=audio ") {
            port = port.or(m.split(' ').next().and_then(|p| p.parse::<u16>().ok()));
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) => Ok(SocketAddr::new(ip, port)),
        _ => bail!("no media address in SDP:\n{text}"),
    }
}

/// Stream `s` sends from socket `s` to the relay; socket `s ^ 1` receives it.
struct Plan {
    start: Instant,
    streams: usize,
    warm_k: u64,
    end_k: u64,
    late: Duration,
}

impl Plan {
    fn due(&self, k: u64, s: usize) -> Instant {
        let phase = PERIOD.as_nanos() as u64 * s as u64 / self.streams as u64;
        self.start + PERIOD * k as u32 + Duration::from_nanos(phase)
    }
}

#[derive(Default, Clone, Copy)]
struct StreamStats {
    sent: u64,
    on_time: u64,
    late: u64,
}

/// Width of a transit-delay histogram bucket.
const DELAY_BUCKET_US: u64 = 100;
/// Buckets (the last one holds everything from 100 ms on).
const DELAY_BUCKETS: usize = 1001;

/// The delay under which `q` of the packets in histogram `h` arrived, in ms.
fn delay_quantile(h: &[u64], q: f64) -> f64 {
    let total: u64 = h.iter().sum();
    let mut acc = 0;
    for (i, n) in h.iter().enumerate() {
        acc += n;
        if total > 0 && acc as f64 >= q * total as f64 {
            return ((i as u64 + 1) * DELAY_BUCKET_US) as f64 / 1000.0;
        }
    }
    f64::NAN
}

/// One generator thread: streams `first..first+count` (whole calls). Returns
/// the histogram of measured packets' transit delay (due time → received), in
/// [`DELAY_BUCKET_US`] buckets.
fn run_thread(
    plan: &Plan,
    socks: &[UdpSocket],
    first: usize,
    stats: &mut [StreamStats],
    send_errors: &AtomicU64,
) -> Result<Vec<u64>> {
    let mut delays = vec![0u64; DELAY_BUCKETS];
    // SAFETY: plain epoll syscalls on descriptors owned by `socks`, which outlive this.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        bail!("epoll_create1: {}", std::io::Error::last_os_error());
    }
    for (i, s) in socks.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: valid epoll fd and event.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) } < 0 {
            bail!("epoll_ctl: {}", std::io::Error::last_os_error());
        }
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    let mut pkt = [0u8; PACKET];
    pkt[0] = 0x80;
    let mut buf = [0u8; 2048];
    let n = socks.len();
    // Next packet to send: tick k, local stream index j.
    let (mut k, mut j) = (0u64, 0usize);
    let stop = plan.due(plan.end_k, 0) + plan.late + Duration::from_millis(20);
    loop {
        let now = Instant::now();
        while k < plan.end_k && plan.due(k, first + j) <= now {
            let s = first + j;
            pkt[2..4].copy_from_slice(&(k as u16).to_be_bytes());
            pkt[4..8].copy_from_slice(&((k as u32).wrapping_mul(160)).to_be_bytes());
            pkt[8..12].copy_from_slice(&(s as u32).to_be_bytes());
            pkt[12..20].copy_from_slice(&k.to_be_bytes());
            if socks[j].send(&pkt).is_err() {
                send_errors.fetch_add(1, Ordering::Relaxed);
            }
            if k >= plan.warm_k {
                stats[j].sent += 1;
            }
            j += 1;
            if j == n {
                j = 0;
                k += 1;
            }
        }
        if now >= stop {
            break;
        }
        let next = if k < plan.end_k {
            plan.due(k, first + j)
        } else {
            stop
        };
        // Wake at least every millisecond, never spin: due packets go out in
        // 1 ms batches (lateness is judged against the due time anyway).
        let wait_ms = next.saturating_duration_since(now).as_millis().clamp(1, 5) as i32;
        // SAFETY: events has room for events.len() entries.
        let ready =
            unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, wait_ms) };
        let now = Instant::now();
        for e in events.iter().take(ready.max(0) as usize) {
            let r = e.u64 as usize;
            while let Ok(len) = socks[r].recv(&mut buf) {
                if len < 20 {
                    continue;
                }
                let s = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                let kk = u64::from_be_bytes([
                    buf[12], buf[13], buf[14], buf[15], buf[16], buf[17], buf[18], buf[19],
                ]);
                if kk < plan.warm_k || kk >= plan.end_k || s < first || s >= first + n {
                    continue;
                }
                let st = &mut stats[s - first];
                let delay = now.saturating_duration_since(plan.due(kk, s));
                let b = (delay.as_micros() as u64 / DELAY_BUCKET_US) as usize;
                delays[b.min(DELAY_BUCKETS - 1)] += 1;
                if delay > plan.late {
                    st.late += 1;
                } else {
                    st.on_time += 1;
                }
            }
        }
    }
    // SAFETY: closing the epoll descriptor created above.
    unsafe { libc::close(ep) };
    Ok(delays)
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the comm.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    raise_nofile();
    let mut ctl = ng::Client::new(args.ng)?;
    let run = std::process::id();
    let n = args.calls;
    if n == 0 || args.threads == 0 {
        bail!("--calls and --threads must be at least 1");
    }
    // Sockets: 2i = leg A of call i, 2i+1 = leg B.
    let mut socks = Vec::with_capacity(2 * n);
    let setup = Instant::now();
    for i in 0..n {
        let pa = args.base_port + (4 * i) as u16;
        let pb = pa + 2;
        let a =
            UdpSocket::bind(SocketAddr::from((LOCAL, pa))).with_context(|| format!("bind {pa}"))?;
        let b =
            UdpSocket::bind(SocketAddr::from((LOCAL, pb))).with_context(|| format!("bind {pb}"))?;
        let call_id = format!("lt-{run}-{i}");
        let offer = ctl.call(&Value::dict(&[
            ("command", Value::str("offer")),
            ("call-id", Value::str(&call_id)),
            ("from-tag", Value::str("a")),
            ("sdp", Value::Bytes(sdp(pa, i))),
        ]))?;
        let to_b = media_addr(offer.bytes("sdp").context("offer reply without sdp")?)?;
        let answer = ctl.call(&Value::dict(&[
            ("command", Value::str("answer")),
            ("call-id", Value::str(&call_id)),
            ("from-tag", Value::str("a")),
            ("to-tag", Value::str("b")),
            ("sdp", Value::Bytes(sdp(pb, i))),
        ]))?;
        let to_a = media_addr(answer.bytes("sdp").context("answer reply without sdp")?)?;
        // Leg A sends to the port the relay gave it (in the answer), B likewise.
        a.connect(to_a)?;
        b.connect(to_b)?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        socks.push(a);
        socks.push(b);
    }
    eprintln!(
        "{}: {} calls set up in {:.1} s",
        args.name,
        n,
        setup.elapsed().as_secs_f64()
    );

    let warm_k = args.warmup_s * 50;
    let plan = Plan {
        start: Instant::now() + Duration::from_millis(100),
        streams: 2 * n,
        warm_k,
        end_k: warm_k + args.seconds * 50,
        late: Duration::from_millis(args.late_ms),
    };
    let mut stats = vec![StreamStats::default(); 2 * n];
    let send_errors = AtomicU64::new(0);
    // Whole calls per thread.
    let per = n.div_ceil(args.threads) * 2;
    let self_pid = std::process::id();
    let mut delays = vec![0u64; DELAY_BUCKETS];
    let (cpu, gen_cpu) = std::thread::scope(|scope| -> Result<(Option<u64>, Option<u64>)> {
        let mut handles = Vec::new();
        for (t, (chunk, st)) in socks.chunks(per).zip(stats.chunks_mut(per)).enumerate() {
            let plan = &plan;
            let send_errors = &send_errors;
            handles.push(scope.spawn(move || run_thread(plan, chunk, t * per, st, send_errors)));
        }
        // CPU of the relay and of this generator over the measured window.
        let w0 = plan.due(plan.warm_k, 0);
        let w1 = plan.due(plan.end_k, 0);
        std::thread::sleep(w0.saturating_duration_since(Instant::now()));
        let c0 = args.pid.and_then(cpu_ticks);
        let g0 = cpu_ticks(self_pid);
        std::thread::sleep(w1.saturating_duration_since(Instant::now()));
        let c1 = args.pid.and_then(cpu_ticks);
        let g1 = cpu_ticks(self_pid);
        for h in handles {
            let d = h
                .join()
                .map_err(|_| anyhow::anyhow!("generator thread panicked"))??;
            for (acc, n) in delays.iter_mut().zip(d) {
                *acc += n;
            }
        }
        Ok((
            c0.zip(c1).map(|(a, b)| b - a),
            g0.zip(g1).map(|(a, b)| b - a),
        ))
    })?;

    for i in 0..n {
        let _ = ctl.call(&Value::dict(&[
            ("command", Value::str("delete")),
            ("call-id", Value::str(format!("lt-{run}-{i}"))),
            ("from-tag", Value::str("a")),
        ]));
    }

    let mut pass = 0;
    let (mut sent, mut on_time, mut late) = (0u64, 0u64, 0u64);
    for call in stats.chunks(2) {
        let ok = call.iter().all(|s| {
            let bad = s.sent.saturating_sub(s.on_time);
            s.sent > 0 && (bad as f64) < 0.001 * s.sent as f64
        });
        pass += usize::from(ok);
        for s in call {
            sent += s.sent;
            on_time += s.on_time;
            late += s.late;
        }
    }
    let lost = sent.saturating_sub(on_time + late);
    let tps = ticks_per_s();
    let per_k = |t: Option<u64>| {
        t.map(|t| format!("{:.2}", t as f64 / tps * 1000.0 / (sent as f64 / 1000.0)))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{name}: calls {n} passing {pass} ({pct:.1} %) | packets {sent} on-time {on_time} late {late} lost {lost} \
         effective loss {loss:.4} % | relay CPU {cpu_s} s = {per} ms per 1000 packets | \
         generator CPU {gen_per} ms per 1000 packets | send errors {errs} | \
         transit p50 {p50:.1} ms p99 {p99:.1} ms p99.9 {p999:.1} ms",
        name = args.name,
        pct = 100.0 * pass as f64 / n as f64,
        loss = 100.0 * (sent - on_time) as f64 / sent.max(1) as f64,
        cpu_s = cpu.map(|t| format!("{:.2}", t as f64 / tps)).unwrap_or_else(|| "-".into()),
        per = per_k(cpu),
        gen_per = per_k(gen_cpu),
        errs = send_errors.load(Ordering::Relaxed),
        p50 = delay_quantile(&delays, 0.5),
        p99 = delay_quantile(&delays, 0.99),
        p999 = delay_quantile(&delays, 0.999),
    );
    Ok(())
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
