//! The trap's decision for one observation, as a pure function: hold, cross, blind or distrust.
//!
//! Kept apart from I/O so every case is a line of a table test. A crossing is not yet a fire: the trap
//! corroborates it first (`Producer::corroborate`).

use crate::chain::Observation;

/// What one observation means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Fewer misses than allowed: keep watching.
    Hold { misses: u64, allowed: u64 },
    /// As many misses as allowed, or more: corroborate, then fire.
    Crossing { misses: u64, allowed: u64 },
    /// No trustworthy reading: never fire on this.
    Blind(String),
    /// A reading that cannot be true (the chain's counter never decreases): log it, do not act.
    Distrust(String),
}

/// Decide on `obs` given the misses `allowed` since arming and the chain counter read last (where the chain
/// keeps one). `counter_name` names that counter in the reason ("total_missed").
pub fn decide(allowed: u64, last_counter: Option<u64>, counter_name: &str, obs: &Observation) -> Decision {
    match obs {
        Observation::Blind(reason) => Decision::Blind(reason.clone()),
        Observation::Reading(e) => match (last_counter, e.counter) {
            (Some(last), Some(now)) if now < last => {
                Decision::Distrust(format!("{} says {counter_name} is {now}, below the {last} read before", e.source))
            }
            _ if e.misses >= allowed => Decision::Crossing { misses: e.misses, allowed },
            _ => Decision::Hold { misses: e.misses, allowed },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainTime, Evidence};

    /// A Hive/Steem-like reading: armed at counter 9, so misses = counter − 9.
    fn reading(counter: u64) -> Observation {
        Observation::Reading(Evidence {
            misses: counter.saturating_sub(9),
            counter: Some(counter),
            height: 1,
            chain_time: ChainTime::from_secs(1),
            source: "e".into(),
            source_index: 0,
            current_key: "k".into(),
        })
    }

    /// A chain without a counter (the trap counts misses itself): nothing to distrust by order.
    fn counted(misses: u64) -> Observation {
        let Observation::Reading(mut e) = reading(0) else { unreachable!() };
        e.misses = misses;
        e.counter = None;
        Observation::Reading(e)
    }

    #[test]
    fn decision_table() {
        let blind = Observation::Blind("all stale".into());
        let cases: Vec<(u64, Option<u64>, Observation, Decision, &str)> = vec![
            (1, None, reading(9), Decision::Hold { misses: 0, allowed: 1 }, "below"),
            (1, None, reading(10), Decision::Crossing { misses: 1, allowed: 1 }, "at"),
            (1, Some(9), reading(12), Decision::Crossing { misses: 3, allowed: 1 }, "jumped past"),
            (1, Some(9), reading(9), Decision::Hold { misses: 0, allowed: 1 }, "unchanged"),
            (1, None, blind.clone(), Decision::Blind("all stale".into()), "blind"),
            (1, Some(9), blind, Decision::Blind("all stale".into()), "blind after readings"),
            (2, Some(5), counted(1), Decision::Hold { misses: 1, allowed: 2 }, "counted, below"),
            (2, Some(5), counted(2), Decision::Crossing { misses: 2, allowed: 2 }, "counted, at"),
        ];
        for (allowed, last, obs, want, why) in cases {
            assert_eq!(decide(allowed, last, "total_missed", &obs), want, "{why}");
        }
        assert!(matches!(decide(1, Some(9), "total_missed", &reading(8)), Decision::Distrust(_)), "backwards");
        let Decision::Distrust(why) = decide(1, Some(11), "total_missed", &reading(10)) else {
            panic!("backwards past the threshold must be distrusted")
        };
        assert!(why.contains("total_missed is 10, below the 11"), "{why}");
    }
}
