//! Transaction layer tests: matching (RFC 3261 branch rules and the RFC 2543
//! fallback), CANCEL/ACK routing, timers across transactions, removal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::timer::TimerConfig;
use crate::Message;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn udp() -> Destination {
    Destination {
        transport: Transport::Udp,
        addr: "198.51.100.7:5060".parse().unwrap(),
    }
}

fn tcp() -> Destination {
    Destination {
        transport: Transport::Tcp,
        addr: "198.51.100.7:5060".parse().unwrap(),
    }
}

fn req<'a>(method: &'a str, branch: &'a str) -> RequestInfo<'a> {
    RequestInfo {
        method,
        request_uri: "sip:+15550100@relay.example",
        // Leaked: a test builds a handful.
        top_via: format!("SIP/2.0/UDP 198.51.100.7:5060;branch={branch}").leak(),
        branch: Some(branch),
        sent_by: "198.51.100.7:5060".into(),
        call_id: "call-1",
        from: "<sip:+15550199@carrier.example>;tag=ft",
        from_tag: Some("ft"),
        to: "<sip:+15550100@relay.example>",
        to_tag: None,
        cseq: 1,
        routes: Vec::new(),
    }
}

fn resp<'a>(status: u16, branch: &'a str, method: &'a str) -> ResponseInfo<'a> {
    ResponseInfo {
        status,
        branch: Some(branch),
        cseq_method: method,
        to: "<sip:b@h>;tag=tt",
    }
}

fn bytes(s: &str) -> Arc<[u8]> {
    Arc::from(s.as_bytes())
}

fn layer() -> TransactionLayer {
    TransactionLayer::new(TimerConfig::default())
}

fn transmits(l: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

fn events(l: &mut TransactionLayer) -> Vec<TransactionEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

#[test]
fn responses_match_client_transactions_by_branch_and_cseq_method() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = l
        .send_request(t0, &req("INVITE", "z9hG4bKa"), bytes("INVITE"), udp())
        .unwrap();
    let cancel = l
        .send_request(t0, &req("CANCEL", "z9hG4bKa"), bytes("CANCEL"), udp())
        .unwrap();
    assert_ne!(inv, cancel);
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].transaction, inv);
    assert_eq!(sent[0].destination, udp());
    assert_eq!(&*sent[1].payload, b"CANCEL");
    // Same branch, CSeq method decides.
    assert_eq!(
        l.handle_response(t0, &resp(200, "z9hG4bKa", "CANCEL")),
        ResponseDisposition::Deliver(cancel)
    );
    assert_eq!(
        l.handle_response(t0, &resp(487, "z9hG4bKa", "INVITE")),
        ResponseDisposition::Deliver(inv)
    );
    // The INVITE transaction sent its ACK for the 487.
    let ack = transmits(&mut l);
    assert_eq!(ack.len(), 1);
    assert!(ack[0]
        .payload
        .starts_with(b"ACK sip:+15550100@relay.example SIP/2.0\r\n"));
    assert_eq!(
        l.handle_response(t0, &resp(487, "z9hG4bKa", "INVITE")),
        ResponseDisposition::Absorbed(inv)
    );
    assert_eq!(
        l.handle_response(t0, &resp(200, "z9hG4bKother", "INVITE")),
        ResponseDisposition::Stray
    );
    assert_eq!(
        l.handle_response(t0, &resp(200, "z9hG4bKa", "BYE")),
        ResponseDisposition::Stray
    );
}

#[test]
fn send_request_errors() {
    let t0 = Instant::now();
    let mut l = layer();
    assert_eq!(
        l.send_request(t0, &req("ACK", "z9hG4bKa"), bytes("ACK"), udp()),
        Err(TransactionError::AckRequest)
    );
    assert_eq!(
        l.send_request(t0, &req("INVITE", "1234"), bytes("I"), udp()),
        Err(TransactionError::MissingBranch)
    );
    let mut no_branch = req("INVITE", "x");
    no_branch.branch = None;
    assert_eq!(
        l.send_request(t0, &no_branch, bytes("I"), udp()),
        Err(TransactionError::MissingBranch)
    );
    l.send_request(t0, &req("BYE", "z9hG4bKb"), bytes("BYE"), udp())
        .unwrap();
    assert_eq!(
        l.send_request(t0, &req("BYE", "z9hG4bKb"), bytes("BYE"), udp()),
        Err(TransactionError::DuplicateBranch)
    );
    assert_eq!(l.len(), 1);
}

