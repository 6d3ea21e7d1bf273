//! Client transaction state machine tests: every state, every timer, with
//! explicit instants (no clock is read).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::timer::TimerConfig;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn invite() -> RequestInfo<'static> {
    RequestInfo {
        method: "INVITE",
        request_uri: "sip:+15550100@carrier.example",
        top_via: "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1",
        branch: Some("z9hG4bKinv1"),
        sent_by: "192.0.2.1:5060".into(),
        call_id: "c1@192.0.2.1",
        from: "<sip:relay@192.0.2.1>;tag=f1",
        from_tag: Some("f1"),
        to: "<sip:+15550100@carrier.example>",
        to_tag: None,
        cseq: 7,
        routes: vec!["<sip:sbc1.example;lr>", "<sip:sbc2.example;lr>"],
    }
}

fn options() -> RequestInfo<'static> {
    RequestInfo {
        method: "OPTIONS",
        ..invite()
    }
}

fn resp(status: u16) -> ResponseInfo<'static> {
    ResponseInfo {
        status,
        branch: Some("z9hG4bKinv1"),
        cseq_method: "INVITE",
        to: "<sip:+15550100@carrier.example>;tag=t9",
    }
}

fn payload() -> Arc<[u8]> {
    Arc::from(&b"REQUEST"[..])
}

fn drain(tx: &mut ClientTransaction) -> Vec<TxOutput> {
    std::iter::from_fn(|| tx.poll_output()).collect()
}

/// Fire timers by following poll_timeout until `end`; returns the instants
/// (offsets from t0) at which the request was retransmitted and the events.
fn run_until(
    tx: &mut ClientTransaction,
    t0: Instant,
    end: Duration,
) -> (Vec<Duration>, Vec<TxEvent>) {
    let mut sends = Vec::new();
    let mut events = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        if at > t0 + end {
            break;
        }
        tx.handle_timeout(at);
        for o in drain(tx) {
            match o {
                TxOutput::Transmit(_) => sends.push(at - t0),
                TxOutput::Event(e) => events.push(e),
            }
        }
    }
    (sends, events)
}

#[test]
fn invite_timer_a_doubles_without_cap_until_timer_b() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, TimerConfig::default());
    assert_eq!(tx.state(), ClientState::Calling);
    assert!(tx.is_invite());
    assert_eq!(drain(&mut tx), [TxOutput::Transmit(payload())]);
    let (sends, events) = run_until(&mut tx, t0, Duration::from_secs(100));
    assert_eq!(
        sends,
        [ms(500), ms(1500), ms(3500), ms(7500), ms(15500), ms(31500)]
    );
    assert_eq!(events, [TxEvent::Timeout, TxEvent::Terminated]);
    assert_eq!(tx.state(), ClientState::Terminated);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn timer_b_fires_exactly_at_64_t1() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, TimerConfig::default());
    drain(&mut tx);
    let (_, events) = run_until(&mut tx, t0, ms(31_999));
    assert!(events.is_empty());
    tx.handle_timeout(t0 + ms(32_000));
    assert_eq!(
        drain(&mut tx),
        [
            TxOutput::Event(TxEvent::Timeout),
            TxOutput::Event(TxEvent::Terminated)
        ]
    );
}

#[test]
fn invite_over_reliable_transport_never_retransmits() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), true, TimerConfig::default());
    drain(&mut tx);
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    let (sends, events) = run_until(&mut tx, t0, Duration::from_secs(40));
    assert!(sends.is_empty());
    assert_eq!(events, [TxEvent::Timeout, TxEvent::Terminated]);
}

#[test]
fn configurable_t1_scales_timers() {
    let t0 = Instant::now();
    let timers = TimerConfig {
        t1: ms(100),
        ..TimerConfig::default()
    };
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, timers);
    drain(&mut tx);
    let (sends, events) = run_until(&mut tx, t0, Duration::from_secs(10));
    assert_eq!(
        sends,
        [ms(100), ms(300), ms(700), ms(1500), ms(3100), ms(6300)]
    );
    assert_eq!(events, [TxEvent::Timeout, TxEvent::Terminated]);
}

