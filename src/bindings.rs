//! The binding domain: pools of virtual numbers and AXB bindings.
//!
//! Owns the types every other part speaks (pools, numbers, bindings, routes) and the
//! rules that do not need the store: validation of names, shipment ids and expiry.
//! The rules that need atomicity (allocation under the AXB invariant, cooling,
//! idempotency) are enforced inside each [`crate::store::BindingStore`]
//! implementation, because only there can they be atomic.
//!
//! ## The AXB invariant
//! A binding links party A (courier) and party B (customer) through a virtual number
//! X. For a call from `caller` to `X` to have exactly one callee, no party may hold
//! the same X twice among its live **or cooling** bindings. A party "holds" X from
//! binding creation until `expires_at + cooling`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::numbers::E164;

/// Milliseconds since the Unix epoch; the store's unit of time.
pub type UnixMs = i64;

/// The current time in milliseconds since the epoch.
pub fn now_ms() -> UnixMs {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as UnixMs
}

/// Converts store time to a timestamp (for API output).
pub fn ms_to_datetime(ms: UnixMs) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Converts a timestamp to store time.
pub fn datetime_to_ms(t: OffsetDateTime) -> UnixMs {
    (t.unix_timestamp_nanos() / 1_000_000) as UnixMs
}

/// Validation failures of domain input; `field` names the offending input field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The input field at fault (JSON name).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    /// Builds a validation error.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Checks a pool name: 1–64 chars of `[A-Za-z0-9_-]` (it becomes a Redis hash tag).
pub fn validate_pool_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > 64 {
        return Err(Invalid::new("name", "must be 1 to 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Invalid::new(
            "name",
            "may contain only letters, digits, '_' and '-'",
        ));
    }
    Ok(())
}

/// Checks a shipment id: 1–128 printable ASCII chars without spaces.
pub fn validate_shipment_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > 128 {
        return Err(Invalid::new("shipment_id", "must be 1 to 128 characters"));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Invalid::new(
            "shipment_id",
            "may contain only printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// Checks an area tag: 1–32 chars of `[A-Za-z0-9_-]`.
pub fn validate_area(area: &str, field: &'static str) -> Result<(), Invalid> {
    if area.is_empty()
        || area.len() > 32
        || !area
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Invalid::new(
            field,
            "must be 1 to 32 letters, digits, '_' or '-'",
        ));
    }
    Ok(())
}

/// Longest binding lifetime accepted (a year), so typos do not pin numbers forever.
pub const MAX_TTL_MS: i64 = 366 * 24 * 3600 * 1000;

/// Checks an expiry against now: in the future and within [`MAX_TTL_MS`].
pub fn validate_expiry(expires_at: UnixMs, now: UnixMs) -> Result<(), Invalid> {
    if expires_at <= now {
        return Err(Invalid::new("expires_at", "must be in the future"));
    }
    if expires_at - now > MAX_TTL_MS {
        return Err(Invalid::new("expires_at", "must be within 366 days"));
    }
    Ok(())
}

/// Longest grace or cooling period accepted (366 days, like [`MAX_TTL_MS`]).
pub const MAX_PERIOD_S: u64 = (MAX_TTL_MS / 1000) as u64;

/// Checks a pool's settings before a store creates it: name, country code, cap and
/// periods. Every store calls this first, so all reject the same input the same way.
pub fn validate_pool_spec(spec: &PoolSpec) -> Result<(), Invalid> {
    validate_pool_name(&spec.name)?;
    if spec.country == 0 || spec.country > 999 {
        return Err(Invalid::new(
            "country",
            "must be a country calling code, 1 to 999",
        ));
    }
    if spec.max_bindings_per_number == 0 {
        return Err(Invalid::new(
            "max_bindings_per_number",
            "must be at least 1",
        ));
    }
    if spec.grace_s > MAX_PERIOD_S {
        return Err(Invalid::new("grace_s", "must be at most 366 days"));
    }
    if spec.cooling_s > MAX_PERIOD_S {
        return Err(Invalid::new("cooling_s", "must be at most 366 days"));
    }
    if !(MIN_EXTENSION_LEN..=MAX_EXTENSION_LEN).contains(&spec.extension_len) {
        return Err(Invalid::new("extension_len", "must be 1 to 6 digits"));
    }
    Ok(())
}

