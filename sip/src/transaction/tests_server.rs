//! Server transaction state machine tests: every state, every timer, with
//! explicit instants.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::timer::TimerConfig;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn bytes(s: &str) -> Arc<[u8]> {
    Arc::from(s.as_bytes())
}

fn drain(tx: &mut ServerTransaction) -> Vec<TxOutput> {
    std::iter::from_fn(|| tx.poll_output()).collect()
}

fn sent(s: &str) -> TxOutput {
    TxOutput::Transmit(bytes(s))
}

fn new_invite(reliable: bool) -> ServerTransaction {
    ServerTransaction::new(true, reliable, TimerConfig::default())
}

#[test]
fn invite_starts_in_proceeding_and_absorbs_retransmission_silently() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    assert_eq!(tx.state(), ServerState::Proceeding);
    assert!(tx.is_invite());
    assert_eq!(tx.poll_timeout(), None);
    assert!(!tx.handle_request(t0, false));
    assert!(drain(&mut tx).is_empty());
}

#[test]
fn retransmitted_invite_gets_the_latest_provisional_again() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 100, bytes("100")).unwrap();
    tx.send_response(t0 + ms(10), 180, bytes("180")).unwrap();
    assert_eq!(drain(&mut tx), [sent("100"), sent("180")]);
    assert!(!tx.handle_request(t0 + ms(500), false));
    assert_eq!(drain(&mut tx), [sent("180")]);
    assert_eq!(tx.state(), ServerState::Proceeding);
    // Provisionals are not retransmitted by timers.
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn non_2xx_final_retransmits_with_timer_g_until_timer_h() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 486, bytes("486")).unwrap();
    assert_eq!(tx.state(), ServerState::Completed);
    assert_eq!(drain(&mut tx), [sent("486")]);
    let mut sends = Vec::new();
    let mut events = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        tx.handle_timeout(at);
        for o in drain(&mut tx) {
            match o {
                TxOutput::Transmit(b) => {
                    assert_eq!(b, bytes("486"));
                    sends.push(at - t0);
                }
                TxOutput::Event(e) => events.push((at - t0, e)),
            }
        }
    }
    let expected: Vec<Duration> = [
        500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(sends, expected);
    assert_eq!(
        events,
        [
            (ms(32_000), TxEvent::AckTimeout),
            (ms(32_000), TxEvent::Terminated)
        ]
    );
}

#[test]
fn retransmitted_invite_in_completed_gets_the_final_again() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 180, bytes("180")).unwrap();
    tx.send_response(t0, 603, bytes("603")).unwrap();
    drain(&mut tx);
    assert!(!tx.handle_request(t0 + ms(100), false));
    assert_eq!(drain(&mut tx), [sent("603")]);
}

#[test]
fn ack_confirms_stops_g_and_h_then_timer_i() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 404, bytes("404")).unwrap();
    drain(&mut tx);
    assert!(
        !tx.handle_request(t0 + ms(300), true),
        "ACK of non-2xx is absorbed"
    );
    assert_eq!(tx.state(), ServerState::Confirmed);
    assert!(drain(&mut tx).is_empty());
    // Only timer I (T4) remains.
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(5300)));
    // Confirmed absorbs everything silently.
    assert!(!tx.handle_request(t0 + ms(400), true));
    assert!(!tx.handle_request(t0 + ms(500), false));
    assert!(drain(&mut tx).is_empty());
    tx.handle_timeout(t0 + ms(5299));
    assert!(drain(&mut tx).is_empty());
    tx.handle_timeout(t0 + ms(5300));
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
    assert_eq!(tx.state(), ServerState::Terminated);
}

#[test]
fn reliable_invite_has_no_timer_g_and_zero_timer_i() {
    let t0 = Instant::now();
    let mut tx = new_invite(true);
    tx.send_response(t0, 500, bytes("500")).unwrap();
    drain(&mut tx);
    // Only timer H.
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
    assert!(!tx.handle_request(t0 + ms(10), true));
    assert_eq!(tx.state(), ServerState::Terminated);
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
}

