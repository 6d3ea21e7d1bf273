//! The one question the call path asks: where does a call from `caller` to virtual
//! number `X` go? Answered in **one store round trip**: the number → pool map is
//! cached in-process (a number's pool never changes while it is in the pool; an
//! entry lives [`POOL_TTL`], an unknown number is remembered [`MISS_TTL`]), so a
//! call costs only the route lookup (one Redis `GET`).
//!
//! The decision (bridge, IVR, default party, announcement or reject, and with
//! what) is made here and nowhere else. Only a caller without a route costs more:
//! the pool's settings (whether its bindings get extensions) are read once and
//! cached like the number → pool map, and the `[sip.ivr]` policy says whether
//! the pool answers such callers itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ivr_policy::IvrPolicy;
use crate::bindings::{Route, UnixMs, DEFAULT_EXTENSION_LEN};
use crate::numbers::E164;
use crate::store::{BindingStore, StoreError};

/// How long a number → pool entry is trusted.
pub const POOL_TTL: Duration = Duration::from_secs(30);
/// How long "no pool has this number" is remembered.
pub const MISS_TTL: Duration = Duration::from_secs(2);
/// Cache bound; past it the cache is cleared (numbers are re-learnt in one lookup).
const MAX_ENTRIES: usize = 1_000_000;

/// What to do with a new call.
#[derive(Debug)]
pub enum Decision {
    /// Bridge to the route's callee.
    Bridge {
        /// The route.
        route: Route,
    },
    /// The caller has no binding on X, whose pool takes extensions: the relay
    /// answers and collects an extension (IVR).
    Ivr {
        /// Pool of X.
        pool: String,
        /// Digits of the pool's extensions (the IVR stops collecting at this many).
        extension_len: u8,
    },
    /// AXN with the IVR skipped: bridge to the number's default party.
    DefaultParty {
        /// Pool of X.
        pool: String,
        /// The default party (a depot hotline).
        party: E164,
    },
    /// No route, and the pool announces instead of rejecting.
    Announce {
        /// Pool of X.
        pool: String,
    },
    /// X is in a pool but the caller has no live binding on it.
    NoBinding {
        /// Pool of X.
        pool: String,
    },
    /// X is in no pool.
    UnknownNumber,
    /// The store failed or timed out.
    Unavailable,
}

/// Cached pool → extension length (if its bindings get extensions), when learnt.
type SpecCache = HashMap<String, (Option<u8>, Instant)>;

/// Cached number → pool (`None`: in no pool) and when it was learnt.
type PoolCache = HashMap<E164, (Option<String>, Instant)>;

/// Number → pool cache in front of the store.
#[derive(Clone)]
pub struct CallRouter {
    store: Arc<dyn BindingStore>,
    pools: Arc<Mutex<PoolCache>>,
    /// Pool → (extension length if its bindings get extensions, when learnt).
    specs: Arc<Mutex<SpecCache>>,
    ivr: Arc<IvrPolicy>,
}

impl std::fmt::Debug for CallRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRouter").finish_non_exhaustive()
    }
}

impl CallRouter {
    /// A router over `store`.
    pub fn new(store: Arc<dyn BindingStore>) -> Self {
        Self::with_ivr(store, Arc::default())
    }

    /// A router over `store` that sends callers without route per `ivr`.
    pub fn with_ivr(store: Arc<dyn BindingStore>, ivr: Arc<IvrPolicy>) -> Self {
        Self {
            store,
            pools: Arc::default(),
            specs: Arc::default(),
            ivr,
        }
    }

    /// The IVR policy.
    pub fn ivr(&self) -> &Arc<IvrPolicy> {
        &self.ivr
    }

    /// The pool's extension length if its bindings get extensions (cached).
    async fn pool_extensions(&self, pool: &str) -> Option<u8> {
        let now = Instant::now();
        if let Ok(map) = self.specs.lock() {
            if let Some((ext, at)) = map.get(pool) {
                if now.duration_since(*at) < POOL_TTL {
                    return *ext;
                }
            }
        }
        let spec = self.store.get_pool(pool).await.ok()?;
        let ext = spec.extensions.then_some(spec.extension_len);
        if let Ok(mut map) = self.specs.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(pool.to_owned(), (ext, now));
        }
        ext
    }

    /// What happens to a caller without route on `pool`.
    async fn no_route(&self, pool: String) -> Decision {
        let listed = self.ivr.pool(&pool).cloned();
        if let Some(p) = &listed {
            if let (true, Some(party)) = (p.skip_ivr, &p.default_party) {
                return Decision::DefaultParty {
                    pool,
                    party: party.clone(),
                };
            }
        }
        let ext = self.pool_extensions(&pool).await;
        let listed_ivr = listed.as_ref().is_some_and(|p| p.ivr);
        if self.ivr.prompts(&pool).is_some() && (listed_ivr || ext.is_some()) {
            return Decision::Ivr {
                pool,
                extension_len: ext.unwrap_or(DEFAULT_EXTENSION_LEN),
            };
        }
        if self.ivr.announces(&pool) {
            return Decision::Announce { pool };
        }
        Decision::NoBinding { pool }
    }

    /// The store (for record enrichment off the call path).
    pub fn store(&self) -> &Arc<dyn BindingStore> {
        &self.store
    }

    async fn pool_of(&self, number: &E164) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        if let Ok(map) = self.pools.lock() {
            if let Some((pool, at)) = map.get(number) {
                let ttl = if pool.is_some() { POOL_TTL } else { MISS_TTL };
                if now.duration_since(*at) < ttl {
                    return Ok(pool.clone());
                }
            }
        }
        let pool = self.store.pool_of_number(number).await?;
        if let Ok(mut map) = self.pools.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(number.clone(), (pool.clone(), now));
        }
        Ok(pool)
    }

    /// Decides a call from `caller` to `number` at `now`.
    pub async fn decide(&self, number: &E164, caller: &E164, now: UnixMs) -> Decision {
        let pool = match self.pool_of(number).await {
            Ok(Some(p)) => p,
            Ok(None) => return Decision::UnknownNumber,
            Err(_) => return Decision::Unavailable,
        };
        match self.store.route(&pool, number, caller, now).await {
            Ok(Some(route)) => Decision::Bridge { route },
            Ok(None) => self.no_route(pool).await,
            Err(StoreError::PoolNotFound(_)) => {
                // The pool went away (data loss, re-import): forget and re-learn.
                if let Ok(mut map) = self.pools.lock() {
                    map.remove(number);
                }
                Decision::UnknownNumber
            }
            Err(_) => Decision::Unavailable,
        }
    }
}
