//! `sms_bench`: SMS relay throughput and latency through SMPP, end to end.
//!
//! It is the SMS centre: it listens for the relay's ESME binds, sends `deliver_sm`
//! (courier → X) and answers the relay's `submit_sm` (X → customer). A text counts
//! as relayed when its `submit_sm` arrives; its latency is from the relay's
//! `deliver_sm_resp` (the acknowledgement: the text is durably queued) to that
//! `submit_sm`. Before sending it creates a pool and `--bindings` bindings over
//! the relay's API.
//!
//! `--alone` measures the generator without a relay: an in-process ideal ESME
//! binds, acknowledges each `deliver_sm` at once and answers it with a `submit_sm`,
//! so the figure is the generator's own ceiling (report the ratio).
//!
//! `--rate 0` sends as fast as the window (`--window` unacknowledged
//! `deliver_sm`) allows: throughput. `--rate R` paces R texts/s: latency at R.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rusmpp::pdus::{
    BindTransceiver, BindTransceiverResp, DeliverSm, DeliverSmResp, SubmitSm, SubmitSmResp,
};
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{Npi, Ton};
use rusmpp::{Command, CommandStatus, Pdu};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::Framed;

#[derive(Parser, Debug)]
struct Args {
    /// Where the relay's SMPP link connects (`[[sms.smpp]] address`).
    #[arg(long, default_value = "127.0.0.1:2775")]
    listen: String,
    /// Relay API URL (pool and bindings are created there).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Admin API key.
    #[arg(long, env = "MASKLINE_KEY", default_value = "")]
    key: String,
    /// Texts to send.
    #[arg(long, default_value_t = 50_000)]
    n: usize,
    /// Texts per second (0: as fast as the window allows).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Unacknowledged deliver_sm at most.
    #[arg(long, default_value_t = 1024)]
    window: usize,
    /// Relay binds to wait for.
    #[arg(long, default_value_t = 2)]
    binds: usize,
    /// Bindings (courier/customer pairs) the texts spread over.
    #[arg(long, default_value_t = 1000)]
    bindings: usize,
    /// Measure the generator alone (in-process ideal ESME, no relay).
    #[arg(long)]
    alone: bool,
}

type Sink = mpsc::UnboundedSender<Command>;

struct State {
    sent_at: Vec<AtomicU64>,
    acked_at: Vec<AtomicU64>,
    relayed: AtomicUsize,
    hist: Mutex<Histogram<u64>>,
    last: AtomicU64,
    window: Semaphore,
    epoch: Instant,
    /// Digits of the customer of each courier (for checking the destination).
    pairs: Vec<(String, String, String)>,
    wrong: AtomicUsize,
}

