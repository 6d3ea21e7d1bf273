//! The store contract cases and their helpers, one file per topic.
//!
//! Every case is `pub async fn name(s: Store)`: it gets a fresh store and checks
//! behaviour a client of the store would notice. Cases share no global state
//! (unique pool names, shipment ids and audit actors; random numbers), so they run
//! in parallel against one shared server.

mod allocation;
mod concurrency;
mod extensions;
mod lifecycle;
mod opsview;
mod pools;
mod routing;
mod stats;

pub use allocation::*;
pub use concurrency::*;
pub use extensions::*;
pub use lifecycle::*;
pub use opsview::*;
pub use pools::*;
pub use routing::*;
pub use stats::*;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use maskline::bindings::{
    now_ms, Binding, BindingPatch, BindingState, Capabilities, Created, NewBinding, NumberSpec,
    NumberState, PoolSpec,
};
use maskline::numbers::E164;
use maskline::store::{AuditEntry, StoreError};
use rand::Rng;

use crate::common;
use crate::Store;

/// A random 15-digit number with `prefix` (6 chars incl. '+', then 10 digits).
fn rand_number(prefix: &str) -> E164 {
    let n: u64 = rand::rng().random_range(0..10_000_000_000);
    E164::parse(&format!("{prefix}{n:010}")).unwrap()
}

/// A person's number (a courier or customer).
fn party() -> E164 {
    rand_number("+86139")
}

/// `n` distinct virtual numbers, in number order.
fn vnums(n: usize) -> Vec<E164> {
    let mut set = HashSet::new();
    while set.len() < n {
        set.insert(rand_number("+86170"));
    }
    let mut v: Vec<E164> = set.into_iter().collect();
    v.sort();
    v
}

fn spec(name: &str) -> PoolSpec {
    PoolSpec {
        name: name.to_owned(),
        country: 86,
        grace_s: 3600,
        cooling_s: 24 * 3600,
        max_bindings_per_number: 200,
        allow_foreign_parties: false,
        extensions: false,
        extension_len: maskline::bindings::DEFAULT_EXTENSION_LEN,
    }
}

fn num(x: &E164, area: Option<&str>) -> NumberSpec {
    NumberSpec {
        number: x.clone(),
        area: area.map(str::to_owned),
        capabilities: Capabilities::default(),
    }
}

/// Creates a pool (settings adjusted by `f`) with `n` fresh numbers, no area.
async fn pool_with(s: &Store, n: usize, f: impl FnOnce(&mut PoolSpec)) -> (String, Vec<E164>) {
    let name = common::unique("p");
    let mut sp = spec(&name);
    f(&mut sp);
    s.create_pool(sp).await.unwrap();
    let xs = vnums(n);
    let out = s
        .import_numbers(&name, xs.iter().map(|x| num(x, None)).collect())
        .await
        .unwrap();
    assert_eq!(out.added, n as u64, "{out:?}");
    (name, xs)
}

fn req(pool: &str, a: &E164, b: &E164) -> NewBinding {
    NewBinding {
        pool: pool.to_owned(),
        shipment_id: common::unique("SF"),
        party_a: a.clone(),
        party_b: b.clone(),
        expires_at: now_ms() + 3_600_000,
        area: None,
        extension: None,
    }
}

/// Creates a binding that must be new.
async fn bind(s: &Store, pool: &str, a: &E164, b: &E164) -> Binding {
    match s.create_binding(req(pool, a, b), now_ms()).await.unwrap() {
        Created::New(b) => b,
        other => panic!("expected a new binding, got {other:?}"),
    }
}

async fn bind_err(s: &Store, r: NewBinding) -> StoreError {
    s.create_binding(r, now_ms()).await.unwrap_err()
}

fn assert_exhausted(e: &StoreError, pool: &str) {
    match e {
        StoreError::PoolExhausted { pool: p } => assert_eq!(p, pool),
        other => panic!("expected PoolExhausted, got {other:?}"),
    }
}

fn assert_invalid(e: &StoreError, field: &str) {
    match e {
        StoreError::Invalid(i) => assert_eq!(i.field, field, "{e}"),
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

async fn callee(s: &Store, pool: &str, x: &E164, caller: &E164) -> Option<E164> {
    s.route(pool, x, caller, now_ms())
        .await
        .unwrap()
        .map(|r| r.callee)
}

/// Creates a binding from `r` that must be new.
async fn bind_new(s: &Store, r: NewBinding) -> Binding {
    match s.create_binding(r, now_ms()).await.unwrap() {
        Created::New(b) => b,
        e => panic!("expected New, got {e:?}"),
    }
}
