//! `media_relay_ng`: maskline's media relay ([`maskline::media::MediaRelay`]) in a
//! process of its own, driven by the subset of rtpengine's ng control protocol that
//! `media_load` speaks (`offer`, `answer`, `delete`, `ping`), so that the same load
//! generator measures maskline and rtpengine the same way (CPU from
//! `/proc/<pid>/stat` of a separate process).
//!
//! `offer` allocates a session and runs the SDP through `MediaSession::offer(A)`;
//! `answer` runs it through `MediaSession::answer(B)`; `delete` drops the session.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use maskline::media::{Advertise, Leg, MediaConfig, MediaRelay, MediaSession};

#[path = "../ng.rs"]
mod ng;
use ng::Value;

#[derive(Parser, Debug)]
#[command(about = "maskline's media relay behind an ng (rtpengine) control socket, for benchmarks")]
struct Args {
    /// ng control address.
    #[arg(long, default_value = "127.0.0.1:22223")]
    listen: String,
    /// Media address (bind and SDP).
    #[arg(long, default_value = "127.0.0.1")]
    ip: std::net::IpAddr,
    /// RTP port range FIRST-LAST.
    #[arg(long, default_value = "40000-51999")]
    ports: String,
    /// Forwarding threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// How long a busy worker gathers packets between passes, µs (`[media] coalesce_us`).
    #[arg(long, default_value_t = maskline::media::DEFAULT_COALESCE.as_micros() as u64)]
    coalesce_us: u64,
    /// Media timeout, seconds.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
}

fn reply(result: &[(&str, Value)]) -> Value {
    Value::dict(result)
}

fn error(why: &str) -> Value {
    reply(&[
        ("result", Value::str("error")),
        ("error-reason", Value::str(why)),
    ])
}

fn main() -> Result<()> {
    let args = Args::parse();
    raise_nofile();
    let (lo, hi) = args.ports.split_once('-').context("--ports FIRST-LAST")?;
    let relay = MediaRelay::start(MediaConfig {
        ports: (lo.parse()?, hi.parse()?),
        bind_ip: args.ip,
        public_ip: args.ip,
        timeout: Duration::from_secs(args.timeout_s),
        workers: args.workers,
        coalesce: Duration::from_micros(args.coalesce_us),
    })?;
    let sock = UdpSocket::bind(&args.listen)?;
    println!("ng listening on {}", sock.local_addr()?);
    let mut calls: HashMap<Vec<u8>, MediaSession> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        let Ok((cookie, msg)) = ng::parse_datagram(&buf[..n]) else {
            continue;
        };
        let call_id = msg.bytes("call-id").unwrap_or_default().to_vec();
        let sdp = msg.bytes("sdp").unwrap_or_default();
        let out = match msg.bytes("command").unwrap_or_default() {
            b"ping" => reply(&[("result", Value::str("pong"))]),
            b"offer" => {
                let session = match calls.remove(&call_id) {
                    Some(s) => Ok(s),
                    None => relay.allocate(Advertise::default()),
                };
                match session {
                    Ok(mut s) => {
                        let r = s.offer(Leg::A, sdp);
                        calls.insert(call_id, s);
                        match r {
                            Ok(body) => {
                                reply(&[("result", Value::str("ok")), ("sdp", Value::Bytes(body))])
                            }
                            Err(e) => error(&e.to_string()),
                        }
                    }
                    Err(e) => error(&e.to_string()),
                }
            }
            b"answer" => match calls.get_mut(&call_id) {
                Some(s) => match s.answer(Leg::B, sdp) {
                    Ok(body) => reply(&[("result", Value::str("ok")), ("sdp", Value::Bytes(body))]),
                    Err(e) => error(&e.to_string()),
                },
                None => error("unknown call-id"),
            },
            b"delete" => {
                calls.remove(&call_id);
                reply(&[("result", Value::str("ok"))])
            }
            b"statistics" => {
                let st = relay.stats();
                reply(&[
                    ("result", Value::str("ok")),
                    ("relayed", Value::Int(st.relayed_packets as i64)),
                    (
                        "dropped-unknown-source",
                        Value::Int(st.dropped_unknown_source as i64),
                    ),
                    (
                        "dropped-no-session",
                        Value::Int(st.dropped_no_session as i64),
                    ),
                    (
                        "dropped-send-error",
                        Value::Int(st.dropped_send_error as i64),
                    ),
                ])
            }
            _ => error("unsupported command"),
        };
        sock.send_to(&ng::datagram(cookie, &out), from)?;
    }
}

/// Thousands of calls need thousands of sockets: lift the soft descriptor limit.
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
