//! The transaction layer's tables: matching keys and the transactions by id.
//!
//! This module owns how the layer finds a transaction without allocating: keys
//! built in a scratch buffer ([`KeyBuf`]) and a ring of transactions indexed by
//! id ([`TxMap`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::{RequestInfo, SentBy, TransactionId};

/// The layer's maps. Their keys come off the wire (branches, Call-IDs), so the
/// hasher is seeded per process; foldhash does that at a fraction of SipHash's
/// cost per message.
pub(super) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A matching key: its fields in a fixed order, each text field preceded by
/// its length (and an optional one by whether it is present), so that no two
/// field lists give the same bytes. Looking up builds it in the layer's
/// scratch buffer; only a new transaction copies it, once, for the map and
/// its own entry to share.
pub(super) type Key = Arc<[u8]>;

/// The scratch buffer keys are built in.
#[derive(Debug, Default)]
pub(super) struct KeyBuf(Vec<u8>);

impl KeyBuf {
    fn text(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn len(&mut self, n: usize) {
        self.0
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }

    /// Client transactions: branch and method (the CSeq method of a response).
    pub(super) fn client(&mut self, branch: Option<&str>, method: &str) -> &[u8] {
        self.0.clear();
        self.text(branch.unwrap_or_default());
        self.text(method);
        &self.0
    }

    /// Server transactions: branch, sent-by (host without regard to case, port
    /// as a number) and method.
    pub(super) fn server(
        &mut self,
        branch: Option<&str>,
        sent_by: SentBy<'_>,
        method: &str,
    ) -> &[u8] {
        self.0.clear();
        self.text(branch.unwrap_or_default());
        self.len(sent_by.host.len());
        self.0
            .extend(sent_by.host.bytes().map(|b| b.to_ascii_lowercase()));
        match sent_by.port {
            Some(p) => {
                self.0.push(1);
                self.0.extend_from_slice(&p.to_le_bytes());
            }
            None => self.0.push(0),
        }
        self.text(method);
        &self.0
    }

    /// The ACK of a 2xx finds its INVITE by Call-ID, From tag and CSeq number.
    pub(super) fn ack(&mut self, call_id: &str, from_tag: Option<&str>, cseq: u32) -> &[u8] {
        self.0.clear();
        self.text(call_id);
        match from_tag {
            Some(t) => {
                self.0.push(1);
                self.text(t);
            }
            None => self.0.push(0),
        }
        self.0.extend_from_slice(&cseq.to_le_bytes());
        &self.0
    }
}

/// Matching fields of an RFC 2543 request (no magic cookie). Rare, so kept
/// as owned fields in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LegacyKey {
    request_uri: String,
    from_tag: Option<String>,
    to_tag: Option<String>,
    call_id: String,
    cseq: u32,
    top_via: String,
    method: String,
}

impl LegacyKey {
    pub(super) fn of(req: &RequestInfo<'_>, method: &str) -> Self {
        LegacyKey {
            request_uri: req.request_uri.to_owned(),
            from_tag: req.from_tag.map(str::to_owned),
            to_tag: req.to_tag.map(str::to_owned),
            call_id: req.call_id.to_owned(),
            cseq: req.cseq,
            top_via: req.top_via.to_owned(),
            method: method.to_owned(),
        }
    }

    /// Whether `req` (with `method` standing for its own) is the request of
    /// `self`.
    pub(super) fn matches(&self, req: &RequestInfo<'_>, method: &str) -> bool {
        self.method == method
            && self.request_uri == req.request_uri
            && self.from_tag.as_deref() == req.from_tag
            && self.to_tag.as_deref() == req.to_tag
            && self.call_id == req.call_id
            && self.cseq == req.cseq
            && self.top_via == req.top_via
    }

    /// Whether an ACK or CANCEL (`req`) targets the INVITE of `self`. The
    /// To tag is not compared: an ACK carries the tag of our response, and
    /// in the Accepted state an ACK goes to the TU anyway.
    pub(super) fn targets(&self, req: &RequestInfo<'_>) -> bool {
        self.method == "INVITE"
            && self.request_uri == req.request_uri
            && self.from_tag.as_deref() == req.from_tag
            && self.call_id == req.call_id
            && self.cseq == req.cseq
            && self.top_via == req.top_via
    }
}

/// Values by transaction id: the layer's live transactions, or a TU's data per
/// transaction.
///
/// Ids are handed out in sequence and a transaction lives seconds (64*T1 after
/// its final response on UDP), so a ring indexed by `id - base` finds one with
/// a subtraction instead of a hash probe into a table of hundreds of thousands
/// (a busy relay's lingering transactions), and the oldest slots are reclaimed
/// as they empty. A value that outlives those after it by far (an INVITE its
/// TU never answers) moves to a map, so the ring does not keep every slot
/// since it. Values inserted out of order are kept all the same.
///
/// ```
/// use maskline_sip::transaction::{TransactionLayer, TxMap};
/// # use maskline_sip::transaction::*;
/// # use std::{sync::Arc, time::Instant};
/// let mut layer = TransactionLayer::new(Default::default());
/// let dest = Destination { transport: Transport::Udp, addr: "192.0.2.1:5060".parse().unwrap() };
/// let req = RequestInfo { method: "OPTIONS", branch: Some("z9hG4bK1"), ..Default::default() };
/// let id = layer.send_request(Instant::now(), &req, Arc::from(&b"OPTIONS ..."[..]), dest).unwrap();
/// let mut roles = TxMap::default();
/// roles.insert(id, "keepalive");
/// assert_eq!(roles.get(&id), Some(&"keepalive"));
/// assert_eq!(roles.remove(&id), Some("keepalive"));
/// assert!(roles.is_empty());
/// ```
#[derive(Debug)]
pub struct TxMap<T> {
    /// The id of `ring[0]`; never decreases.
    base: u64,
    ring: VecDeque<Option<T>>,
    /// Values kept out of the ring, all with ids below `base`.
    old: Map<TransactionId, T>,
    live: usize,
}