impl State {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

fn cs<const N: usize>(s: &str) -> Result<COctetString<1, N>> {
    COctetString::from_str(s).map_err(|e| anyhow::anyhow!("{e:?}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let listener = TcpListener::bind(&a.listen).await.context("listen")?;
    let addr = listener.local_addr()?;
    let pairs = if a.alone {
        (0..a.bindings)
            .map(|i| {
                (
                    format!("861380{i:07}"),
                    format!("861390{i:07}"),
                    format!("861720{:07}", i % 100),
                )
            })
            .collect()
    } else {
        setup_bindings(&a).await?
    };
    let st = Arc::new(State {
        sent_at: (0..a.n).map(|_| AtomicU64::new(0)).collect(),
        acked_at: (0..a.n).map(|_| AtomicU64::new(0)).collect(),
        relayed: AtomicUsize::new(0),
        hist: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        last: AtomicU64::new(0),
        window: Semaphore::new(a.window),
        epoch: Instant::now(),
        pairs,
        wrong: AtomicUsize::new(0),
    });
    if a.alone {
        for _ in 0..a.binds {
            tokio::spawn(ideal_esme(addr.to_string()));
        }
    }
    let sessions: Arc<Mutex<Vec<Sink>>> = Arc::default();
    {
        let (st, sessions) = (st.clone(), sessions.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                tokio::spawn(session(sock, st.clone(), sessions.clone()));
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sessions.lock().map(|s| s.len()).unwrap_or(0) < a.binds {
        if Instant::now() > deadline {
            bail!(
                "the relay did not bind {} sessions to {addr} within 60 s",
                a.binds
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{} sessions bound; sending {} texts", a.binds, a.n);
    let sinks = sessions.lock().map(|s| s.clone()).unwrap_or_default();
    let start = st.now_us();
    let pace = (a.rate > 0).then(|| Duration::from_secs_f64(1.0 / a.rate as f64));
    let t0 = Instant::now();
    for i in 0..a.n {
        if let Some(p) = pace {
            let due = t0 + p * i as u32;
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        st.window.acquire().await?.forget();
        let (courier, _, x) = &st.pairs[i % st.pairs.len()];
        let sm = DeliverSm::builder()
            .source_addr_ton(Ton::International)
            .source_addr_npi(Npi::Isdn)
            .source_addr(cs(courier)?)
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(cs(x)?)
            .short_message(
                OctetString::from_vec(format!("bench {i}").into_bytes())
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?,
            )
            .build();
        st.sent_at[i].store(st.now_us(), Ordering::Relaxed);
        let _ = sinks[i % sinks.len()].send(Command::new(CommandStatus::EsmeRok, i as u32 + 1, sm));
    }
    let send_done = st.now_us();
    let deadline = Instant::now() + Duration::from_secs(120);
    while st.relayed.load(Ordering::Relaxed) < a.n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let relayed = st.relayed.load(Ordering::Relaxed);
    let secs = (st.last.load(Ordering::Relaxed).saturating_sub(start)) as f64 / 1e6;
    let h = st.hist.lock().map_err(|_| anyhow::anyhow!("lock"))?;
    println!(
        "{}: relayed {relayed}/{} in {secs:.2} s = {:.0} msg/s (offered {}; sending took {:.2} s); \
         ack->submit latency ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; wrong destination {}",
        if a.alone { "generator alone" } else { "relay" },
        a.n,
        relayed as f64 / secs.max(1e-9),
        if a.rate == 0 { "max".to_string() } else { format!("{}/s", a.rate) },
        (send_done - start) as f64 / 1e6,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        st.wrong.load(Ordering::Relaxed),
    );
    if relayed < a.n {
        bail!("only {relayed} of {} texts were relayed", a.n);
    }
    Ok(())
}

/// One relay session: answers binds/enquire_link/submit_sm, records acks.
async fn session(sock: TcpStream, st: Arc<State>, sessions: Arc<Mutex<Vec<Sink>>>) {
    let (mut sink, mut stream) = Framed::new(sock, CommandCodec::new()).split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Command>();
    tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            if sink.feed(c).await.is_err() {
                break;
            }
            while let Ok(c) = rx.try_recv() {
                if sink.feed(c).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
    });
    let mut ids = 0u64;
    while let Some(Ok(cmd)) = stream.next().await {
        let seq = cmd.sequence_number();
        match cmd.pdu() {
            Some(Pdu::BindTransceiver(_)) => {
                let resp = BindTransceiverResp::builder()
                    .system_id(cs("bench").unwrap_or_default())
                    .build();
                let _ = tx.send(Command::new(CommandStatus::EsmeRok, seq, resp));
                if let Ok(mut s) = sessions.lock() {
                    s.push(tx.clone());
                }
            }
            Some(Pdu::EnquireLink) => {
                let _ = tx.send(Command::new(
                    CommandStatus::EsmeRok,
                    seq,
                    Pdu::EnquireLinkResp,
                ));
            }
            Some(Pdu::Unbind) => {
                let _ = tx.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp));
            }
            Some(Pdu::DeliverSmResp(_)) => {
                let i = seq as usize - 1;
                if let Some(a) = st.acked_at.get(i) {
                    a.store(st.now_us(), Ordering::Relaxed);
                    st.window.add_permits(1);
                }
            }
            Some(Pdu::SubmitSm(sm)) => {
                ids += 1;
                let resp = SubmitSmResp::builder()
                    .message_id(cs(&format!("b{ids}")).unwrap_or_default())
                    .build();
                let _ = tx.send(Command::new(CommandStatus::EsmeRok, seq, resp));
                let body = String::from_utf8_lossy(sm.short_message().as_ref()).into_owned();
                if let Some(i) = body
                    .strip_prefix("bench ")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    let now = st.now_us();
                    let acked = st
                        .acked_at
                        .get(i)
                        .map(|a| a.load(Ordering::Relaxed))
                        .unwrap_or(0);
                    let dest = String::from_utf8_lossy(sm.destination_addr.as_ref())
                        .trim_end_matches(char::from(0))
                        .to_owned();
                    if dest != st.pairs[i % st.pairs.len()].1 {
                        st.wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    // A submit_sm may overtake its deliver_sm_resp (the relay
                    // answers after queueing, a worker may already be sending):
                    // that is no added delay at all.
                    let latency = if acked == 0 {
                        1
                    } else {
                        now.saturating_sub(acked).max(1)
                    };
                    if let Ok(mut h) = st.hist.lock() {
                        let _ = h.record(latency);
                    }
                    st.last.fetch_max(now, Ordering::Relaxed);
                    st.relayed.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

/// `--alone`: binds and turns each deliver_sm into a submit_sm at once.
async fn ideal_esme(addr: String) {
    let Ok(sock) = TcpStream::connect(&addr).await else {
        return;
    };
    let _ = sock.set_nodelay(true);
    let mut framed = Framed::new(sock, CommandCodec::new());
    let bind = BindTransceiver::builder()
        .system_id(cs("ideal").unwrap_or_default())
        .build();
    if framed
        .send(Command::new(CommandStatus::EsmeRok, 1, bind))
        .await
        .is_err()
    {
        return;
    }
    let mut seq = 1u32;
    let mut out = Vec::new();
    while let Some(Ok(cmd)) = framed.next().await {
        if let Some(Pdu::DeliverSm(d)) = cmd.pdu() {
            out.push(Command::new(
                CommandStatus::EsmeRok,
                cmd.sequence_number(),
                DeliverSmResp::builder().build(),
            ));
            seq += 1;
            let sm = SubmitSm::builder()
                .source_addr(d.destination_addr.clone())
                .destination_addr(cs(&customer_of(&d.source_addr)).unwrap_or_default())
                .short_message(d.short_message().clone())
                .build();
            out.push(Command::new(CommandStatus::EsmeRok, seq, sm));
        }
        for c in out.drain(..) {
            if framed.feed(c).await.is_err() {
                return;
            }
        }
        if SinkExt::<Command>::flush(&mut framed).await.is_err() {
            return;
        }
    }
}

/// The alone mode's pairing: courier `861380NNNNNNN` ↔ customer `861390NNNNNNN`.
fn customer_of(courier: &COctetString<1, 21>) -> String {
    String::from_utf8_lossy(courier.as_ref())
        .trim_end_matches(char::from(0))
        .replacen("86138", "86139", 1)
}

/// Creates a pool with enough numbers and `--bindings` bindings over the API;
/// returns (courier, customer, X) digits per binding.
async fn setup_bindings(a: &Args) -> Result<Vec<(String, String, String)>> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    let client: Client<_, Full<bytes::Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let post = |path: String, body: serde_json::Value| {
        let req = hyper::Request::post(format!("{}{path}", a.url))
            .header("authorization", format!("Bearer {}", a.key))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body.to_string())));
        let client = client.clone();
        async move {
            let resp = client.request(req?).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default(),
            ))
        }
    };
    let pool = format!("smsb{}", rand::random::<u32>());
    let (s, b) = post(
        "/v1/pools".into(),
        serde_json::json!({"name": pool, "country": 86, "max_bindings_per_number": 200}),
    )
    .await?;
    if s != 201 {
        bail!("creating the pool: {s} {b}");
    }
    let base: u64 = 8_617_300_000_000 + u64::from(rand::random::<u16>()) * 1000;
    let numbers: Vec<serde_json::Value> = (0..a.bindings.div_ceil(100) + 1)
        .map(|i| serde_json::json!({"number": format!("+{}", base + i as u64)}))
        .collect();
    let (s, b) = post(
        format!("/v1/pools/{pool}/numbers"),
        serde_json::json!({"numbers": numbers}),
    )
    .await?;
    if s != 200 {
        bail!("importing numbers: {s} {b}");
    }
    let mut pairs = Vec::with_capacity(a.bindings);
    let tag: u32 = rand::random::<u32>() % 1000;
    for i in 0..a.bindings {
        let courier = format!("+86138{tag:03}{i:05}");
        let customer = format!("+86139{tag:03}{i:05}");
        let (s, b) = post(
            "/v1/bindings".into(),
            serde_json::json!({"pool": pool, "shipment_id": format!("B{i}"), "party_a": courier, "party_b": customer, "ttl_s": 3600}),
        )
        .await?;
        if s != 201 {
            bail!("creating binding {i}: {s} {b}");
        }
        let x = b["number"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('+')
            .to_string();
        pairs.push((courier[1..].to_string(), customer[1..].to_string(), x));
    }
    Ok(pairs)
}
