//! Helpers shared by the Redis store's own integration tests (`redis_store.rs`,
//! `redis_resilience.rs`): a store on a given Redis, pools, requests, and a private
//! `redis-server` that a test may stop and restart (re-exported from `common`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use maskline::bindings::{now_ms, Binding, Capabilities, Created, NewBinding, NumberSpec};
use maskline::numbers::{NumberHasher, Sealer, E164};
use maskline::store::redis::RedisStore;
use maskline::store::BindingStore;

use super::common;
#[allow(unused_imports)]
pub use super::common::OwnRedis;

pub fn hasher() -> NumberHasher {
    NumberHasher::new(&[42u8; 32]).unwrap()
}

pub async fn store_at(url: &str) -> RedisStore {
    RedisStore::connect(url, hasher(), Sealer::random())
        .await
        .unwrap()
}

pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

pub fn e164(s: String) -> E164 {
    E164::parse(&s).unwrap()
}

/// A pool with `n` fresh virtual numbers, in number order.
pub async fn pool(s: &dyn BindingStore, n: usize, cap: u32) -> (String, Vec<E164>) {
    let name = common::unique("r");
    s.create_pool(common::pool_spec(&name, cap)).await.unwrap();
    let mut set = HashSet::new();
    while set.len() < n {
        set.insert(common::random_e164("+8617"));
    }
    let mut xs: Vec<E164> = set.into_iter().map(e164).collect();
    xs.sort();
    let out = s
        .import_numbers(
            &name,
            xs.iter()
                .map(|x| NumberSpec {
                    number: x.clone(),
                    area: Some("sh".into()),
                    capabilities: Capabilities::default(),
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(out.added, n as u64);
    (name, xs)
}

pub fn req(pool: &str, a: &E164, b: &E164, ttl_ms: i64) -> NewBinding {
    NewBinding {
        pool: pool.to_owned(),
        shipment_id: common::unique("SF"),
        party_a: a.clone(),
        party_b: b.clone(),
        expires_at: now_ms() + ttl_ms,
        area: None,
        extension: None,
    }
}

pub async fn new_binding(s: &dyn BindingStore, r: NewBinding) -> Binding {
    match s.create_binding(r, now_ms()).await.unwrap() {
        Created::New(b) => b,
        e => panic!("expected a new binding, got {e:?}"),
    }
}
