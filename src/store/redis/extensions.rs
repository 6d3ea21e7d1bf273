//! Extensions in the Redis store: the probe the create script searches free
//! extensions with, and routing by extension (`extension.lua`, one round trip).
//! The layout (ZSET `e<x>` of held extensions scored by hold end, hash `E<x>`
//! extension → shipment hash + generation) is in `src/store/lua/prelude.lua`.

use super::codec::{digits, parse_record, parse_route, prefix};
use super::{at, corrupt, RedisStore};
use crate::bindings::{ExtensionRoute, Route, UnixMs};
use crate::numbers::E164;
use crate::store::StoreError;

/// A random probe (start, step) for the create script's extension search; the
/// step is coprime to 10, so probing visits every extension of any length.
pub(super) fn ext_probe() -> (u32, u32) {
    use rand::Rng;
    const STEPS: [u32; 8] = [1, 3, 7, 9, 11, 13, 17, 19];
    let mut rng = rand::rng();
    let step = STEPS
        .get(rng.random_range(0..STEPS.len()))
        .copied()
        .unwrap_or(1);
    (rng.random_range(0..1_000_000), step)
}

impl RedisStore {
    pub(super) async fn route_extension_impl(
        &self,
        pool: &str,
        number: &E164,
        extension: &str,
        now: UnixMs,
    ) -> Result<ExtensionRoute, StoreError> {
        let x = digits(number);
        let t = self.tag_of_number(pool, number).await?;
        let r = self
            .eval(
                &self.scripts.extension,
                &[format!("{{{t}}}e{x}").as_bytes()],
                &[
                    prefix(&t).as_bytes(),
                    now.to_string().as_bytes(),
                    x.as_bytes(),
                    extension.as_bytes(),
                ],
            )
            .await?;
        match at(&r, 0)? {
            b"l" => {
                let rec = parse_record(at(&r, 1)?)?;
                let rv = parse_route(at(&r, 2)?)?;
                if rv.sealed.is_empty() {
                    return Ok(ExtensionRoute::Ended);
                }
                Ok(ExtensionRoute::Live(Route {
                    binding_id: rv.id,
                    pool: pool.to_owned(),
                    callee: self.open(pool, rv.sealed)?,
                    expires_at: rec.expires,
                    shipment_id: Some(rec.shipment),
                    caller_is_a: None,
                }))
            }
            b"d" => Ok(ExtensionRoute::Ended),
            b"u" => Ok(ExtensionRoute::Unknown),
            _ => Err(corrupt("extension reply")),
        }
    }
}