/// Checks a binding request against every rule that needs no store: pool name,
/// shipment id, area tag, distinct parties (`party_b` is at fault when they are
/// equal) and expiry. Every store calls this first, before any lookup.
pub fn validate_new_binding(req: &NewBinding, now: UnixMs) -> Result<(), Invalid> {
    validate_pool_name(&req.pool).map_err(|e| Invalid::new("pool", e.message))?;
    validate_shipment_id(&req.shipment_id)?;
    if req.party_a == req.party_b {
        return Err(Invalid::new("party_b", "must differ from party_a"));
    }
    if let Some(area) = &req.area {
        validate_area(area, "area")?;
    }
    if let Some(len) = req.extension {
        if !(MIN_EXTENSION_LEN..=MAX_EXTENSION_LEN).contains(&len) {
            return Err(Invalid::new("extension", "length must be 1 to 6 digits"));
        }
    }
    validate_expiry(req.expires_at, now)
}

/// A pool's settings.
// The API's `Pool`: these doc comments are its descriptions in the OpenAPI document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Pool)]
pub struct PoolSpec {
    /// Unique pool name.
    // Also the Redis hash tag of the pool's keys.
    pub name: String,
    /// Country calling code (e.g. 86): the pool's numbers are of it, and
    /// national-format input is read in it.
    pub country: u16,
    /// Seconds a delivered binding stays live (grace after delivery; default 72 h).
    pub grace_s: u64,
    /// Seconds a number rests before it may pair the same parties again (cooling
    /// after a binding ends; default 24 h).
    pub cooling_s: u64,
    /// Cap on live bindings per number (default 200).
    #[schema(format = Int64)]
    pub max_bindings_per_number: u32,
    /// Whether parties (courier, customer) may have numbers of other countries
    /// than `country` (default false). Virtual numbers of the pool must always be
    /// of `country`.
    #[serde(default)]
    #[schema(required = true)]
    pub allow_foreign_parties: bool,
    /// Whether new bindings get an extension unless the request says otherwise
    /// (default false).
    #[serde(default)]
    #[schema(required = true)]
    pub extensions: bool,
    /// Digits of an extension, 1 to 6 (default 4); a number serves at most
    /// 10^extension_len live and cooling extensions.
    #[serde(default = "default_extension_len")]
    #[schema(required = true, minimum = 1, maximum = 6)]
    pub extension_len: u8,
}

/// Default extension length (digits).
pub const DEFAULT_EXTENSION_LEN: u8 = 4;
/// Shortest extension.
pub const MIN_EXTENSION_LEN: u8 = 1;
/// Longest extension.
pub const MAX_EXTENSION_LEN: u8 = 6;

fn default_extension_len() -> u8 {
    DEFAULT_EXTENSION_LEN
}

/// How many extensions of `len` digits exist (`10^len`).
pub fn extension_space(len: u8) -> u32 {
    10u32.saturating_pow(u32::from(len))
}

/// Whether `s` is an extension of `len` digits.
pub fn is_extension(s: &str, len: u8) -> bool {
    s.len() == usize::from(len) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Default grace after delivery: 72 hours.
pub const DEFAULT_GRACE_S: u64 = 72 * 3600;
/// Default cooling period: 24 hours.
pub const DEFAULT_COOLING_S: u64 = 24 * 3600;
/// Default cap on live bindings per number.
pub const DEFAULT_MAX_BINDINGS_PER_NUMBER: u32 = 200;

/// What a virtual number can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Voice calls.
    pub voice: bool,
    /// Text messages.
    pub sms: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            voice: true,
            sms: true,
        }
    }
}

/// A virtual number to import into a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberSpec {
    /// The virtual number X (ours, not a person's).
    pub number: E164,
    /// Area/city tag used for area-preferring allocation.
    pub area: Option<String>,
    /// Voice/SMS capabilities.
    pub capabilities: Capabilities,
}

/// Lifecycle state of a virtual number in its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NumberState {
    /// Takes new bindings.
    Active,
    /// Draining: no new bindings, existing ones live out.
    Retired,
    /// Taken out of service by ops (e.g. flagged as spam): no new bindings,
    /// existing ones live out; ops may return it to service.
    Quarantined,
}

impl NumberState {
    /// The name used in the API, CLI and audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberState::Active => "active",
            NumberState::Retired => "retired",
            NumberState::Quarantined => "quarantined",
        }
    }
}

/// Result of importing numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Numbers newly added.
    pub added: u64,
    /// Numbers already in this pool (left unchanged).
    pub skipped: u64,
    /// Per-entry failures, by index in the input (e.g. number belongs to another pool).
    pub errors: Vec<(usize, String)>,
}

/// One number's line in pool statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberLoad {
    /// The virtual number.
    pub number: E164,
    /// Area tag, if any.
    pub area: Option<String>,
    /// Active, retired or quarantined.
    pub state: NumberState,
    /// Live bindings on it now.
    pub live_bindings: u64,
}

/// A party (opaque: the first 8 bytes of its keyed hash, hex) and how many live
/// bindings it has in the pool. Used to spot the busiest parties without revealing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyLoad {
    /// Opaque id: hex of the first 8 bytes of the party's keyed hash.
    pub party: String,
    /// Live bindings held.
    pub live_bindings: u64,
}

