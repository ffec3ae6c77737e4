//! `sampling`: keeps about `rate` (0 to 1) of the entries; the others are
//! counted as filtered under `drop_counter_reason` (default
//! `sampling_stage`).
//!
//! Grafana draws a random number per entry. Here the number is a hash of
//! the entry's timestamp and line (FNV-1a, then SplitMix64's finalizer,
//! fixed forever), compared with the same boundary as Grafana's (Jaeger's
//! probabilistic sampler): the same entry is always kept or always
//! dropped, so a replay after a crash sends exactly the entries the first
//! run sent. Identical lines with identical timestamps share their fate.

use std::sync::Arc;

use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{Context, Entry, Stage};

const DEFAULT_REASON: &str = "sampling_stage";
/// Jaeger's `maxRandomNumber`: the largest 63-bit number.
const MAX_RANDOM: u64 = !(1u64 << 63);

#[derive(Debug, Clone)]
pub struct Sampling {
    boundary: u64,
    reason: Arc<str>,
}

impl Sampling {
    pub fn new(config: &Node) -> Result<Sampling, String> {
        let mut f = Fields::new(config)?.weak();
        let reason = f.string("drop_counter_reason")?;
        let rate = f.f64("rate")?.unwrap_or(0.0);
        f.finish()?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!(
                "sampling stage failed to parse rate,Sampling Rate must be between 0.0 and 1.0, received {}",
                go_percent_f(rate)
            ));
        }
        Ok(Sampling {
            // Go: uint64(float64(maxRandomNumber) * rate); 1.0 gives 2^63.
            boundary: (MAX_RANDOM as f64 * rate) as u64,
            reason: Arc::from(
                reason
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| DEFAULT_REASON.to_string())
                    .as_str(),
            ),
        })
    }

    fn is_sampled(&self, entry: &Entry) -> bool {
        self.boundary >= entry_number(entry)
    }
}

/// Go's `%f`: six decimals.
fn go_percent_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f:.6}")
    }
}

/// The entry's number in 1..=MAX_RANDOM, from its timestamp and line.
pub fn entry_number(entry: &Entry) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in entry
        .timestamp
        .to_le_bytes()
        .iter()
        .chain(entry.line.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    // SplitMix64's finalizer spreads FNV's weak low bits over all 64.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h & MAX_RANDOM).max(1)
}

impl Stage for Sampling {
    fn name(&self) -> &'static str {
        "sampling"
    }

    fn run(&mut self, entries: &mut Vec<Entry>, cx: &mut Context) {
        entries.retain(|entry| {
            if self.is_sampled(entry) {
                return true;
            }
            cx.filter(entry, &self.reason);
            false
        });
    }

    fn fresh(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{entry, refused};
    use super::super::super::{Context, NoFiles, Pipeline};

    fn sample(yaml: &str, n: usize) -> (Vec<String>, u64) {
        let mut p = Pipeline::parse_inline(yaml, &NoFiles).unwrap();
        let mut e: Vec<_> = (0..n).map(|i| entry(&format!("line {i}"))).collect();
        let mut cx = Context::new(0);
        p.run(&mut e, &mut cx);
        let dropped = cx.take_filtered().values().sum();
        (e.into_iter().map(|e| e.line).collect(), dropped)
    }

    #[test]
    fn keeps_about_the_rate_and_the_same_entries_every_time() {
        let (kept, dropped) = sample("[{sampling: {rate: 0.25}}]", 10_000);
        assert!((2_300..2_700).contains(&kept.len()), "{}", kept.len());
        assert_eq!(kept.len() as u64 + dropped, 10_000);
        let (again, _) = sample("[{sampling: {rate: 0.25}}]", 10_000);
        assert_eq!(kept, again, "a replay keeps the same entries");
        let (half, _) = sample("[{sampling: {rate: 0.5}}]", 10_000);
        assert!(
            kept.iter().all(|l| half.contains(l)),
            "a higher rate keeps a superset"
        );
    }

    #[test]
    fn all_or_nothing_and_the_reason() {
        assert_eq!(sample("[{sampling: {rate: 1}}]", 1000).0.len(), 1000);
        assert_eq!(sample("[{sampling: {}}]", 1000).0.len(), 0);
        let mut p = Pipeline::parse_inline(
            "[{sampling: {rate: 0, drop_counter_reason: sampled_out}}]",
            &NoFiles,
        )
        .unwrap();
        let mut cx = Context::new(0);
        p.run(&mut vec![entry("x")], &mut cx);
        assert_eq!(cx.take_filtered().get("sampled_out"), Some(&1));
    }

    #[test]
    fn configs() {
        assert_eq!(
            refused("[{sampling: {rate: 1.5}}]"),
            "invalid sampling stage config: sampling stage failed to parse rate,Sampling Rate must be between 0.0 and 1.0, received 1.500000"
        );
        assert!(refused("[{sampling: {rate: .nan}}]").contains("received NaN"));
        assert!(refused("[{sampling: {rate: x}}]").contains("rate"));
        assert!(refused("[{sampling: {rat: 1}}]").contains("unknown setting"));
        assert!(sample("[{sampling: {rate: '0.5'}}]", 1).1 <= 1);
    }
}
