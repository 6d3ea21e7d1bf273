//! The binding store: where pools and bindings live, and the only place the AXB
//! invariant, cooling and idempotency are enforced (atomically).
//!
//! [`BindingStore`] has two implementations that pass one shared contract suite
//! (`tests/store_contract.rs`):
//! - [`memory::MemoryStore`]: embedded, for development and demos; not durable.
//! - [`redis::RedisStore`]: production; every state change is one Lua script on one
//!   hash slot (`{pool}` hash tag), keys hold keyed hashes of numbers, values hold
//!   sealed numbers, and expiry is a Redis TTL so nothing expired ever routes.
//!
//! [`open::open`] builds the configured one at start-up (without waiting for Redis).
//!
//! ## Semantics every implementation must follow
//! - Time is passed in as `now` (ms since epoch) by the caller. A binding is *live*
//!   while `now < expires_at`; an expired binding behaves exactly like a deleted one
//!   (not found, routes nowhere) even if no reaper has run.
//! - A party *holds* X from creation until `end + cooling`, where `end` is
//!   `expires_at` for a binding that expires, or the time of `delete_binding` /
//!   of losing the party in `update_binding` (courier handover).
//! - `create_binding` picks, among the pool's **active** numbers whose live-binding
//!   count is below `max_bindings_per_number` and which neither party holds, the one
//!   with the fewest live bindings, preferring numbers whose area equals the requested
//!   area (any area if none fits). Ties break by number order. No candidate →
//!   [`StoreError::PoolExhausted`]. `party_a == party_b` → [`StoreError::Invalid`]
//!   (field `party_b`).
//! - Idempotency: while a live binding exists for `(pool, shipment_id)`, creating it
//!   again with the same parties returns [`Created::Existing`] (same id, same X, same
//!   expiry; the request's expiry is ignored); with other parties →
//!   [`StoreError::ShipmentConflict`].
//! - `update_binding`: a new party must not hold X (else
//!   [`StoreError::ReassignConflict`] naming the field) and must differ from the other
//!   party; the replaced party's hold turns into cooling from `now`; routes follow
//!   the new party at once. A new `expires_at` must be in the future
//!   (`Invalid{field: "expires_at"}`).
//! - `mark_delivered`: `expires_at = now + pool.grace_s`, state `Delivered`.
//! - `delete_binding`: the binding ends now; its parties start cooling on X.
//! - `retire_number`: the number takes no new bindings; live ones continue.
//! - `set_number_state`: `Quarantined` and `Retired` take the number out of
//!   allocation (live bindings live out), `Active` puts it back; answers the
//!   previous state.
//! - `pool_overview` answers from running counters, never a scan of bindings;
//!   `list_numbers` pages in number order (`cursor` = the last number of the
//!   previous page, digits).
//! - Counters (`PoolStats`) are exact for live bindings at `now`.
//! - Extensions: a request with `extension: Some(len)` gets a `len`-digit
//!   extension on its X, allocated in the same atomic step as the binding, unique
//!   among the live and cooling bindings on X (held until the binding's end +
//!   cooling, like a party's hold). Numbers whose `10^len` extensions are all held
//!   are skipped; none left → [`StoreError::PoolExhausted`]. Party handovers and
//!   expiry changes keep X and the extension. `route_extension` answers `Live`
//!   (callee: party A) for a live binding, `Ended` while the hold cools.

use async_trait::async_trait;

use crate::bindings::{
    Binding, BindingId, BindingPatch, Created, ExtensionRoute, ImportOutcome, Invalid, NewBinding,
    NumberPage, NumberSpec, NumberState, PoolOverview, PoolSpec, PoolStats, Route, UnixMs,
};
use crate::numbers::E164;

pub mod memory;
pub mod open;
pub mod reaper;
pub mod redis;

/// Everything that can go wrong in a store call. The HTTP and SIP edges map these
/// to responses in one place each.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing store cannot be reached or timed out; retrying later may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// No pool with that name.
    #[error("pool '{0}' not found")]
    PoolNotFound(String),
    /// A pool with that name exists already.
    #[error("pool '{0}' already exists")]
    PoolExists(String),
    /// No live binding with that id.
    #[error("binding not found")]
    BindingNotFound,
    /// The number is not in that pool.
    #[error("number not found in pool")]
    NumberNotFound,
    /// No number in the pool can take this pair of parties now.
    #[error("pool '{pool}' has no number free for these parties")]
    PoolExhausted {
        /// The pool.
        pool: String,
    },
    /// The shipment already has a live binding with different parties.
    #[error("shipment already has a live binding with different parties")]
    ShipmentConflict {
        /// The existing binding.
        existing: BindingId,
    },
    /// The new party already holds this binding's number (live or cooling).
    #[error("{field}: the new party already holds this number; create a new binding instead")]
    ReassignConflict {
        /// `party_a` or `party_b`.
        field: &'static str,
    },
    /// Input that breaks a domain rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Stored data that cannot be read (bug or wrong secrets); not the client's fault.
    #[error("store data unreadable: {0}")]
    Corrupt(String),
}