/// Empty slots the ring may hold beyond twice its live values.
const RING_SLACK: usize = 1 << 16;

impl<T> TxMap<T> {
    fn index(&self, id: &TransactionId) -> Option<usize> {
        usize::try_from(id.0.checked_sub(self.base)?).ok()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The value of `id`.
    pub fn get(&self, id: &TransactionId) -> Option<&T> {
        match self.index(id) {
            Some(i) => self.ring.get(i)?.as_ref(),
            None => self.old.get(id),
        }
    }

    /// The value of `id`, to change.
    pub fn get_mut(&mut self, id: &TransactionId) -> Option<&mut T> {
        match self.index(id) {
            Some(i) => self.ring.get_mut(i)?.as_mut(),
            None => self.old.get_mut(id),
        }
    }

    /// Stores the value of `id`, returning the one it had.
    pub fn insert(&mut self, id: TransactionId, value: T) -> Option<T> {
        if self.ring.is_empty() && id.0 >= self.base {
            self.base = id.0;
        }
        let Some(i) = self.index(&id) else {
            let before = self.old.insert(id, value);
            if before.is_none() {
                self.live += 1;
            }
            return before;
        };
        while self.ring.len() <= i {
            self.ring.push_back(None);
        }
        let before = self.ring.get_mut(i).and_then(|slot| slot.replace(value));
        if before.is_none() {
            self.live += 1;
        }
        // Sparse: the front is held by a straggler. Move it out of the way.
        while self.ring.len() > RING_SLACK + 2 * (self.live - self.old.len()) {
            if let Some(Some(v)) = self.ring.pop_front() {
                self.old.insert(TransactionId(self.base), v);
            }
            self.base += 1;
            self.trim();
        }
        before
    }

    /// Takes the value of `id` out.
    pub fn remove(&mut self, id: &TransactionId) -> Option<T> {
        let value = match self.index(id) {
            Some(i) => {
                let v = self.ring.get_mut(i)?.take()?;
                self.trim();
                v
            }
            None => self.old.remove(id)?,
        };
        self.live -= 1;
        Some(value)
    }

    /// Drops the empty slots at the front.
    fn trim(&mut self) {
        while matches!(self.ring.front(), Some(None)) {
            self.ring.pop_front();
            self.base += 1;
        }
    }
}

impl<T> Default for TxMap<T> {
    fn default() -> Self {
        TxMap {
            base: 0,
            ring: VecDeque::new(),
            old: Map::default(),
            live: 0,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_find_their_entries_and_empty_slots_are_reclaimed() {
        let mut s = TxMap::default();
        for i in 1..=3u8 {
            s.insert(TransactionId(u64::from(i)), i);
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(&TransactionId(2)), Some(&2));
        assert!(s.get(&TransactionId(0)).is_none() && s.get(&TransactionId(4)).is_none());
        assert_eq!(s.remove(&TransactionId(2)), Some(2));
        assert!(s.remove(&TransactionId(2)).is_none());
        assert_eq!(s.ring.len(), 3);
        s.remove(&TransactionId(1));
        // Ids 1 and 2 are free: the ring starts at 3.
        assert_eq!((s.base, s.ring.len(), s.len()), (3, 1, 1));
        s.remove(&TransactionId(3));
        assert!(s.is_empty() && s.ring.is_empty());
        s.insert(TransactionId(10), 10);
        assert_eq!(s.get(&TransactionId(10)), Some(&10));
        // Out of order: below the ring's start, kept all the same.
        assert_eq!(s.insert(TransactionId(4), 4), None);
        assert_eq!(s.insert(TransactionId(4), 44), Some(4));
        assert_eq!((s.get(&TransactionId(4)), s.len()), (Some(&44), 2));
        assert_eq!(s.remove(&TransactionId(4)), Some(44));
        assert_eq!(s.get(&TransactionId(10)), Some(&10));
    }

    #[test]
    fn a_straggler_does_not_keep_every_slot_after_it() {
        let mut s = TxMap::default();
        s.insert(TransactionId(1), 1u8);
        // Many transactions come and go while the first one stays.
        for id in 2..(4 * RING_SLACK as u64) {
            s.insert(TransactionId(id), 0);
            if id > 10 {
                s.remove(&TransactionId(id - 8));
            }
        }
        assert!(s.ring.len() <= RING_SLACK + 32, "ring of {}", s.ring.len());
        // Left: 1 and 2 (never removed) and the last 8.
        assert_eq!(s.len(), 1 + 1 + 8);
        assert_eq!(s.get(&TransactionId(1)), Some(&1));
        *s.get_mut(&TransactionId(1)).unwrap() = 7;
        assert_eq!(s.remove(&TransactionId(1)), Some(7));
        assert!(s.remove(&TransactionId(2)).is_some());
        assert_eq!(s.len(), 8);
        assert!(s.old.is_empty());
    }
}