#[test]
fn invite_server_transaction_flow_with_retransmission_and_ack() {
    let t0 = Instant::now();
    let mut l = layer();
    let invite = req("INVITE", "z9hG4bKs1");
    let RequestDisposition::New(id) = l.handle_request(t0, &invite, udp()) else {
        panic!("expected a new transaction");
    };
    assert_eq!(l.server_state(id), Some(ServerState::Proceeding));
    assert_eq!(l.client_state(id), None);
    l.send_response(t0, id, 180, bytes("180")).unwrap();
    assert_eq!(transmits(&mut l)[0].payload, bytes("180"));
    // Retransmitted INVITE gets the same provisional again.
    assert_eq!(
        l.handle_request(t0 + ms(500), &invite, udp()),
        RequestDisposition::Absorbed(id)
    );
    assert_eq!(transmits(&mut l)[0].payload, bytes("180"));
    l.send_response(t0 + ms(600), id, 486, bytes("486"))
        .unwrap();
    transmits(&mut l);
    // ACK for the non-2xx: same branch, absorbed, Confirmed.
    assert_eq!(
        l.handle_request(t0 + ms(700), &req("ACK", "z9hG4bKs1"), udp()),
        RequestDisposition::Absorbed(id)
    );
    assert_eq!(l.server_state(id), Some(ServerState::Confirmed));
    // Timer I later removes it.
    l.handle_timeout(t0 + ms(5700));
    assert_eq!(events(&mut l), [TransactionEvent::Terminated(id)]);
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn cancel_finds_the_invite_it_cancels() {
    let t0 = Instant::now();
    let mut l = layer();
    let RequestDisposition::New(inv) = l.handle_request(t0, &req("INVITE", "z9hG4bKc"), udp())
    else {
        panic!()
    };
    let RequestDisposition::Cancel { id, invite } =
        l.handle_request(t0, &req("CANCEL", "z9hG4bKc"), udp())
    else {
        panic!()
    };
    assert_eq!(invite, Some(inv));
    assert_ne!(id, inv);
    // Retransmitted CANCEL is absorbed by the CANCEL's own transaction.
    l.send_response(t0, id, 200, bytes("200 CANCEL")).unwrap();
    transmits(&mut l);
    assert_eq!(
        l.handle_request(t0, &req("CANCEL", "z9hG4bKc"), udp()),
        RequestDisposition::Absorbed(id)
    );
    assert_eq!(transmits(&mut l)[0].payload, bytes("200 CANCEL"));
    // A CANCEL for an unknown INVITE still gets its own transaction (for 481).
    let RequestDisposition::Cancel { invite: None, .. } =
        l.handle_request(t0, &req("CANCEL", "z9hG4bKunknown"), udp())
    else {
        panic!()
    };
}

#[test]
fn ack_for_2xx_goes_to_the_tu_and_invite_retransmissions_are_absorbed() {
    let t0 = Instant::now();
    let mut l = layer();
    let invite = req("INVITE", "z9hG4bKok");
    let RequestDisposition::New(id) = l.handle_request(t0, &invite, udp()) else {
        panic!()
    };
    l.send_response(t0, id, 200, bytes("200")).unwrap();
    assert_eq!(transmits(&mut l).len(), 1);
    assert_eq!(l.server_state(id), Some(ServerState::Accepted));
    // INVITE retransmission after the 2xx: absorbed, not a new call.
    assert_eq!(
        l.handle_request(t0 + ms(100), &invite, udp()),
        RequestDisposition::Absorbed(id)
    );
    assert!(transmits(&mut l).is_empty());
    // No ACK yet: the 2xx is retransmitted after T1.
    assert_eq!(l.poll_timeout(), Some(t0 + ms(500)));
    l.handle_timeout(t0 + ms(500));
    assert_eq!(transmits(&mut l)[0].payload, bytes("200"));
    // The ACK for a 2xx has its own branch: matched by Call-ID, From tag
    // and CSeq, it stops the retransmissions and goes to the TU.
    assert_eq!(
        l.handle_request(t0 + ms(600), &req("ACK", "z9hG4bKack"), udp()),
        RequestDisposition::Ack { invite: Some(id) }
    );
    assert_eq!(l.poll_timeout(), Some(t0 + ms(32_000)));
    // A retransmitted ACK still reaches the TU.
    assert_eq!(
        l.handle_request(t0 + ms(700), &req("ACK", "z9hG4bKack"), udp()),
        RequestDisposition::Ack { invite: Some(id) }
    );
    // An ACK reusing the INVITE branch matches the transaction directly.
    assert_eq!(
        l.handle_request(t0 + ms(800), &req("ACK", "z9hG4bKok"), udp()),
        RequestDisposition::Ack { invite: Some(id) }
    );
    // An ACK of another call is only for the TU.
    let mut other = req("ACK", "z9hG4bKack2");
    other.call_id = "call-2";
    assert_eq!(
        l.handle_request(t0 + ms(800), &other, udp()),
        RequestDisposition::Ack { invite: None }
    );
    // The TU may still re-send its 2xx through the transaction.
    l.send_response(t0 + ms(900), id, 200, bytes("200"))
        .unwrap();
    assert_eq!(transmits(&mut l).len(), 1);
    // Timer L ends it; the ACK came, so no AckTimeout.
    l.handle_timeout(t0 + ms(32_000));
    assert!(transmits(&mut l).is_empty());
    assert_eq!(events(&mut l), [TransactionEvent::Terminated(id)]);
    // Once gone, an ACK of that call no longer matches anything.
    assert_eq!(
        l.handle_request(t0 + ms(40_000), &req("ACK", "z9hG4bKack"), udp()),
        RequestDisposition::Ack { invite: None }
    );
}

#[test]
fn unacknowledged_2xx_is_retransmitted_then_reported() {
    let t0 = Instant::now();
    let mut l = layer();
    let RequestDisposition::New(id) = l.handle_request(t0, &req("INVITE", "z9hG4bKna"), udp())
    else {
        panic!()
    };
    l.send_response(t0, id, 200, bytes("200")).unwrap();
    transmits(&mut l);
    let mut at = Vec::new();
    while let Some(t) = l.poll_timeout() {
        l.handle_timeout(t);
        at.extend(transmits(&mut l).iter().map(|_| t - t0));
    }
    let expected: Vec<Duration> = [
        500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(at, expected);
    assert_eq!(
        events(&mut l),
        [
            TransactionEvent::AckTimeout(id),
            TransactionEvent::Terminated(id)
        ]
    );
    // Over TCP: no retransmission, but the missing ACK is still reported.
    let RequestDisposition::New(id) = l.handle_request(t0, &req("INVITE", "z9hG4bKnt"), tcp())
    else {
        panic!()
    };
    l.send_response(t0, id, 200, bytes("200")).unwrap();
    transmits(&mut l);
    assert_eq!(l.poll_timeout(), Some(t0 + ms(32_000)));
    l.handle_timeout(t0 + ms(32_000));
    assert!(transmits(&mut l).is_empty());
    assert_eq!(
        events(&mut l),
        [
            TransactionEvent::AckTimeout(id),
            TransactionEvent::Terminated(id)
        ]
    );
}

#[test]
fn sent_by_and_method_are_part_of_the_server_key() {
    let t0 = Instant::now();
    let mut l = layer();
    let a = req("INVITE", "z9hG4bKsame");
    let mut b = a.clone();
    b.sent_by = "203.0.113.9:5060".into();
    let RequestDisposition::New(ia) = l.handle_request(t0, &a, udp()) else {
        panic!()
    };
    let RequestDisposition::New(ib) = l.handle_request(t0, &b, udp()) else {
        panic!()
    };
    assert_ne!(ia, ib);
    let RequestDisposition::New(ic) = l.handle_request(t0, &req("OPTIONS", "z9hG4bKsame"), udp())
    else {
        panic!()
    };
    assert_ne!(ic, ia);
    assert_eq!(l.len(), 3);
}

#[test]
fn sent_by_matches_host_without_case_and_port_as_a_number() {
    let t0 = Instant::now();
    let mut l = layer();
    let mut a = req("INVITE", "z9hG4bKcase");
    a.sent_by = "Proxy.Example:5060".into();
    let RequestDisposition::New(id) = l.handle_request(t0, &a, udp()) else {
        panic!()
    };
    let mut again = a.clone();
    again.sent_by = "proxy.EXAMPLE:05060".into();
    assert_eq!(
        l.handle_request(t0, &again, udp()),
        RequestDisposition::Absorbed(id)
    );
    // No port is not port 5060: another sender.
    again.sent_by = "proxy.example".into();
    assert!(matches!(
        l.handle_request(t0, &again, udp()),
        RequestDisposition::New(other) if other != id
    ));
}

#[test]
fn key_fields_do_not_run_together() {
    // Keys are built from several fields in one buffer: a field boundary moved
    // by a character must not give the same key.
    let t0 = Instant::now();
    let mut l = layer();
    let mut invite = req("INVITE", "z9hG4bKrun");
    invite.call_id = "ab";
    invite.from_tag = Some("c");
    let RequestDisposition::New(id) = l.handle_request(t0, &invite, udp()) else {
        panic!()
    };
    l.send_response(t0, id, 200, bytes("200")).unwrap();
    let mut ack = req("ACK", "z9hG4bKrun-ack");
    ack.call_id = "a";
    ack.from_tag = Some("bc");
    assert_eq!(
        l.handle_request(t0, &ack, udp()),
        RequestDisposition::Ack { invite: None }
    );
    ack.call_id = "ab";
    ack.from_tag = Some("c");
    assert_eq!(
        l.handle_request(t0, &ack, udp()),
        RequestDisposition::Ack { invite: Some(id) }
    );
    // Branch and sent-by of a server key, branch and method of a client key.
    let mut shifted = req("INVITE", "z9hG4bKru");
    shifted.sent_by = "n198.51.100.7:5060".into();
    assert!(matches!(
        l.handle_request(t0, &shifted, udp()),
        RequestDisposition::New(other) if other != id
    ));
    let sent = l
        .send_request(t0, &req("OPTIONS", "z9hG4bKo"), bytes("OPTIONS"), udp())
        .unwrap();
    assert_eq!(
        l.handle_response(t0, &resp(200, "z9hG4bKoO", "PTIONS")),
        ResponseDisposition::Stray
    );
    assert_eq!(
        l.handle_response(t0, &resp(200, "z9hG4bKo", "OPTIONS")),
        ResponseDisposition::Deliver(sent)
    );
}

fn legacy(method: &str) -> RequestInfo<'_> {
    RequestInfo {
        top_via: "SIP/2.0/UDP old.example:5060",
        branch: None,
        sent_by: "old.example:5060".into(),
        ..req(method, "unused")
    }
}

#[test]
fn rfc2543_requests_match_on_dialog_fields() {
    let t0 = Instant::now();
    let mut l = layer();
    let inv = legacy("INVITE");
    let RequestDisposition::New(id) = l.handle_request(t0, &inv, udp()) else {
        panic!()
    };
    l.send_response(t0, id, 100, bytes("100")).unwrap();
    transmits(&mut l);
    assert_eq!(
        l.handle_request(t0, &inv, udp()),
        RequestDisposition::Absorbed(id)
    );
    assert_eq!(transmits(&mut l).len(), 1);
    // A different CSeq is a different transaction.
    let mut next = inv.clone();
    next.cseq = 2;
    assert!(matches!(
        l.handle_request(t0, &next, udp()),
        RequestDisposition::New(other) if other != id
    ));
    // CANCEL matches on the same fields.
    let RequestDisposition::Cancel { invite, .. } = l.handle_request(t0, &legacy("CANCEL"), udp())
    else {
        panic!()
    };
    assert_eq!(invite, Some(id));
    // ACK for the non-2xx carries our To tag and still matches.
    l.send_response(t0, id, 480, bytes("480")).unwrap();
    let mut ack = legacy("ACK");
    ack.to_tag = Some("our-tag");
    assert_eq!(
        l.handle_request(t0, &ack, udp()),
        RequestDisposition::Absorbed(id)
    );
    assert_eq!(l.server_state(id), Some(ServerState::Confirmed));
    // A different top Via does not match by RFC 2543 rules; the ACK still
    // names the INVITE by Call-ID, From tag and CSeq and is absorbed.
    let mut other = legacy("ACK");
    other.top_via = "SIP/2.0/UDP elsewhere.example";
    assert_eq!(
        l.handle_request(t0, &other, udp()),
        RequestDisposition::Absorbed(id)
    );
    other.cseq = 99;
    assert_eq!(
        l.handle_request(t0, &other, udp()),
        RequestDisposition::Ack { invite: None }
    );
}

#[test]
fn timers_across_transactions_fire_in_order() {
    let t0 = Instant::now();
    let mut l = layer();
    let a = l
        .send_request(t0, &req("OPTIONS", "z9hG4bK1"), bytes("A"), udp())
        .unwrap();
    let b = l
        .send_request(t0 + ms(100), &req("OPTIONS", "z9hG4bK2"), bytes("B"), udp())
        .unwrap();
    let c = l
        .send_request(t0, &req("OPTIONS", "z9hG4bK3"), bytes("C"), tcp())
        .unwrap();
    transmits(&mut l);
    assert_eq!(l.poll_timeout(), Some(t0 + ms(500)));
    l.handle_timeout(t0 + ms(500));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].transaction, a);
    assert_eq!(l.poll_timeout(), Some(t0 + ms(600)));
    l.handle_timeout(t0 + ms(600));
    assert_eq!(transmits(&mut l)[0].transaction, b);
    // Jump to timer F for all three: each times out once.
    l.handle_timeout(t0 + ms(40_000));
    let ev = events(&mut l);
    for id in [a, b, c] {
        assert!(ev.contains(&TransactionEvent::Timeout(id)));
        assert!(ev.contains(&TransactionEvent::Terminated(id)));
    }
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
    // The branch is free again once the transaction is gone.
    assert!(l
        .send_request(t0, &req("OPTIONS", "z9hG4bK1"), bytes("A"), udp())
        .is_ok());
}

