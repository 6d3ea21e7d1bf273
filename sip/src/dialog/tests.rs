//! Dialog tests: creation on both sides, route sets, CSeq rules, target
//! refresh, termination and in-dialog request construction.

use super::*;
use crate::Message;

/// Our outgoing INVITE (UAC leg towards a carrier).
const OUT_INVITE: &str = "INVITE sip:+15550100@carrier.example SIP/2.0\r\n\
Via: SIP/2.0/UDP relay.example:5060;branch=z9hG4bKout1\r\n\
Max-Forwards: 70\r\n\
From: \"Masked\" <sip:+15550111@relay.example>;tag=relayA\r\n\
To: <sip:+15550100@carrier.example>\r\n\
Call-ID: leg-b-1\r\n\
CSeq: 20 INVITE\r\n\
Contact: <sip:relay@203.0.113.1:5060>\r\n\
Content-Length: 0\r\n\r\n";

fn response(status: u16, reason: &str, extra: &str) -> String {
    format!(
        "SIP/2.0 {status} {reason}\r\n\
Via: SIP/2.0/UDP relay.example:5060;branch=z9hG4bKout1\r\n\
From: \"Masked\" <sip:+15550111@relay.example>;tag=relayA\r\n\
To: <sip:+15550100@carrier.example>;tag=carrierZ\r\n\
Call-ID: leg-b-1\r\n\
CSeq: 20 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

const RR: &str = "Record-Route: <sip:sbc2.carrier.example;lr>\r\n\
Record-Route: <sip:sbc1.carrier.example;lr>, <sip:edge.carrier.example;lr>\r\n";

fn msg(s: &str) -> Message<'_> {
    Message::parse(s.as_bytes()).unwrap()
}

fn uac_confirmed() -> Dialog {
    let ok = response(
        200,
        "OK",
        &format!("{RR}Contact: <sip:gw7@198.51.100.20:5060>\r\n"),
    );
    Dialog::uac(&msg(OUT_INVITE), &msg(&ok)).unwrap()
}

/// Incoming INVITE (UAS leg from a caller).
fn in_invite(extra: &str) -> String {
    format!(
        "INVITE sip:+15550111@relay.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKin1\r\n\
Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n\
From: <sip:+15550199@caller.example>;tag=callerT\r\n\
To: <sip:+15550111@relay.example>\r\n\
Call-ID: leg-a-1\r\n\
CSeq: 5 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn uas_dialog() -> Dialog {
    let inv = in_invite("Contact: <sip:alice@192.0.2.50:5060>\r\n");
    Dialog::uas(&msg(&inv), "relayT").unwrap()
}

fn in_dialog(method: &str, cseq: u32, extra: &str) -> String {
    format!(
        "{method} sip:relay@203.0.113.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKx{cseq}\r\n\
From: <sip:+15550199@caller.example>;tag=callerT\r\n\
To: <sip:+15550111@relay.example>;tag=relayT\r\n\
Call-ID: leg-a-1\r\n\
CSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

fn built(b: crate::MessageBuilder) -> Vec<u8> {
    b.build().unwrap()
}

#[test]
fn uac_dialog_from_2xx() {
    let d = uac_confirmed();
    assert_eq!(d.role(), Role::Uac);
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(
        d.id(),
        &DialogId {
            call_id: "leg-b-1".into(),
            local_tag: "relayA".into(),
            remote_tag: "carrierZ".into()
        }
    );
    assert_eq!(d.local_seq(), Some(20));
    assert_eq!(d.remote_seq(), None);
    assert_eq!(d.remote_target(), "sip:gw7@198.51.100.20:5060");
    assert_eq!(
        d.route_set(),
        [
            "<sip:edge.carrier.example;lr>",
            "<sip:sbc1.carrier.example;lr>",
            "<sip:sbc2.carrier.example;lr>"
        ]
    );
    assert_eq!(
        d.local_party(),
        "\"Masked\" <sip:+15550111@relay.example>;tag=relayA"
    );
    assert_eq!(
        d.remote_party(),
        "<sip:+15550100@carrier.example>;tag=carrierZ"
    );
    assert!(!d.is_secure());
}

#[test]
fn uac_ack_for_2xx_and_bye() {
    let mut d = uac_confirmed();
    let ack = built(d.ack("UDP", "relay.example:5060").unwrap());
    let ack = Message::parse(&ack).unwrap();
    ack.validate().unwrap();
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(
        ack.request_line().unwrap().uri,
        "sip:gw7@198.51.100.20:5060"
    );
    assert_eq!(ack.cseq().unwrap().seq, 20);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    let branch = ack.top_via().unwrap().branch().unwrap().to_owned();
    assert!(branch.starts_with("z9hG4bK"));
    assert_ne!(
        branch, "z9hG4bKout1",
        "the ACK for a 2xx has its own branch"
    );
    assert_eq!(ack.routes().count(), 3);
    assert_eq!(ack.to().unwrap().tag(), Some("carrierZ"));
    assert_eq!(ack.from().unwrap().tag(), Some("relayA"));
    // ACK does not consume a CSeq.
    assert_eq!(d.local_seq(), Some(20));

    let bye = built(
        d.new_request(Method::Bye, "UDP", "relay.example:5060")
            .unwrap(),
    );
    let bye = Message::parse(&bye).unwrap();
    bye.validate().unwrap();
    assert_eq!(bye.cseq().unwrap().seq, 21);
    assert_eq!(bye.call_id().unwrap(), "leg-b-1");
    assert_eq!(bye.max_forwards().unwrap(), Some(70));
    let routes: Vec<_> = bye.routes().map(|r| r.unwrap().as_str()).collect();
    assert_eq!(
        routes,
        [
            "<sip:edge.carrier.example;lr>",
            "<sip:sbc1.carrier.example;lr>",
            "<sip:sbc2.carrier.example;lr>"
        ]
    );
    assert_eq!(d.local_seq(), Some(21));
}

#[test]
fn reinvite_moves_the_ack_cseq() {
    let mut d = uac_confirmed();
    d.new_request(Method::Info, "UDP", "r").unwrap();
    let reinv = built(d.new_request(Method::Invite, "UDP", "r").unwrap());
    assert_eq!(Message::parse(&reinv).unwrap().cseq().unwrap().seq, 22);
    let ack = built(d.ack("UDP", "r").unwrap());
    assert_eq!(Message::parse(&ack).unwrap().cseq().unwrap().seq, 22);
}

#[test]
fn uac_early_dialog_then_2xx_recomputes_routes_and_target() {
    let ringing = response(
        180,
        "Ringing",
        "Record-Route: <sip:early.example;lr>\r\nContact: <sip:early@198.51.100.1>\r\n",
    );
    let mut d = Dialog::uac(&msg(OUT_INVITE), &msg(&ringing)).unwrap();
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(d.route_set(), ["<sip:early.example;lr>"]);
    assert_eq!(d.remote_target(), "sip:early@198.51.100.1");
    let ok = response(
        200,
        "OK",
        &format!("{RR}Contact: <sip:gw7@198.51.100.20:5060>\r\n"),
    );
    d.handle_response(&msg(&ok)).unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.route_set().len(), 3);
    assert_eq!(d.route_set()[0], "<sip:edge.carrier.example;lr>");
    assert_eq!(d.remote_target(), "sip:gw7@198.51.100.20:5060");
}

#[test]
fn uac_early_dialog_without_contact_and_its_failure() {
    let progress = response(183, "Session Progress", "");
    let mut d = Dialog::uac(&msg(OUT_INVITE), &msg(&progress)).unwrap();
    assert_eq!(d.remote_target(), "sip:+15550100@carrier.example");
    d.handle_response(&msg(&response(486, "Busy Here", "")))
        .unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(
        d.new_request(Method::Bye, "UDP", "r").unwrap_err(),
        DialogError::Terminated
    );
}

#[test]
fn uac_creation_errors() {
    let inv = msg(OUT_INVITE);
    assert_eq!(
        Dialog::uac(&inv, &msg(&response(100, "Trying", ""))).unwrap_err(),
        DialogError::NotDialogCreating(100)
    );
    assert_eq!(
        Dialog::uac(&inv, &msg(&response(404, "Not Found", ""))).unwrap_err(),
        DialogError::NotDialogCreating(404)
    );
    assert_eq!(
        Dialog::uac(&inv, &msg(&response(200, "OK", ""))).unwrap_err(),
        DialogError::MissingContact
    );
    let untagged = response(180, "Ringing", "").replace(";tag=carrierZ", "");
    assert_eq!(
        Dialog::uac(&inv, &msg(&untagged)).unwrap_err(),
        DialogError::MissingTag("To")
    );
    let other_call = response(200, "OK", "Contact: <sip:x@y>\r\n").replace("leg-b-1", "zzz");
    assert_eq!(
        Dialog::uac(&inv, &msg(&other_call)).unwrap_err(),
        DialogError::Mismatch
    );
}

#[test]
fn uas_dialog_from_invite() {
    let mut d = uas_dialog();
    assert_eq!(d.role(), Role::Uas);
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(d.id().local_tag, "relayT");
    assert_eq!(d.id().remote_tag, "callerT");
    assert_eq!(d.remote_seq(), Some(5));
    assert_eq!(d.local_seq(), None);
    assert_eq!(d.remote_target(), "sip:alice@192.0.2.50:5060");
    // UAS keeps Record-Route order.
    assert_eq!(
        d.route_set(),
        ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    );
    assert_eq!(d.local_party(), "<sip:+15550111@relay.example>;tag=relayT");
    assert!(matches!(d.ack("UDP", "r"), Err(DialogError::NoInvite)));
    d.confirm();
    assert_eq!(d.state(), DialogState::Confirmed);
    let bye = built(d.new_request(Method::Bye, "TCP", "relay.example").unwrap());
    let bye = Message::parse(&bye).unwrap();
    assert_eq!(bye.cseq().unwrap().seq, 1);
    assert_eq!(bye.request_line().unwrap().uri, "sip:alice@192.0.2.50:5060");
    assert_eq!(bye.top_via().unwrap().transport(), "TCP");
    let routes: Vec<_> = bye.routes().map(|r| r.unwrap().as_str()).collect();
    assert_eq!(routes, ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
}

#[test]
fn uas_creation_errors() {
    assert_eq!(
        Dialog::uas(&msg(&in_invite("")), "t").unwrap_err(),
        DialogError::MissingContact
    );
    assert_eq!(
        Dialog::uas(&msg(&in_invite("Contact: *\r\n")), "t").unwrap_err(),
        DialogError::MissingContact
    );
    let tagged = in_invite("Contact: <sip:a@b>\r\n").replace(
        "To: <sip:+15550111@relay.example>",
        "To: <sip:+15550111@relay.example>;tag=x",
    );
    assert_eq!(
        Dialog::uas(&msg(&tagged), "t").unwrap_err(),
        DialogError::AlreadyTagged
    );
    let untagged = in_invite("Contact: <sip:a@b>\r\n").replace(";tag=callerT", "");
    assert_eq!(
        Dialog::uas(&msg(&untagged), "t").unwrap_err(),
        DialogError::MissingTag("From")
    );
}

#[test]
fn in_dialog_requests_check_cseq_and_refresh_target() {
    let mut d = uas_dialog();
    d.confirm();
    // ACK reuses the INVITE CSeq: accepted without a check.
    d.handle_request(&msg(&in_dialog("ACK", 5, ""))).unwrap();
    // INFO with a Contact does not refresh the target.
    d.handle_request(&msg(&in_dialog(
        "INFO",
        6,
        "Contact: <sip:other@192.0.2.99>\r\n",
    )))
    .unwrap();
    assert_eq!(d.remote_target(), "sip:alice@192.0.2.50:5060");
    assert_eq!(d.remote_seq(), Some(6));
    // Replayed or older CSeq: 500 territory.
    assert_eq!(
        d.handle_request(&msg(&in_dialog("INFO", 6, "")))
            .unwrap_err(),
        DialogError::OutOfOrder { cseq: 6, last: 6 }
    );
    assert_eq!(
        d.handle_request(&msg(&in_dialog("UPDATE", 3, "")))
            .unwrap_err(),
        DialogError::OutOfOrder { cseq: 3, last: 6 }
    );
    // re-INVITE refreshes the remote target.
    d.handle_request(&msg(&in_dialog(
        "INVITE",
        7,
        "Contact: <sip:alice@192.0.2.77:5062>\r\n",
    )))
    .unwrap();
    assert_eq!(d.remote_target(), "sip:alice@192.0.2.77:5062");
    // Gaps are fine (RFC 3261 §12.2.2 only requires increase).
    d.handle_request(&msg(&in_dialog("BYE", 100, ""))).unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
}

#[test]
fn requests_from_other_dialogs_are_rejected() {
    let mut d = uas_dialog();
    let wrong_tag = in_dialog("BYE", 9, "").replace("tag=relayT", "tag=other");
    assert_eq!(
        d.handle_request(&msg(&wrong_tag)).unwrap_err(),
        DialogError::Mismatch
    );
    let no_tag = in_dialog("BYE", 9, "").replace(";tag=relayT", "");
    assert_eq!(
        d.handle_request(&msg(&no_tag)).unwrap_err(),
        DialogError::MissingTag("To")
    );
    assert_eq!(d.remote_seq(), Some(5));
}

#[test]
fn responses_update_and_terminate() {
    let mut d = uac_confirmed();
    // 200 to a re-INVITE with a new Contact refreshes the target.
    let reinv_ok = response(200, "OK", "Contact: <sip:gw8@198.51.100.21>\r\n");
    d.handle_response(&msg(&reinv_ok)).unwrap();
    assert_eq!(d.remote_target(), "sip:gw8@198.51.100.21");
    assert_eq!(d.state(), DialogState::Confirmed);
    // Route set is fixed once confirmed.
    assert_eq!(d.route_set().len(), 3);
    // 100 is ignored; a non-2xx to a re-INVITE keeps a confirmed dialog.
    d.handle_response(&msg(&response(100, "Trying", "")))
        .unwrap();
    d.handle_response(&msg(&response(488, "Not Acceptable Here", "")))
        .unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    let mismatch = response(200, "OK", "").replace("tag=carrierZ", "tag=fork2");
    assert_eq!(
        d.handle_response(&msg(&mismatch)).unwrap_err(),
        DialogError::Mismatch
    );
    // 481 ends the dialog.
    d.handle_response(&msg(&response(481, "Call/Transaction Does Not Exist", "")))
        .unwrap();
    assert_eq!(d.state(), DialogState::Terminated);

    let mut d = uac_confirmed();
    let bye_ok = response(200, "OK", "").replace("20 INVITE", "21 BYE");
    d.handle_response(&msg(&bye_ok)).unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
}

#[test]
fn strict_route_puts_first_route_in_request_uri() {
    let ok = response(
        200,
        "OK",
        "Record-Route: <sip:loose.example;lr>, <sip:strict.example>\r\n\
         Contact: <sip:gw@198.51.100.20>\r\n",
    );
    let mut d = Dialog::uac(&msg(OUT_INVITE), &msg(&ok)).unwrap();
    // Reversed: strict proxy first.
    assert_eq!(d.route_set()[0], "<sip:strict.example>");
    let bye = built(d.new_request(Method::Bye, "UDP", "r").unwrap());
    let bye = Message::parse(&bye).unwrap();
    assert_eq!(bye.request_line().unwrap().uri, "sip:strict.example");
    let routes: Vec<_> = bye.routes().map(|r| r.unwrap().as_str()).collect();
    assert_eq!(routes, ["<sip:loose.example;lr>", "<sip:gw@198.51.100.20>"]);
}

#[test]
fn no_route_set_means_no_route_headers() {
    let ok = response(200, "OK", "Contact: <sips:gw@198.51.100.20>\r\n");
    let mut d = Dialog::uac(&msg(OUT_INVITE), &msg(&ok)).unwrap();
    assert!(d.route_set().is_empty());
    let upd = built(d.new_request(Method::Update, "UDP", "r").unwrap());
    let upd = Message::parse(&upd).unwrap();
    assert_eq!(upd.routes().count(), 0);
    assert_eq!(upd.request_line().unwrap().uri, "sips:gw@198.51.100.20");
}

#[test]
fn wrong_methods_and_cseq_exhaustion() {
    let mut d = uac_confirmed();
    assert_eq!(
        d.new_request(Method::Ack, "UDP", "r").unwrap_err(),
        DialogError::WrongMethod("ACK")
    );
    assert_eq!(
        d.new_request(Method::Cancel, "UDP", "r").unwrap_err(),
        DialogError::WrongMethod("CANCEL")
    );
    d.local_seq = Some((1 << 31) - 1);
    assert_eq!(
        d.new_request(Method::Bye, "UDP", "r").unwrap_err(),
        DialogError::CSeqExhausted
    );
    // A refused request does not consume a CSeq.
    assert_eq!(d.local_seq(), Some((1 << 31) - 1));
}

#[test]
fn sips_request_uri_marks_dialog_secure() {
    let inv = in_invite("Contact: <sips:alice@192.0.2.50>\r\n")
        .replace("INVITE sip:+15550111", "INVITE sips:+15550111");
    let d = Dialog::uas(&msg(&inv), "t").unwrap();
    assert!(d.is_secure());
}

#[test]
fn dialog_ids_for_both_directions_agree() {
    let d = uac_confirmed();
    let ok = response(200, "OK", "");
    assert_eq!(&DialogId::for_incoming_response(&msg(&ok)).unwrap(), d.id());
    // A BYE from the carrier: tags swap places in From/To.
    let bye = "BYE sip:relay@203.0.113.1 SIP/2.0\r\nVia: SIP/2.0/UDP gw;branch=z9hG4bKb\r\n\
From: <sip:+15550100@carrier.example>;tag=carrierZ\r\n\
To: \"Masked\" <sip:+15550111@relay.example>;tag=relayA\r\nCall-ID: leg-b-1\r\nCSeq: 3 BYE\r\n\r\n";
    assert_eq!(&DialogId::for_incoming_request(&msg(bye)).unwrap(), d.id());
}
