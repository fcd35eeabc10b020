//! The trap's decision for one observation, as a pure function: hold, cross, blind or distrust.
//!
//! Kept apart from I/O so every case is a line of a table test. A crossing is not yet a fire: the trap
//! corroborates it first (`Producer::corroborate`).

use crate::producer::Observation;

/// What one observation means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Below the threshold: keep watching.
    Hold { missed: u64, threshold: u64 },
    /// At or past the threshold: corroborate, then fire.
    Crossing { missed: u64, threshold: u64 },
    /// No trustworthy reading: never fire on this.
    Blind(String),
    /// A reading that cannot be true (the counter never decreases on chain): log it, do not act.
    Distrust(String),
}

/// Decide on `obs` given the `threshold` (absolute counter value) and the last accepted counter.
pub fn decide(threshold: u64, last_missed: Option<u64>, obs: &Observation) -> Decision {
    match obs {
        Observation::Blind(reason) => Decision::Blind(reason.clone()),
        Observation::Reading(r) => match last_missed {
            Some(last) if r.missed < last => Decision::Distrust(format!(
                "{} says total_missed is {}, below the {} read before",
                r.source, r.missed, last
            )),
            _ if r.missed >= threshold => Decision::Crossing { missed: r.missed, threshold },
            _ => Decision::Hold { missed: r.missed, threshold },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::Reading;

    fn reading(missed: u64) -> Observation {
        Observation::Reading(Reading {
            missed,
            height: 1,
            chain_time: 1,
            source: "e".into(),
            source_index: 0,
            current_key: "k".into(),
        })
    }

    #[test]
    fn decision_table() {
        let blind = Observation::Blind("all stale".into());
        let cases: Vec<(u64, Option<u64>, Observation, Decision, &str)> = vec![
            (10, None, reading(9), Decision::Hold { missed: 9, threshold: 10 }, "below"),
            (10, None, reading(10), Decision::Crossing { missed: 10, threshold: 10 }, "at"),
            (10, Some(9), reading(12), Decision::Crossing { missed: 12, threshold: 10 }, "jumped past"),
            (10, Some(9), reading(9), Decision::Hold { missed: 9, threshold: 10 }, "unchanged"),
            (10, None, blind.clone(), Decision::Blind("all stale".into()), "blind"),
            (10, Some(9), blind, Decision::Blind("all stale".into()), "blind after readings"),
        ];
        for (threshold, last, obs, want, why) in cases {
            assert_eq!(decide(threshold, last, &obs), want, "{why}");
        }
        assert!(matches!(decide(10, Some(9), &reading(8)), Decision::Distrust(_)), "backwards");
        assert!(matches!(decide(10, Some(11), &reading(10)), Decision::Distrust(_)), "backwards past threshold");
    }
}
