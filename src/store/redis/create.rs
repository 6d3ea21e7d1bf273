//! Allocation in the Redis store: `create_binding` over a pool's sub-pools (home
//! first, then a recorded fallback; see `subpools.rs`), the create script's keys and
//! arguments, and the replica acknowledgement of a new binding.

use rand::RngCore;
use redis::Value;

use super::codec::{
    make_id, meta_key, parse_record, parse_route, party_tag, pid_bytes, prefix, record_key,
    shipment_hash, IdParts,
};
use super::{at, bytes, corrupt, enc6, int, pid_of, subpools, RedisStore};
use crate::bindings::{validate_new_binding, Binding, Created, NewBinding, UnixMs};
use crate::numbers::E164;
use crate::store::StoreError;

impl RedisStore {
    pub(super) async fn create_binding_impl(
        &self,
        req: NewBinding,
        now: UnixMs,
    ) -> Result<Created, StoreError> {
        validate_new_binding(&req, now)?;
        let pool = req.pool.as_str();
        let sh = shipment_hash(pool, &req.shipment_id);
        let mut gen = [0u8; 3];
        rand::rng().fill_bytes(&mut gen);
        let mut conn = self.create_conn();
        let n = self.subpools(pool).await?;
        let home = subpools::home(&sh, n);
        // Sub-pools (see `subpools.rs`): home first; "moved" → the recorded one;
        // "exhausted" at home → record a fallback, create there. Bounded: a claim
        // that finds a live binding at home sends us home once more.
        let mut k = home;
        let mut claimed = false;
        let mut r = Vec::new();
        for _ in 0..4 {
            if n > 1 {
                gen[0] = k as u8;
            }
            r = self
                .create_at(
                    &mut conn,
                    &req,
                    now,
                    sh,
                    gen,
                    &subpools::tag(pool, k),
                    n,
                    false,
                )
                .await?;
            match (at(&r, 0)?, r.get(1).and_then(bytes)) {
                (b"e", Some(b"moved")) => {
                    k = r
                        .get(2)
                        .and_then(int)
                        .and_then(|j| u32::try_from(j).ok())
                        .filter(|j| *j < n)
                        .ok_or_else(|| corrupt("moved reply"))?;
                }
                (b"e", Some(b"exhausted")) if n > 1 && k == home && !claimed => {
                    // The least loaded sub-pool that has a number for these
                    // parties (asked, not written): the claim is for good. Any
                    // answer but "no number" qualifies: a racing relay may have
                    // created this very binding there ('x'), which the create
                    // there then returns.
                    let mut pick = None;
                    for j in self.fallback_order(pool, home, n).await? {
                        let probe = self
                            .create_at(
                                &mut conn,
                                &req,
                                now,
                                sh,
                                gen,
                                &subpools::tag(pool, j),
                                n,
                                true,
                            )
                            .await?;
                        let no_room = at(&probe, 0)? == b"p" && at(&probe, 1)? == b"0";
                        if !no_room {
                            pick = Some(j);
                            break;
                        }
                    }
                    let Some(j) = pick else {
                        break;
                    };
                    claimed = true;
                    if let Some(j) = self.claim(pool, home, &sh, j, now).await? {
                        k = j;
                    }
                }
                _ => break,
            }
        }
        let t = subpools::tag(pool, k);
        if matches!(at(&r, 0)?, b"n" | b"x") {
            // A new binding, or the existing one a retry finds (its first answer
            // may have been a failed WAIT, maybe on another relay): with
            // `replica_ack`, answered only once replicas hold it.
            self.wait_replicas(&mut conn, &t, &sh).await?;
        }
        match at(&r, 0)? {
            b"n" => {
                let rec = parse_record(at(&r, 1)?)?;
                let id = make_id(&IdParts {
                    sh,
                    pid: pid_of(at(&r, 2)?)?,
                    gen,
                });
                Ok(Created::New(Binding {
                    id,
                    pool: req.pool.clone(),
                    shipment_id: req.shipment_id,
                    number: E164::parse(&format!("+{}", rec.x))
                        .map_err(|_| corrupt("virtual number"))?,
                    party_a: req.party_a,
                    party_b: req.party_b,
                    created_at: rec.created,
                    expires_at: rec.expires,
                    state: rec.state,
                    extension: rec.extension,
                }))
            }
            b"x" => {
                let ra = at(&r, 3)?;
                let id = parse_route(ra)?.id;
                Ok(Created::Existing(self.assemble(
                    pool,
                    id,
                    at(&r, 1)?,
                    ra,
                    at(&r, 4)?,
                )?))
            }
            b"e" => match at(&r, 1)? {
                b"nopool" => Err(StoreError::PoolNotFound(req.pool)),
                b"exhausted" => Err(StoreError::PoolExhausted { pool: req.pool }),
                b"conflict" => {
                    let rec = parse_record(at(&r, 2)?)?;
                    let existing = make_id(&IdParts {
                        sh,
                        pid: pid_of(at(&r, 3)?)?,
                        gen: rec.gen,
                    });
                    Err(StoreError::ShipmentConflict { existing })
                }
                _ => Err(corrupt("create error code")),
            },
            _ => Err(corrupt("create reply")),
        }
    }