/// Pool statistics for ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// The pool's settings.
    pub spec: PoolSpec,
    /// Numbers in the pool (active + retired).
    pub numbers: u64,
    /// Numbers that take new bindings.
    pub active_numbers: u64,
    /// Numbers draining.
    pub retired_numbers: u64,
    /// Live (unexpired) bindings.
    pub live_bindings: u64,
    /// (party, number) holds that are in their cooling period.
    pub cooling: u64,
    /// Per-number load, busiest first.
    pub per_number: Vec<NumberLoad>,
    /// Busiest parties, at most 10, busiest first.
    pub busiest_parties: Vec<PartyLoad>,
}

/// Bindings per number over the numbers in service: min, median, p95, max.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LoadQuantiles {
    /// Fewest live bindings on a number.
    pub min: u64,
    /// Median.
    pub median: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Most live bindings on a number.
    pub max: u64,
}

/// Allocations and `pool_exhausted` answers of a pool in one time bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AllocationBucket {
    /// Start of the bucket (ms since epoch).
    pub start: UnixMs,
    /// Bindings created.
    pub allocations: u64,
    /// Creations refused with `pool_exhausted`.
    pub exhausted: u64,
    /// Live bindings last sampled in this bucket (`None`: no sample).
    pub live_sample: Option<u64>,
}

/// The ops overview of a pool, from running counters (no scan of bindings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOverview {
    /// The pool's settings.
    pub spec: PoolSpec,
    /// Numbers taking new bindings.
    pub active: u64,
    /// Retired numbers that still carry live bindings.
    pub draining: u64,
    /// Retired numbers without live bindings.
    pub retired: u64,
    /// Numbers ops took out of service.
    pub quarantined: u64,
    /// Live bindings.
    pub live_bindings: u64,
    /// (party, number) holds in their cooling period.
    pub cooling: u64,
    /// Bindings per active number.
    pub per_number: LoadQuantiles,
    /// Busiest parties (opaque ids), busiest first, at most 10. Redis: an
    /// approximate top-K (see the store docs); memory store: exact.
    pub busiest_parties: Vec<PartyLoad>,
    /// Per-hour buckets of the last 24 hours, oldest first (the last one is the
    /// current hour).
    pub hours: Vec<AllocationBucket>,
    /// Allocations and exhausted answers in the last 60 minutes.
    pub last_hour: AllocationBucket,
}

/// One number in a paged number list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRow {
    /// The virtual number.
    pub number: E164,
    /// Area tag.
    pub area: Option<String>,
    /// State.
    pub state: NumberState,
    /// Live bindings now (as of its last recount).
    pub live_bindings: u64,
}

/// A page of a pool's numbers, in number order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPage {
    /// The numbers of this page.
    pub numbers: Vec<NumberRow>,
    /// Where the next page starts (`None`: this was the last page).
    pub next: Option<String>,
}

/// Unique id of a binding (UUID v7: sorts by creation time).
pub type BindingId = Uuid;

/// Whether a binding is running normally or has been marked delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BindingState {
    /// Created, not yet delivered.
    Active,
    /// Marked delivered: expires at delivery time + the pool's grace.
    Delivered,
}

/// A live AXB binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Unique id.
    pub id: BindingId,
    /// Pool name.
    pub pool: String,
    /// Caller's shipment reference (unique per pool among live bindings).
    pub shipment_id: String,
    /// The virtual number X.
    pub number: E164,
    /// Party A (courier).
    pub party_a: E164,
    /// Party B (customer).
    pub party_b: E164,
    /// Creation time.
    pub created_at: UnixMs,
    /// Expiry; after it the binding routes nowhere.
    pub expires_at: UnixMs,
    /// Lifecycle state.
    pub state: BindingState,
    /// The extension on X (digits), if the binding has one: unique among live and
    /// cooling bindings on X, kept across party handovers.
    pub extension: Option<String>,
}

/// A request to bind two parties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBinding {
    /// Pool to allocate from.
    pub pool: String,
    /// Idempotency key within the pool.
    pub shipment_id: String,
    /// Party A (courier).
    pub party_a: E164,
    /// Party B (customer).
    pub party_b: E164,
    /// Expiry.
    pub expires_at: UnixMs,
    /// Preferred area tag: an X with this tag wins if one is available, else any X.
    pub area: Option<String>,
    /// Allocate an extension of this many digits on X (`None`: no extension).
    pub extension: Option<u8>,
}

/// Whether `create` made a new binding or found the same one (idempotent retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new binding (HTTP 201).
    New(Binding),
    /// The identical live binding already existed (HTTP 200).
    Existing(Binding),
}