#[test]
fn provisional_moves_to_proceeding_and_stops_timers_a_and_b() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, TimerConfig::default());
    drain(&mut tx);
    assert!(tx.handle_response(t0 + ms(100), &resp(100)));
    assert_eq!(tx.state(), ClientState::Proceeding);
    assert_eq!(tx.poll_timeout(), None);
    assert!(tx.handle_response(t0 + ms(200), &resp(180)));
    assert!(tx.handle_response(t0 + ms(300), &resp(183)));
    assert_eq!(tx.state(), ClientState::Proceeding);
    tx.handle_timeout(t0 + Duration::from_secs(100));
    assert!(drain(&mut tx).is_empty());
}

#[test]
fn non_2xx_final_sends_ack_and_absorbs_retransmissions_until_timer_d() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, TimerConfig::default());
    drain(&mut tx);
    assert!(tx.handle_response(t0 + ms(50), &resp(180)));
    assert!(tx.handle_response(t0 + ms(1000), &resp(486)));
    assert_eq!(tx.state(), ClientState::Completed);
    let out = drain(&mut tx);
    let ack = tx.ack().unwrap().clone();
    assert_eq!(out, [TxOutput::Transmit(ack.clone())]);
    assert_eq!(
        std::str::from_utf8(&ack).unwrap(),
        "ACK sip:+15550100@carrier.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1\r\n\
         Route: <sip:sbc1.example;lr>\r\nRoute: <sip:sbc2.example;lr>\r\n\
         Max-Forwards: 70\r\nFrom: <sip:relay@192.0.2.1>;tag=f1\r\n\
         To: <sip:+15550100@carrier.example>;tag=t9\r\nCall-ID: c1@192.0.2.1\r\n\
         CSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    // Retransmitted final: ACK again, not passed up.
    assert!(!tx.handle_response(t0 + ms(1500), &resp(486)));
    assert_eq!(drain(&mut tx), [TxOutput::Transmit(ack)]);
    // A late provisional is absorbed silently.
    assert!(!tx.handle_response(t0 + ms(1600), &resp(180)));
    assert!(drain(&mut tx).is_empty());
    // Timer D: 32 s after the final response.
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(33_000)));
    tx.handle_timeout(t0 + ms(32_999));
    assert_eq!(tx.state(), ClientState::Completed);
    tx.handle_timeout(t0 + ms(33_000));
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
}

#[test]
fn non_2xx_final_in_calling_over_reliable_transport_terminates_at_once() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), true, TimerConfig::default());
    drain(&mut tx);
    assert!(tx.handle_response(t0 + ms(10), &resp(503)));
    let out = drain(&mut tx);
    assert!(matches!(out.first(), Some(TxOutput::Transmit(_))));
    assert_eq!(out.get(1), Some(&TxOutput::Event(TxEvent::Terminated)));
    assert_eq!(tx.state(), ClientState::Terminated);
    assert!(!tx.handle_response(t0 + ms(20), &resp(503)));
}

#[test]
fn two_xx_goes_to_accepted_and_later_2xx_reach_the_tu_until_timer_m() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, TimerConfig::default());
    drain(&mut tx);
    assert!(tx.handle_response(t0 + ms(700), &resp(200)));
    assert_eq!(tx.state(), ClientState::Accepted);
    assert!(
        drain(&mut tx).is_empty(),
        "no ACK for a 2xx from the transaction"
    );
    assert!(tx.ack().is_none());
    // Retransmitted (or forked) 2xx: passed to the TU so it re-sends ACK.
    assert!(tx.handle_response(t0 + ms(1200), &resp(200)));
    // Anything else is absorbed.
    assert!(!tx.handle_response(t0 + ms(1300), &resp(180)));
    assert!(!tx.handle_response(t0 + ms(1400), &resp(500)));
    // Timer A stopped: nothing retransmitted; timer M 64*T1 after the 2xx.
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_700)));
    tx.handle_timeout(t0 + ms(32_700));
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
}