#[test]
fn send_response_errors() {
    let t0 = Instant::now();
    let mut l = layer();
    let RequestDisposition::New(id) = l.handle_request(t0, &req("BYE", "z9hG4bKbye"), udp()) else {
        panic!()
    };
    assert_eq!(
        l.send_response(t0, id, 99, bytes("x")),
        Err(TransactionError::InvalidStatus(99))
    );
    assert_eq!(
        l.send_response(t0, id, 700, bytes("x")),
        Err(TransactionError::InvalidStatus(700))
    );
    l.send_response(t0, id, 200, bytes("200")).unwrap();
    assert_eq!(
        l.send_response(t0, id, 200, bytes("200")),
        Err(TransactionError::InvalidResponse { id, status: 200 })
    );
    let client = l
        .send_request(t0, &req("BYE", "z9hG4bKout"), bytes("BYE"), udp())
        .unwrap();
    assert_eq!(
        l.send_response(t0, client, 200, bytes("200")),
        Err(TransactionError::NoSuchTransaction(client))
    );
}

#[test]
fn reliable_server_transaction_disappears_after_final_response() {
    let t0 = Instant::now();
    let mut l = layer();
    let RequestDisposition::New(id) = l.handle_request(t0, &req("BYE", "z9hG4bKr"), tcp()) else {
        panic!()
    };
    l.send_response(t0, id, 200, bytes("200")).unwrap();
    let sent = transmits(&mut l);
    assert_eq!(sent[0].destination, tcp());
    assert_eq!(events(&mut l), [TransactionEvent::Terminated(id)]);
    assert!(l.is_empty());
}