    /// Runs the create script in the sub-pool tagged `t` (of `n`), refreshing the
    /// cached pool id once if the script finds another. `probe`: only ask whether
    /// a number is free there for the parties (`{'p', '1'|'0'}`).
    #[allow(clippy::too_many_arguments)]
    async fn create_at(
        &self,
        conn: &mut super::conn::Conn,
        req: &NewBinding,
        now: UnixMs,
        sh: [u8; 8],
        gen: [u8; 3],
        t: &str,
        n: u32,
        probe: bool,
    ) -> Result<Vec<Value>, StoreError> {
        let script = if n > 1 {
            &self.scripts.create_sub
        } else {
            &self.scripts.create
        };
        let mut fresh = false;
        loop {
            let Some(pid) = self.pool_pid(&req.pool, fresh).await? else {
                return Err(StoreError::PoolNotFound(req.pool.clone()));
            };
            let (keys, mut args) = self.create_args(req, now, sh, gen, pid, t);
            if probe {
                args.push(b"probe".to_vec());
            }
            let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let r = self.eval_on(conn, script, &keys, &args).await?;
            if !fresh && r.get(1).and_then(bytes) == Some(b"pid") {
                fresh = true;
                continue;
            }
            return Ok(r);
        }
    }

    /// Keys and arguments of the create script for `req` in pool id `pid`. Everything
    /// that does not depend on the number the script picks is built here, so the
    /// script (which runs on the one Redis thread) only concatenates.
    pub(super) fn create_args(
        &self,
        req: &NewBinding,
        now: UnixMs,
        sh: [u8; 8],
        gen: [u8; 3],
        pid: u32,
        t: &str,
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let pool = req.pool.as_str();
        let id = make_id(&IdParts { sh, pid, gen });
        let ext_probe = super::extensions::ext_probe();
        let ta = party_tag(&self.hasher, &req.party_a);
        let tb = party_tag(&self.hasher, &req.party_b);
        let route_value = |callee: &E164| {
            let mut v = id.as_bytes().to_vec();
            v.extend_from_slice(&enc6(req.expires_at));
            v.extend_from_slice(&self.seal(pool, callee));
            v
        };
        let mut head = gen.to_vec();
        head.extend_from_slice(&enc6(now));
        head.extend_from_slice(&enc6(req.expires_at));
        head.push(b'a');
        head.extend_from_slice(&ta);
        head.extend_from_slice(&tb);
        let keys = vec![meta_key(t).into_bytes(), record_key(t, &sh)];
        let args = vec![
            prefix(t).into_bytes(),
            now.to_string().into_bytes(),
            sh.to_vec(),
            gen.to_vec(),
            req.expires_at.to_string().into_bytes(),
            req.shipment_id.clone().into_bytes(),
            ta.to_vec(),
            tb.to_vec(),
            route_value(&req.party_b),
            route_value(&req.party_a),
            req.area.clone().unwrap_or_default().into_bytes(),
            pid_bytes(pid).to_vec(),
            head,
            req.extension.unwrap_or(0).to_string().into_bytes(),
            ext_probe.0.to_string().into_bytes(),
            ext_probe.1.to_string().into_bytes(),
        ];
        (keys, args)
    }
}