#[test]
fn two_xx_after_provisional_also_accepted_on_reliable() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), true, TimerConfig::default());
    drain(&mut tx);
    assert!(tx.handle_response(t0, &resp(183)));
    assert!(tx.handle_response(t0 + ms(10), &resp(200)));
    // Timer M applies on reliable transports too (RFC 6026).
    assert_eq!(tx.state(), ClientState::Accepted);
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_010)));
}

#[test]
fn transport_error_terminates_once() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, TimerConfig::default());
    drain(&mut tx);
    tx.handle_transport_error();
    assert_eq!(
        drain(&mut tx),
        [
            TxOutput::Event(TxEvent::TransportError),
            TxOutput::Event(TxEvent::Terminated)
        ]
    );
    tx.handle_transport_error();
    assert!(drain(&mut tx).is_empty());
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn non_invite_timer_e_doubles_up_to_t2_until_timer_f() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &options(), payload(), false, TimerConfig::default());
    assert_eq!(tx.state(), ClientState::Trying);
    assert!(!tx.is_invite());
    drain(&mut tx);
    let (sends, events) = run_until(&mut tx, t0, Duration::from_secs(100));
    let expected: Vec<Duration> = [
        500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(sends, expected);
    assert_eq!(events, [TxEvent::Timeout, TxEvent::Terminated]);
}

#[test]
fn non_invite_proceeding_retransmits_every_t2() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &options(), payload(), false, TimerConfig::default());
    drain(&mut tx);
    assert!(tx.handle_response(t0 + ms(200), &resp(100)));
    assert_eq!(tx.state(), ClientState::Proceeding);
    let (sends, _) = run_until(&mut tx, t0, ms(13_000));
    assert_eq!(sends, [ms(500), ms(4500), ms(8500), ms(12500)]);
    // Timer F still runs in Proceeding.
    let (_, events) = run_until(&mut tx, t0, Duration::from_secs(40));
    assert_eq!(events, [TxEvent::Timeout, TxEvent::Terminated]);
}

#[test]
fn non_invite_final_waits_timer_k_absorbing_retransmissions() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &options(), payload(), false, TimerConfig::default());
    drain(&mut tx);
    assert!(tx.handle_response(t0 + ms(100), &resp(100)));
    assert!(tx.handle_response(t0 + ms(600), &resp(404)));
    assert_eq!(tx.state(), ClientState::Completed);
    assert!(!tx.handle_response(t0 + ms(700), &resp(404)));
    assert!(drain(&mut tx).is_empty());
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(5600)));
    tx.handle_timeout(t0 + ms(5600));
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
}

#[test]
fn non_invite_reliable_has_no_timer_e_and_zero_timer_k() {
    let t0 = Instant::now();
    let mut tx = ClientTransaction::new(t0, &options(), payload(), true, TimerConfig::default());
    drain(&mut tx);
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
    assert!(tx.handle_response(t0 + ms(10), &resp(200)));
    assert_eq!(tx.state(), ClientState::Terminated);
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
}

#[test]
fn a_final_response_releases_the_request_and_a_non_2xx_keeps_answering_with_its_ack() {
    let t0 = Instant::now();
    // INVITE answered 2xx: nothing will send the INVITE again.
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, TimerConfig::default());
    assert!(tx.holds_request());
    assert!(tx.handle_response(t0 + ms(10), &resp(200)));
    assert!(!tx.holds_request());
    // INVITE refused: the ACK is built once and still sent for a retransmission.
    let mut tx = ClientTransaction::new(t0, &invite(), payload(), false, TimerConfig::default());
    assert!(tx.handle_response(t0 + ms(10), &resp(486)));
    assert!(!tx.holds_request());
    let first_ack = drain(&mut tx);
    assert!(!tx.handle_response(t0 + ms(20), &resp(486)));
    assert_eq!(drain(&mut tx).len(), 1);
    assert!(first_ack.len() >= 2, "{first_ack:?}");
    // Non-INVITE answered: released too.
    let mut tx = ClientTransaction::new(t0, &options(), payload(), false, TimerConfig::default());
    assert!(tx.handle_response(t0 + ms(10), &resp(200)));
    assert!(!tx.holds_request());
}