#[test]
fn transport_error_is_reported_and_removes_the_transaction() {
    let t0 = Instant::now();
    let mut l = layer();
    let id = l
        .send_request(t0, &req("INVITE", "z9hG4bKte"), bytes("I"), udp())
        .unwrap();
    l.handle_transport_error(id).unwrap();
    assert_eq!(
        events(&mut l),
        [
            TransactionEvent::TransportError(id),
            TransactionEvent::Terminated(id)
        ]
    );
    assert_eq!(
        l.handle_transport_error(id),
        Err(TransactionError::NoSuchTransaction(id))
    );
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn end_to_end_with_parsed_messages() {
    let t0 = Instant::now();
    let mut uac = layer();
    let mut uas = layer();
    let invite = b"INVITE sip:+15550100@relay.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKe2e\r\n\
Max-Forwards: 70\r\nFrom: <sip:+15550199@carrier.example>;tag=a\r\n\
To: <sip:+15550100@relay.example>\r\nCall-ID: e2e-1\r\nCSeq: 10 INVITE\r\n\
Content-Length: 0\r\n\r\n";
    let msg = Message::parse(invite).unwrap();
    let info = RequestInfo::from_message(&msg).unwrap();
    let cid = uac
        .send_request(t0, &info, Arc::from(&invite[..]), udp())
        .unwrap();
    let wire = uac.poll_transmit().unwrap();
    let rx = Message::parse(&wire.payload).unwrap();
    let RequestDisposition::New(sid) =
        uas.handle_request(t0, &RequestInfo::from_message(&rx).unwrap(), udp())
    else {
        panic!()
    };
    let busy = crate::MessageBuilder::response_to(&rx, 486, "Busy Here", Some("b"))
        .unwrap()
        .build()
        .unwrap();
    uas.send_response(t0, sid, 486, Arc::from(busy)).unwrap();
    let wire = uas.poll_transmit().unwrap();
    let resp = Message::parse(&wire.payload).unwrap();
    assert_eq!(
        uac.handle_response(t0, &ResponseInfo::from_message(&resp).unwrap()),
        ResponseDisposition::Deliver(cid)
    );
    // The generated ACK parses, validates and matches the server transaction.
    let ack_wire = uac.poll_transmit().unwrap();
    let ack = Message::parse(&ack_wire.payload).unwrap();
    ack.validate().unwrap();
    assert_eq!(ack.to().unwrap().tag(), Some("b"));
    assert_eq!(ack.cseq().unwrap().seq, 10);
    assert_eq!(
        uas.handle_request(t0, &RequestInfo::from_message(&ack).unwrap(), udp()),
        RequestDisposition::Absorbed(sid)
    );
    assert_eq!(uas.server_state(sid), Some(ServerState::Confirmed));
}

#[test]
fn transaction_cap_rejects_new_work_but_not_retransmissions() {
    let t0 = Instant::now();
    let mut l = layer();
    assert_eq!(
        l.max_transactions(),
        TransactionLayer::DEFAULT_MAX_TRANSACTIONS
    );
    l.set_max_transactions(1);
    let inv = req("INVITE", "z9hG4bKcap");
    let RequestDisposition::New(id) = l.handle_request(t0, &inv, udp()) else {
        panic!()
    };
    assert_eq!(
        l.handle_request(t0, &req("OPTIONS", "z9hG4bKcap2"), udp()),
        RequestDisposition::Overloaded
    );
    assert_eq!(
        l.send_request(t0, &req("OPTIONS", "z9hG4bKout"), bytes("O"), udp()),
        Err(TransactionError::Overloaded)
    );
    // The existing transaction still absorbs its retransmissions and ACKs.
    assert_eq!(
        l.handle_request(t0, &inv, udp()),
        RequestDisposition::Absorbed(id)
    );
    assert_eq!(
        l.handle_request(t0, &req("ACK", "z9hG4bKother"), udp()),
        RequestDisposition::Ack { invite: None }
    );
    assert_eq!(l.len(), 1);
}

#[test]
fn zero_timer_configuration_does_not_spin() {
    let t0 = Instant::now();
    let mut l = TransactionLayer::new(TimerConfig {
        t1: Duration::ZERO,
        t2: Duration::ZERO,
        t4: Duration::ZERO,
        timer_d: Duration::ZERO,
    });
    l.send_request(t0, &req("OPTIONS", "z9hG4bKz"), bytes("O"), udp())
        .unwrap();
    l.handle_timeout(t0);
    assert!(l.is_empty(), "timer F = 64*0 fires at once");
    let mut l = TransactionLayer::new(TimerConfig {
        t2: Duration::ZERO,
        ..TimerConfig::default()
    });
    l.send_request(t0, &req("OPTIONS", "z9hG4bKz"), bytes("O"), udp())
        .unwrap();
    l.handle_timeout(t0 + ms(500));
    // E fired once and was pushed at least 1 ms into the future.
    assert!(l.poll_timeout().unwrap() > t0 + ms(500));
    assert_eq!(transmits(&mut l).len(), 2);
}