/// The [`StoreError::Unavailable`] detail of a store that lost its data (e.g. Redis
/// restarted without persistence) and holds no pool yet; `/readyz` names it.
pub const DATA_LOST: &str = "the store lost its data and holds no pool yet: \
                             re-create the pools or restore the data";

impl StoreError {
    /// Whether the same call may succeed if retried later (store down, not input).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// One audited act: an unmasked read by an auditor, or an ops change of a number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: UnixMs,
    /// Name of the API key that read.
    pub actor: String,
    /// Role of that key.
    pub role: String,
    /// What was done, e.g. `binding.read_unmasked`.
    pub action: String,
    /// What was read, e.g. the binding id (never a party's number).
    pub target: String,
    /// The pool concerned, if any.
    pub pool: Option<String>,
    /// Why, as the actor stated it (required for reveals and number changes).
    pub reason: Option<String>,
}

/// The store interface shared by the memory and Redis implementations.
/// See the module docs for the semantics each method must follow.
#[async_trait]
pub trait BindingStore: Send + Sync + 'static {
    /// Creates a pool. [`StoreError::PoolExists`] if the name is taken.
    async fn create_pool(&self, spec: PoolSpec) -> Result<(), StoreError>;
    /// A pool's settings.
    async fn get_pool(&self, pool: &str) -> Result<PoolSpec, StoreError>;
    /// All pools, by name.
    async fn list_pools(&self) -> Result<Vec<PoolSpec>, StoreError>;
    /// Adds numbers; ones already in this pool are skipped, ones in another pool are
    /// errors (by input index). A retired number re-imported stays retired (skipped).
    async fn import_numbers(
        &self,
        pool: &str,
        numbers: Vec<NumberSpec>,
    ) -> Result<ImportOutcome, StoreError>;
    /// Retires (drains) a number.
    async fn retire_number(&self, pool: &str, number: &E164) -> Result<(), StoreError>;
    /// Sets a number's state (quarantine, release, retire); answers the previous one.
    async fn set_number_state(
        &self,
        pool: &str,
        number: &E164,
        state: NumberState,
    ) -> Result<NumberState, StoreError>;
    /// The ops overview of a pool at `now` (counters; no scan of bindings).
    async fn pool_overview(&self, pool: &str, now: UnixMs) -> Result<PoolOverview, StoreError>;
    /// A page of at most `limit` numbers after `cursor` (digits of the last number
    /// of the previous page), in number order.
    async fn list_numbers(
        &self,
        pool: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NumberPage, StoreError>;
    /// The pool a virtual number belongs to (the voice/SMS entry point).
    async fn pool_of_number(&self, number: &E164) -> Result<Option<String>, StoreError>;
    /// Statistics of a pool at `now`.
    async fn pool_stats(&self, pool: &str, now: UnixMs) -> Result<PoolStats, StoreError>;

    /// Allocates a number and creates a binding (or returns the identical live one).
    async fn create_binding(&self, req: NewBinding, now: UnixMs) -> Result<Created, StoreError>;
    /// A live binding by id.
    async fn get_binding(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError>;
    /// Live bindings with this shipment id (one per pool at most); all pools if `pool`
    /// is `None`.
    async fn find_by_shipment(
        &self,
        pool: Option<&str>,
        shipment_id: &str,
        now: UnixMs,
    ) -> Result<Vec<Binding>, StoreError>;
    /// Reassigns parties and/or changes expiry.
    async fn update_binding(
        &self,
        id: BindingId,
        patch: BindingPatch,
        now: UnixMs,
    ) -> Result<Binding, StoreError>;
    /// Marks delivered: expiry becomes `now + grace`.
    async fn mark_delivered(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError>;
    /// Ends a binding now.
    async fn delete_binding(&self, id: BindingId, now: UnixMs) -> Result<(), StoreError>;

    /// The hot path: where a call or text from `caller` to virtual number `number`
    /// goes. `None` if no live binding has `caller` as a party on `number`.
    async fn route(
        &self,
        pool: &str,
        number: &E164,
        caller: &E164,
        now: UnixMs,
    ) -> Result<Option<Route>, StoreError>;

    /// Where a call keyed with `extension` on virtual number `number` goes: to the
    /// party A of the live binding holding it, or nowhere (ended or unknown).
    async fn route_extension(
        &self,
        pool: &str,
        number: &E164,
        extension: &str,
        now: UnixMs,
    ) -> Result<ExtensionRoute, StoreError>;

    /// Removes bookkeeping of bindings that expired before `now` (counters, party
    /// indexes). Returns how many bindings were reaped. Correctness of routing never
    /// depends on this running.
    async fn reap(&self, now: UnixMs) -> Result<u64, StoreError>;
    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Appends an audit entry; must be durable once this returns Ok.
    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError>;
    /// The newest audit entries, newest first.
    async fn read_audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}
