//! `ivr_load`: N concurrent IVR sessions in maskline's media relay: each plays
//! the committed prompt `config/prompts/en/enter_extension` to its caller (looped)
//! and detects RFC 4733 DTMF the caller sends, the work an IVR call costs the relay.
//!
//! The relay ([`maskline::media::MediaRelay`], `--workers` forwarding threads)
//! runs in this process; each session's leg A is answered locally
//! (`answer_locally`) with an SDP naming one receiver socket on 127.0.0.1, so
//! one receiver thread timestamps every prompt packet on arrival. Per session,
//! packet k is due `(ts_k - ts_0) / 8` ms after the session's first packet; the
//! deviation of each arrival from that schedule, minus the session's median
//! deviation, is the send-time jitter measured at the receiver (p50/p99/max over
//! all packets of the `--seconds` window after `--warmup-s`). Every second
//! each session is sent one telephone-event (start, continuation, three end
//! packets); detections are counted from the sessions' events. CPU is this
//! process's (relay workers + generator + receiver) from `/proc/self/stat`.
//! SIP signalling is not part of it: that is `voice.sh`'s call-setup load.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use maskline::media::prompt::Prompt;
use maskline::media::{Advertise, MediaConfig, MediaEvent, MediaRelay, MediaSession};

#[derive(Parser, Debug, Clone)]
#[command(about = "Concurrent IVR sessions (prompt playback + DTMF detection) in the media relay")]
struct Args {
    /// Concurrent sessions.
    #[arg(long, default_value_t = 500)]
    sessions: usize,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Warm-up before the window, seconds.
    #[arg(long, default_value_t = 3)]
    warmup_s: u64,
    /// Relay forwarding threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Prompt directory (a language of `config/prompts`).
    #[arg(long, default_value = "config/prompts/en")]
    prompts: PathBuf,
}

fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is 0, utime 11, stime 12 (clock ticks).
    (t(11) + t(12)) / 100.0
}