impl Created {
    /// The binding, whichever way it came.
    pub fn binding(&self) -> &Binding {
        match self {
            Created::New(b) | Created::Existing(b) => b,
        }
    }
}

/// Changes to a live binding; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingPatch {
    /// New party A (courier handover).
    pub party_a: Option<E164>,
    /// New party B.
    pub party_b: Option<E164>,
    /// New expiry (extend or shorten).
    pub expires_at: Option<UnixMs>,
}

/// The answer to the hot-path question: a call from `caller` to `X` goes to `callee`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The binding that routes it.
    pub binding_id: BindingId,
    /// Pool of the binding.
    pub pool: String,
    /// Who to connect the caller to.
    pub callee: E164,
    /// Binding expiry.
    pub expires_at: UnixMs,
    /// The binding's shipment, when the lookup read it (the call record's
    /// `shipment_id`, without another store read after the call).
    pub shipment_id: Option<String>,
    /// Whether the caller is the binding's party A (the courier), when known:
    /// the call record's direction.
    pub caller_is_a: Option<bool>,
}

/// Where a call keyed with an extension on X goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionRoute {
    /// A live binding holds the extension: connect to its party A (the courier, who
    /// holds the parcel now).
    Live(Route),
    /// The extension belonged to a binding that has ended (it is cooling): the
    /// number no longer serves that parcel.
    Ended,
    /// No binding holds or held that extension on X.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_become_safe_hash_tags() {
        assert!(validate_pool_name("sh-courier_1").is_ok());
        assert_eq!(validate_pool_name("").unwrap_err().field, "name");
        assert!(validate_pool_name("a{b}").is_err());
        assert!(validate_pool_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn shipment_ids_and_expiry_are_checked() {
        assert!(validate_shipment_id("SF1234567890").is_ok());
        assert!(validate_shipment_id("has space").is_err());
        assert!(validate_shipment_id("").is_err());
        let now = 1_000_000;
        assert!(validate_expiry(now + 1, now).is_ok());
        assert_eq!(validate_expiry(now, now).unwrap_err().field, "expires_at");
        assert!(validate_expiry(now + MAX_TTL_MS + 1, now).is_err());
    }

    #[test]
    fn pool_specs_and_binding_requests_are_checked() {
        let spec = PoolSpec {
            name: "sh".into(),
            country: 86,
            grace_s: DEFAULT_GRACE_S,
            cooling_s: DEFAULT_COOLING_S,
            max_bindings_per_number: DEFAULT_MAX_BINDINGS_PER_NUMBER,
            allow_foreign_parties: false,
            extensions: false,
            extension_len: DEFAULT_EXTENSION_LEN,
        };
        assert!(validate_pool_spec(&spec).is_ok());
        let bad = |f: fn(&mut PoolSpec)| {
            let mut s = spec.clone();
            f(&mut s);
            validate_pool_spec(&s).unwrap_err().field
        };
        assert_eq!(bad(|s| s.country = 0), "country");
        assert_eq!(
            bad(|s| s.max_bindings_per_number = 0),
            "max_bindings_per_number"
        );
        assert_eq!(bad(|s| s.cooling_s = MAX_PERIOD_S + 1), "cooling_s");
        assert_eq!(bad(|s| s.name = "a b".into()), "name");
        assert_eq!(bad(|s| s.extension_len = 7), "extension_len");
        assert_eq!(bad(|s| s.extension_len = 0), "extension_len");

        let now = 1_000_000;
        let req = NewBinding {
            pool: "sh".into(),
            shipment_id: "SF1".into(),
            party_a: E164::parse("+8613900000001").unwrap(),
            party_b: E164::parse("+8613900000002").unwrap(),
            expires_at: now + 1000,
            area: Some("021".into()),
            extension: None,
        };
        assert!(validate_new_binding(&req, now).is_ok());
        let bad = |f: fn(&mut NewBinding)| {
            let mut r = req.clone();
            f(&mut r);
            validate_new_binding(&r, now).unwrap_err().field
        };
        assert_eq!(bad(|r| r.pool = "{x}".into()), "pool");
        assert_eq!(bad(|r| r.shipment_id = String::new()), "shipment_id");
        assert_eq!(bad(|r| r.party_b = r.party_a.clone()), "party_b");
        assert_eq!(bad(|r| r.area = Some("no spaces".into())), "area");
        assert_eq!(bad(|r| r.expires_at = 0), "expires_at");
        assert_eq!(bad(|r| r.extension = Some(7)), "extension");
    }

    #[test]
    fn time_conversions_round_trip() {
        let ms = 1_764_000_000_123;
        assert_eq!(datetime_to_ms(ms_to_datetime(ms)), ms);
    }
}