#[test]
fn reliable_invite_timer_h_still_fires() {
    let t0 = Instant::now();
    let mut tx = new_invite(true);
    tx.send_response(t0, 500, bytes("500")).unwrap();
    drain(&mut tx);
    tx.handle_timeout(t0 + ms(32_000));
    assert_eq!(
        drain(&mut tx),
        [
            TxOutput::Event(TxEvent::AckTimeout),
            TxOutput::Event(TxEvent::Terminated)
        ]
    );
}

#[test]
fn two_xx_goes_to_accepted_absorbing_invites_and_passing_acks() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 180, bytes("180")).unwrap();
    tx.send_response(t0 + ms(1000), 200, bytes("200")).unwrap();
    assert_eq!(tx.state(), ServerState::Accepted);
    assert_eq!(drain(&mut tx), [sent("180"), sent("200")]);
    // Retransmitted INVITE: absorbed, no response (the TU retransmits 2xx).
    assert!(!tx.handle_request(t0 + ms(1500), false));
    assert!(drain(&mut tx).is_empty());
    // The TU's 2xx retransmissions go out; nothing else may.
    tx.send_response(t0 + ms(1500), 200, bytes("200")).unwrap();
    assert_eq!(drain(&mut tx), [sent("200")]);
    assert_eq!(
        tx.send_response(t0, 486, bytes("486")),
        Err(ResponseRefused)
    );
    assert_eq!(
        tx.send_response(t0, 180, bytes("180")),
        Err(ResponseRefused)
    );
    // ACK matching the transaction goes to the TU.
    assert!(tx.handle_request(t0 + ms(1600), true));
    assert_eq!(tx.state(), ServerState::Accepted);
    // Timer L: 64*T1 after the 2xx; no retransmission timer.
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(33_000)));
    tx.handle_timeout(t0 + ms(33_000));
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
}

#[test]
fn unacknowledged_2xx_is_retransmitted_until_timer_l() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 200, bytes("200")).unwrap();
    drain(&mut tx);
    let mut sends = Vec::new();
    let mut events = Vec::new();
    while let Some(at) = tx.poll_timeout() {
        tx.handle_timeout(at);
        for o in drain(&mut tx) {
            match o {
                TxOutput::Transmit(b) => {
                    assert_eq!(b, bytes("200"));
                    sends.push(at - t0);
                }
                TxOutput::Event(e) => events.push((at - t0, e)),
            }
        }
    }
    assert_eq!(sends.len(), 10);
    assert_eq!(sends.first(), Some(&ms(500)));
    assert_eq!(sends.last(), Some(&ms(31_500)));
    assert_eq!(
        events,
        [
            (ms(32_000), TxEvent::AckTimeout),
            (ms(32_000), TxEvent::Terminated)
        ]
    );
}

#[test]
fn ack_of_2xx_stops_retransmission() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 200, bytes("200 v1")).unwrap();
    tx.handle_timeout(t0 + ms(500));
    // The TU replaces the 2xx; later retransmissions send the new one.
    tx.send_response(t0 + ms(600), 200, bytes("200 v2"))
        .unwrap();
    tx.handle_timeout(t0 + ms(1500));
    assert_eq!(
        drain(&mut tx),
        [
            sent("200 v1"),
            sent("200 v1"),
            sent("200 v2"),
            sent("200 v2")
        ]
    );
    assert!(tx.handle_2xx_ack());
    assert!(!tx.handle_2xx_ack(), "only the first ACK stops anything");
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_000)));
    tx.handle_timeout(t0 + ms(32_000));
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
    // Not in Accepted: nothing to stop.
    let mut other = new_invite(false);
    assert!(!other.handle_2xx_ack());
}