struct Arrival {
    at: Instant,
    ts: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let prompt = Arc::new(Prompt::load(&args.prompts, "enter_extension").context("prompt")?);
    let relay = MediaRelay::start(MediaConfig {
        ports: (30000, 30000 + 4 * args.sessions as u16 + 8),
        workers: args.workers,
        timeout: Duration::from_secs(3600),
        ..MediaConfig::default()
    })?;
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let rx_addr = rx.local_addr()?;
    set_rcvbuf(&rx, 8 << 20);
    rx.set_read_timeout(Some(Duration::from_millis(100)))?;
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        rx_addr.port()
    );
    let mut sessions: Vec<MediaSession> = Vec::with_capacity(args.sessions);
    let mut ports: Vec<SocketAddr> = Vec::new();
    for _ in 0..args.sessions {
        let mut s = relay.allocate(Advertise::default())?;
        s.answer_locally(sdp.as_bytes())?;
        ports.push(SocketAddr::from((
            [127, 0, 0, 1],
            s.local_port(maskline::media::Leg::A),
        )));
        sessions.push(s);
    }
    // Stagger the starts over one packet time, as real calls would be.
    for (i, s) in sessions.iter_mut().enumerate() {
        s.play(&prompt)?;
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_micros(1000));
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let arrivals: Arc<Mutex<HashMap<u16, Vec<Arrival>>>> = Arc::default();
    let tx = rx.try_clone().context("dtmf socket")?;
    let receiver = {
        let (stop, measuring, arrivals) = (stop.clone(), measuring.clone(), arrivals.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut local: HashMap<u16, Vec<Arrival>> = HashMap::new();
            let mut total = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = rx.recv_from(&mut buf) else {
                    continue;
                };
                let at = Instant::now();
                if n < 12 || !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                total += 1;
                let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                local
                    .entry(from.port())
                    .or_default()
                    .push(Arrival { at, ts });
            }
            if let Ok(mut a) = arrivals.lock() {
                *a = local;
            }
            total
        })
    };

    // DTMF goes from the receiver's own socket: the address the SDP names, so
    // the relay's latching keeps sending prompts there.
    let tx = tx;
    let start = Instant::now();
    let warm_end = start + Duration::from_secs(args.warmup_s);
    let end = warm_end + Duration::from_secs(args.seconds);
    let mut cpu0 = 0.0;
    let mut dtmf_sent = 0u64;
    let mut dtmf_seen = 0u64;
    let mut second = 0u64;
    let mut te_ts: u32 = 1;
    let mut replays = 0u64;
    while Instant::now() < end {
        let now = Instant::now();
        if !measuring.load(Ordering::Relaxed) && now >= warm_end {
            measuring.store(true, Ordering::Relaxed);
            cpu0 = cpu_seconds();
            dtmf_sent = 0;
            dtmf_seen = 0;
        }
        let sec = now.duration_since(start).as_secs();
        if sec != second {
            second = sec;
            // One key press per session per second, in 5 packets over ~80 ms.
            te_ts = te_ts.wrapping_add(8000);
            for (i, to) in ports.iter().enumerate() {
                let ev = (i % 10) as u8;
                for (k, end) in [false, false, true, true, true].into_iter().enumerate() {
                    let mut p = vec![0x80, 101 | if k == 0 { 0x80 } else { 0 }];
                    p.extend_from_slice(&(k as u16).to_be_bytes());
                    p.extend_from_slice(&te_ts.to_be_bytes());
                    p.extend_from_slice(&(i as u32).to_be_bytes());
                    p.extend_from_slice(&[ev, if end { 0x8A } else { 0x0A }, 0, 160]);
                    let _ = tx.send_to(&p, to);
                }
                dtmf_sent += 1;
            }
        }
        for s in sessions.iter_mut() {
            while let Ok(ev) = s.events().try_recv() {
                match ev {
                    MediaEvent::Dtmf(_) => dtmf_seen += 1,
                    MediaEvent::PromptDone => {
                        replays += 1;
                        s.play(&prompt)?;
                    }
                    MediaEvent::Timeout => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    measuring.store(false, Ordering::Relaxed);
    let cpu = cpu_seconds() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let received = receiver.join().unwrap_or(0);
    let arrivals = arrivals
        .lock()
        .map(|mut a| std::mem::take(&mut *a))
        .unwrap_or_default();

    let mut jitter = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut gaps = 0u64;
    for list in arrivals.values() {
        // Split at prompt restarts (a new talkspurt: timestamps jump).
        let mut segs: Vec<&[Arrival]> = Vec::new();
        let mut from = 0;
        for i in 1..list.len() {
            if list[i].ts.wrapping_sub(list[i - 1].ts) != 160 {
                segs.push(&list[from..i]);
                from = i;
                gaps += 1;
            }
        }
        segs.push(&list[from..]);
        for seg in segs.into_iter().filter(|s| s.len() > 2) {
            let dev: Vec<f64> = seg
                .iter()
                .map(|a| {
                    let ideal = f64::from(a.ts.wrapping_sub(seg[0].ts)) / 8.0;
                    a.at.duration_since(seg[0].at).as_secs_f64() * 1000.0 - ideal
                })
                .collect();
            let mut sorted = dev.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            let med = sorted[sorted.len() / 2];
            for d in dev {
                jitter.record(((d - med).abs() * 1000.0) as u64)?;
            }
        }
    }
    let expected = args.sessions as f64 * args.seconds as f64 * 50.0;
    println!(
        "ivr_load sessions={} workers={} window_s={} packets_received={} (expected ~{:.0}, {:.2}%) \
         jitter_us p50={} p99={} p999={} max={} dtmf_detected={}/{} prompt_replays={} talkspurt_breaks={} \
         cpu_s={:.2} cpu_per_session_pct={:.3}",
        args.sessions,
        args.workers,
        args.seconds,
        received,
        expected,
        100.0 * received as f64 / expected,
        jitter.value_at_quantile(0.5),
        jitter.value_at_quantile(0.99),
        jitter.value_at_quantile(0.999),
        jitter.max(),
        dtmf_seen,
        dtmf_sent,
        replays,
        gaps,
        cpu,
        100.0 * cpu / args.seconds as f64 / args.sessions as f64,
    );
    drop(sessions);
    Ok(())
}

fn set_rcvbuf(s: &UdpSocket, bytes: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a valid socket with a pointer to a live i32.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}
