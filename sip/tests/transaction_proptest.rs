//! Property tests for the transaction layer: random sequences of incoming
//! requests and responses, TU responses, transport errors and clock jumps
//! never panic, never leave a due timer behind, terminate each transaction
//! once, and leave only transactions that wait for someone else.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use maskline_sip::timer::TimerConfig;
use maskline_sip::transaction::{
    ClientState, Destination, RequestDisposition, RequestInfo, ResponseDisposition, ResponseInfo,
    ServerState, TransactionEvent, TransactionId, TransactionLayer, Transport,
};
use proptest::prelude::*;

const METHODS: [&str; 5] = ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"];
const BRANCHES: [&str; 4] = ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc", "legacy-1"];

#[derive(Debug, Clone)]
enum Op {
    Incoming {
        method: usize,
        branch: usize,
        cseq: u32,
        reliable: bool,
    },
    Outgoing {
        method: usize,
        branch: usize,
        reliable: bool,
    },
    Response {
        status: u16,
        method: usize,
        branch: usize,
    },
    Respond {
        which: usize,
        status: u16,
    },
    TransportError {
        which: usize,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..5usize, 0..4usize, 1..3u32, any::<bool>()).prop_map(
            |(method, branch, cseq, reliable)| {
                Op::Incoming {
                    method,
                    branch,
                    cseq,
                    reliable,
                }
            }
        ),
        (0..5usize, 0..4usize, any::<bool>()).prop_map(|(method, branch, reliable)| Op::Outgoing {
            method,
            branch,
            reliable
        }),
        (100..700u16, 0..5usize, 0..4usize).prop_map(|(status, method, branch)| Op::Response {
            status,
            method,
            branch
        }),
        (0..8usize, 100..700u16).prop_map(|(which, status)| Op::Respond { which, status }),
        (0..8usize).prop_map(|which| Op::TransportError { which }),
        (0..40_000u64).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// The top Via `request` names for `branch`.
fn via(branch: &str) -> String {
    format!("SIP/2.0/UDP 192.0.2.1;branch={branch}")
}

fn request<'a>(method: &'a str, branch: &'a str, top_via: &'a str, cseq: u32) -> RequestInfo<'a> {
    RequestInfo {
        method,
        request_uri: "sip:x@relay.example",
        top_via,
        branch: Some(branch),
        sent_by: "192.0.2.1".into(),
        call_id: "prop-call",
        from: "<sip:a@h>;tag=f",
        from_tag: Some("f"),
        to: "<sip:x@relay.example>",
        to_tag: None,
        cseq,
        routes: Vec::new(),
    }
}

fn dest(reliable: bool) -> Destination {
    Destination {
        transport: if reliable {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        addr: "192.0.2.1:5060".parse().unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_the_layer_consistent(ops in proptest::collection::vec(op(), 1..60)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let mut ids: Vec<TransactionId> = Vec::new();
        let mut terminated: HashSet<TransactionId> = HashSet::new();
        let payload: Arc<[u8]> = Arc::from(&b"msg"[..]);

        let drain = |layer: &mut TransactionLayer, terminated: &mut HashSet<TransactionId>| {
            while layer.poll_transmit().is_some() {}
            while let Some(ev) = layer.poll_event() {
                if let TransactionEvent::Terminated(id) = ev {
                    assert!(terminated.insert(id), "{id} terminated twice");
                    assert!(layer.client_state(id).is_none() && layer.server_state(id).is_none());
                }
            }
        };

        for op in ops {
            match op {
                Op::Incoming { method, branch, cseq, reliable } => {
                    let v = via(BRANCHES[branch]);
                    let r = request(METHODS[method], BRANCHES[branch], &v, cseq);
                    match layer.handle_request(now, &r, dest(reliable)) {
                        RequestDisposition::New(id) | RequestDisposition::Cancel { id, .. } => {
                            prop_assert!(!ids.contains(&id));
                            ids.push(id);
                        }
                        RequestDisposition::Absorbed(id) => prop_assert!(ids.contains(&id)),
                        RequestDisposition::Ack { invite } => {
                            prop_assert_eq!(METHODS[method], "ACK");
                            if let Some(id) = invite {
                                prop_assert_eq!(layer.server_state(id), Some(ServerState::Accepted));
                            }
                        }
                        RequestDisposition::Overloaded => prop_assert!(false, "no cap set"),
                    }
                }
                Op::Outgoing { method, branch, reliable } => {
                    let v = via(BRANCHES[branch]);
                    let r = request(METHODS[method], BRANCHES[branch], &v, 1);
                    if let Ok(id) = layer.send_request(now, &r, payload.clone(), dest(reliable)) {
                        ids.push(id);
                    }
                }
                Op::Response { status, method, branch } => {
                    let resp = ResponseInfo {
                        status,
                        branch: Some(BRANCHES[branch]),
                        cseq_method: METHODS[method],
                        to: "<sip:x@h>;tag=t",
                    };
                    match layer.handle_response(now, &resp) {
                        ResponseDisposition::Deliver(id) | ResponseDisposition::Absorbed(id) => {
                            prop_assert!(ids.contains(&id));
                        }
                        ResponseDisposition::Stray => {}
                    }
                }
                Op::Respond { which, status } => {
                    if let Some(&id) = ids.get(which % ids.len().max(1)) {
                        let _ = layer.send_response(now, id, status, payload.clone());
                    }
                }
                Op::TransportError { which } => {
                    if let Some(&id) = ids.get(which % ids.len().max(1)) {
                        let live = layer.client_state(id).is_some() || layer.server_state(id).is_some();
                        prop_assert_eq!(layer.handle_transport_error(id).is_ok(), live);
                    }
                }
                Op::Advance { ms } => {
                    now += Duration::from_millis(ms);
                    layer.handle_timeout(now);
                    if let Some(next) = layer.poll_timeout() {
                        prop_assert!(next > now, "a due timer was left behind");
                    }
                }
            }
            drain(&mut layer, &mut terminated);
        }

        // Long after everything: only transactions waiting for the TU or
        // for a final response from the peer may remain.
        now += Duration::from_secs(200);
        layer.handle_timeout(now);
        drain(&mut layer, &mut terminated);
        for id in &ids {
            let waiting = matches!(layer.client_state(*id), Some(ClientState::Proceeding))
                || matches!(
                    layer.server_state(*id),
                    Some(ServerState::Trying | ServerState::Proceeding)
                );
            let gone = layer.client_state(*id).is_none() && layer.server_state(*id).is_none();
            prop_assert!(waiting || gone, "{id} lingers");
            prop_assert_eq!(gone, terminated.contains(id));
        }
    }
}
