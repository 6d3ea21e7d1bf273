//! The sizing advice of the pool overview: how many numbers in service the
//! observed load needs (the busiest party's live bindings plus its share of
//! cooling holds, with headroom, and enough for the per-number cap), and whether
//! to add numbers now.

use serde::Serialize;

use crate::bindings::PoolOverview;

/// Headroom the sizing advice adds on top of the observed need.
const HEADROOM: f64 = 1.25;

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SizingView {
    /// Live bindings of the busiest party (the pool is exhausted for a party
    /// that holds every number in service).
    peak_party_live: u64,
    /// Its share of the numbers in service (1.0 = exhausted for that party).
    pub(super) peak_party_exhaustion: f64,
    /// Numbers in service needed for the busiest party plus its cooling holds,
    /// with 25% headroom (and for the per-number cap).
    pub(super) recommended_numbers: u64,
    /// Numbers in service now (active).
    in_service: u64,
    /// Whether to add numbers now.
    add_now: bool,
    /// How many to add (0 if none).
    add: u64,
    /// Why, in words.
    reason: String,
}

pub(super) fn sizing(o: &PoolOverview) -> SizingView {
    let peak = o
        .busiest_parties
        .first()
        .map(|p| p.live_bindings)
        .unwrap_or(0);
    let in_service = o.active;
    // Cooling holds per live hold, observed over the pool: a party busy now will
    // also hold numbers it used recently.
    let cool_ratio = if o.live_bindings > 0 {
        o.cooling as f64 / (2.0 * o.live_bindings as f64)
    } else {
        0.0
    };
    let per_party = (peak as f64 * (1.0 + cool_ratio) * HEADROOM).ceil() as u64;
    let cap = u64::from(o.spec.max_bindings_per_number.max(1));
    let by_capacity = ((o.live_bindings as f64 / cap as f64) * HEADROOM).ceil() as u64;
    let recommended = per_party.max(by_capacity).max(1);
    let exhaustion = if in_service > 0 {
        peak as f64 / in_service as f64
    } else if peak > 0 {
        1.0
    } else {
        0.0
    };
    let add = recommended.saturating_sub(in_service);
    let add_now = add > 0 || o.last_hour.exhausted > 0;
    let reason = if o.last_hour.exhausted > 0 {
        format!(
            "{} requests were refused as pool_exhausted in the last hour",
            o.last_hour.exhausted
        )
    } else if add > 0 {
        format!(
            "the busiest party holds {peak} live bindings (+{:.0}% cooling, +{:.0}% headroom): \
             {recommended} numbers needed, {in_service} in service",
            cool_ratio * 100.0,
            (HEADROOM - 1.0) * 100.0
        )
    } else {
        format!("{in_service} numbers in service cover the observed peak ({recommended} needed)")
    };
    SizingView {
        peak_party_live: peak,
        peak_party_exhaustion: (exhaustion * 1000.0).round() / 1000.0,
        recommended_numbers: recommended,
        in_service,
        add_now,
        add: add.max(u64::from(add_now && add == 0)),
        reason,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bindings::{AllocationBucket, LoadQuantiles, PartyLoad, PoolSpec};

    fn overview(active: u64, live: u64, cooling: u64, peak: u64, exhausted: u64) -> PoolOverview {
        PoolOverview {
            spec: PoolSpec {
                name: "p".into(),
                country: 86,
                grace_s: 0,
                cooling_s: 0,
                max_bindings_per_number: 1000,
                allow_foreign_parties: false,
                extensions: false,
                extension_len: 4,
            },
            active,
            draining: 0,
            retired: 0,
            quarantined: 0,
            live_bindings: live,
            cooling,
            per_number: LoadQuantiles::default(),
            busiest_parties: vec![PartyLoad {
                party: "00".into(),
                live_bindings: peak,
            }],
            hours: vec![],
            last_hour: AllocationBucket {
                exhausted,
                ..Default::default()
            },
        }
    }

    #[test]
    fn sizing_covers_the_busiest_party_with_cooling_and_headroom() {
        // Peak party holds 80 live; cooling doubles each live hold's footprint.
        let s = sizing(&overview(100, 1000, 2000, 80, 0));
        assert_eq!(s.recommended_numbers, 200); // 80 * 2 * 1.25
        assert!(s.add_now);
        assert_eq!(s.add, 100);
        let s = sizing(&overview(300, 1000, 2000, 80, 0));
        assert!(!s.add_now, "{}", s.reason);
        assert_eq!(s.add, 0);
        // Refusals in the last hour mean "add now" whatever the estimate.
        let s = sizing(&overview(300, 1000, 2000, 80, 3));
        assert!(s.add_now && s.add >= 1, "{}", s.reason);
    }
}
