//! Virtual numbers for a benchmark pool: `+8617<run%1000:3><i:7>`, imported in
//! chunks of 5,000 (one import call each). Shared by `store_bench` and
//! `cluster_bench` (`#[path]`).

use maskline::bindings::{Capabilities, NumberSpec};
use maskline::numbers::E164;
use maskline::store::BindingStore;

/// Imports `count` numbers of run `run` into `pool`; returns them.
pub async fn import(
    store: &dyn BindingStore,
    pool: &str,
    run: u64,
    count: usize,
) -> anyhow::Result<Vec<E164>> {
    let xs: Vec<E164> = (0..count)
        .map(|i| E164::parse(&format!("+8617{:03}{:07}", run % 1000, i)))
        .collect::<Result<_, _>>()?;
    for chunk in xs.chunks(5000) {
        let specs = chunk
            .iter()
            .map(|x| NumberSpec {
                number: x.clone(),
                area: None,
                capabilities: Capabilities::default(),
            })
            .collect();
        store.import_numbers(pool, specs).await?;
    }
    Ok(xs)
}