#[test]
fn invalid_response_sequences_are_refused() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 480, bytes("480")).unwrap();
    assert_eq!(
        tx.send_response(t0, 200, bytes("200")),
        Err(ResponseRefused)
    );
    assert_eq!(
        tx.send_response(t0, 180, bytes("180")),
        Err(ResponseRefused)
    );
    assert_eq!(
        tx.send_response(t0, 480, bytes("480")),
        Err(ResponseRefused)
    );
    assert_eq!(drain(&mut tx), [sent("480")]);
}

#[test]
fn non_invite_trying_proceeding_completed_and_timer_j() {
    let t0 = Instant::now();
    let mut tx = ServerTransaction::new(false, false, TimerConfig::default());
    assert_eq!(tx.state(), ServerState::Trying);
    assert!(!tx.is_invite());
    // Trying: retransmissions absorbed without a response.
    assert!(!tx.handle_request(t0, false));
    assert!(drain(&mut tx).is_empty());
    tx.send_response(t0 + ms(10), 100, bytes("100")).unwrap();
    assert_eq!(tx.state(), ServerState::Proceeding);
    assert!(!tx.handle_request(t0 + ms(20), false));
    assert_eq!(drain(&mut tx), [sent("100"), sent("100")]);
    tx.send_response(t0 + ms(30), 200, bytes("200")).unwrap();
    assert_eq!(tx.state(), ServerState::Completed);
    assert!(!tx.handle_request(t0 + ms(40), false));
    assert_eq!(drain(&mut tx), [sent("200"), sent("200")]);
    assert_eq!(
        tx.send_response(t0, 200, bytes("200")),
        Err(ResponseRefused)
    );
    assert_eq!(
        tx.send_response(t0, 100, bytes("100")),
        Err(ResponseRefused)
    );
    // Timer J: 64*T1; no retransmission of non-INVITE responses.
    assert_eq!(tx.poll_timeout(), Some(t0 + ms(32_030)));
    tx.handle_timeout(t0 + ms(32_029));
    assert!(drain(&mut tx).is_empty());
    tx.handle_timeout(t0 + ms(32_030));
    assert_eq!(drain(&mut tx), [TxOutput::Event(TxEvent::Terminated)]);
}

#[test]
fn non_invite_final_from_trying_over_reliable_terminates_at_once() {
    let t0 = Instant::now();
    let mut tx = ServerTransaction::new(false, true, TimerConfig::default());
    tx.send_response(t0, 481, bytes("481")).unwrap();
    assert_eq!(
        drain(&mut tx),
        [sent("481"), TxOutput::Event(TxEvent::Terminated)]
    );
    assert_eq!(tx.poll_timeout(), None);
    assert!(!tx.handle_request(t0, false));
    assert!(drain(&mut tx).is_empty());
}

#[test]
fn transport_error_terminates_server_transaction() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 486, bytes("486")).unwrap();
    drain(&mut tx);
    tx.handle_transport_error();
    assert_eq!(
        drain(&mut tx),
        [
            TxOutput::Event(TxEvent::TransportError),
            TxOutput::Event(TxEvent::Terminated)
        ]
    );
    assert_eq!(tx.poll_timeout(), None);
    tx.handle_transport_error();
    assert!(drain(&mut tx).is_empty());
}

#[test]
fn an_acknowledged_2xx_is_released_and_retransmitted_invites_are_still_absorbed() {
    let t0 = Instant::now();
    let mut tx = new_invite(false);
    tx.send_response(t0, 200, bytes("200")).unwrap();
    assert!(tx.holds_response());
    assert!(tx.handle_request(t0 + ms(100), true));
    assert!(!tx.holds_response());
    drain(&mut tx);
    assert!(!tx.handle_request(t0 + ms(200), false));
    assert!(drain(&mut tx).is_empty());
    // A non-2xx is kept until its ACK, then released.
    let mut tx = new_invite(false);
    tx.send_response(t0, 486, bytes("486")).unwrap();
    assert!(!tx.handle_request(t0 + ms(100), false));
    assert_eq!(drain(&mut tx), [sent("486"), sent("486")]);
    assert!(!tx.handle_request(t0 + ms(200), true));
    assert!(!tx.holds_response());
}
