//! Cross-checks our parser against an independent one (rsipstack's) on
//! every valid corpus message: method, Request-URI user and host, status,
//! Call-ID, CSeq, From/To tags and the top Via branch must agree wherever
//! rsipstack can read the field at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use maskline_sip::Message;
use rsipstack::sip::{HeadersExt, SipMessage};

/// Fields where rsipstack is known to be wrong, with the reason. Each entry
/// must still disagree, so the list cannot go stale.
const KNOWN_DIVERGENCES: &[(&str, &str, &str)] = &[
    (
        "semicolon-user.sip",
        "request-uri user",
        "RFC 4475 §3.1.1.10: the user part may contain ';' (user-unreserved); rsipstack drops it",
    ),
    (
        "semicolon-user.sip",
        "request-uri host",
        "same URI: rsipstack takes the user as the host",
    ),
    (
        "torture-wsinv.sip",
        "from tag",
        "RFC 3261 §25.1: EQUAL = SWS \"=\" SWS; rsipstack misses `tag = 98asjd8` across a fold",
    ),
    (
        "torture-wsinv.sip",
        "to tag",
        "same: `;   tag    = 1918181833n`",
    ),
];

#[derive(Debug, Default)]
struct Seen {
    compared: usize,
    rsip_rejected: Vec<String>,
    diverged: Vec<(String, String)>,
    unexpected: Vec<String>,
}

fn check(name: &str, raw: &[u8], seen: &mut Seen) {
    let ours = Message::parse(raw).unwrap();
    // rsipstack does not ignore bytes past Content-Length; hand it exactly
    // the one message we parsed.
    let canonical = ours.to_bytes();
    let theirs = match SipMessage::try_from(canonical.as_slice()) {
        Ok(m) => m,
        Err(_) => {
            seen.rsip_rejected.push(format!("{name}: whole message"));
            return;
        }
    };
    let mut cmp = |field: &str, a: String, b: Option<String>| match b {
        Some(b) if a == b => seen.compared += 1,
        Some(b) => {
            let known = KNOWN_DIVERGENCES
                .iter()
                .any(|(f, k, _)| *f == name && *k == field);
            if !known {
                seen.unexpected.push(format!(
                    "{name}: {field} differs: ours {a:?}, rsipstack {b:?}"
                ));
            }
            seen.diverged.push((name.to_owned(), field.to_owned()));
        }
        None => seen.rsip_rejected.push(format!("{name}: {field}")),
    };
    match &theirs {
        SipMessage::Request(r) => {
            let line = ours.request_line().unwrap();
            cmp(
                "method",
                line.method.as_str().to_owned(),
                Some(r.method().to_string()),
            );
            let uri = ours.request_uri().unwrap();
            if uri.is_sip() {
                cmp(
                    "request-uri user",
                    uri.user().unwrap_or_default().to_owned(),
                    Some(
                        r.uri()
                            .auth
                            .as_ref()
                            .map(|a| a.user.clone())
                            .unwrap_or_default(),
                    ),
                );
                cmp(
                    "request-uri host",
                    uri.host_str().to_ascii_lowercase(),
                    Some(r.uri().host_with_port.host.to_string().to_ascii_lowercase()),
                );
            }
        }
        SipMessage::Response(r) => {
            cmp(
                "status",
                ours.status().unwrap().to_string(),
                Some(u16::from(r.status_code().clone()).to_string()),
            );
        }
    }
    cmp(
        "call-id",
        ours.call_id().unwrap().to_owned(),
        theirs.call_id_header().ok().map(|c| c.value().to_owned()),
    );
    let cseq = ours.cseq().unwrap();
    cmp(
        "cseq seq",
        cseq.seq.to_string(),
        theirs
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .map(|s| s.to_string()),
    );
    cmp(
        "cseq method",
        cseq.method.as_str().to_owned(),
        theirs
            .cseq_header()
            .ok()
            .and_then(|c| c.method().ok())
            .map(|m| m.to_string()),
    );
    cmp(
        "from tag",
        ours.from().unwrap().tag().unwrap_or_default().to_owned(),
        theirs
            .from_header()
            .ok()
            .and_then(|f| f.tag().ok())
            .map(|t| t.map(|t| t.value().to_owned()).unwrap_or_default()),
    );
    cmp(
        "to tag",
        ours.to().unwrap().tag().unwrap_or_default().to_owned(),
        theirs
            .to_header()
            .ok()
            .and_then(|f| f.tag().ok())
            .map(|t| t.map(|t| t.value().to_owned()).unwrap_or_default()),
    );
    cmp(
        "top via branch",
        ours.top_via()
            .unwrap()
            .branch()
            .unwrap_or_default()
            .to_owned(),
        theirs.top_via_header().ok().and_then(|v| {
            use rsipstack::sip::headers::untyped::ToTypedHeader;
            v.typed()
                .ok()
                .map(|t| t.branch().map(|b| b.value().to_owned()).unwrap_or_default())
        }),
    );
}

#[test]
fn corpus_agrees_with_rsipstack() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/valid");
    let mut seen = Seen::default();
    let mut files = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        check(&name, &fs::read(entry.path()).unwrap(), &mut seen);
        files += 1;
    }
    eprintln!(
        "{files} files, {} fields agreed; rsipstack could not read: {:#?}",
        seen.compared, seen.rsip_rejected
    );
    assert!(seen.unexpected.is_empty(), "{:#?}", seen.unexpected);
    for (f, k, why) in KNOWN_DIVERGENCES {
        assert!(
            seen.diverged.iter().any(|(a, b)| a == f && b == k),
            "{f}/{k} no longer diverges ({why}): remove it from KNOWN_DIVERGENCES"
        );
    }
    // The comparison must actually have happened for most fields.
    assert!(
        seen.compared >= files * 6,
        "only {} comparisons",
        seen.compared
    );
}
