//! One look at a Solana cluster, decided: is the guarded vote account voting, down, or can we not tell?
//!
//! A pure function over what each endpoint answered, so every "not when" of the detection is a line of a
//! table test. The rules (solana.md §2.2, §2.3 "What an off-host watchdog can safely do"):
//!
//! * An endpoint counts only when its `getHealth` is `ok` and it answered `getSlot` and `getVoteAccounts`,
//!   and another counting endpoint's slot is within [`SLOT_AGREEMENT`] of its own (an endpoint far behind
//!   or ahead of every other is the one lagging, not the validator).
//! * Each endpoint's lag is its own `slot − lastVote`. The validator is **down** when at least two
//!   endpoints show a lag above `MAX_VOTE_LAG_SLOTS` and none shows it voting; one voting view among down
//!   views is a **disagreement** (a stale or lying index, or a fork), never a fire.
//! * A down validator whose vote account has no activated stake, or whose identity cannot pay for a vote,
//!   is reported, not failed over: another node would not vote either.

use super::rpc::{Health, VoteAccount};

/// Slots two endpoints' `getSlot` may differ by and still describe the same cluster moment: the reads of
/// one look are a second or two apart (a few slots), an endpoint a minute behind is another matter.
pub const SLOT_AGREEMENT: u64 = 64;

/// Lamports an identity needs to vote: the rent-exempt minimum of a system account (890 880, which
/// solana-validator-ha treats as broke) plus one vote's fee (5 000). Below it a failover cannot help.
pub const MIN_VOTE_BALANCE: u64 = 890_880 + 5_000;

/// What one endpoint answered in one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRead {
    pub index: usize,
    pub url: String,
    /// Its answers, or why it gave none.
    pub answer: Result<Answered, String>,
}

/// The answers of an endpoint that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub health: Health,
    pub slot: u64,
    /// The vote account as it lists it (`None`: not listed at all).
    pub vote: Option<VoteAccount>,
    /// The identity's balance, read only where the view is "down".
    pub balance: Option<u64>,
}

/// One endpoint's usable view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub index: usize,
    pub url: String,
    pub slot: u64,
    pub last_vote: u64,
    pub stake: u64,
    pub balance: Option<u64>,
}

impl View {
    pub fn lag(&self) -> u64 {
        self.slot.saturating_sub(self.last_vote)
    }
}

/// What a look means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every counting endpoint sees recent votes.
    Voting { views: Vec<View> },
    /// Two or more counting endpoints see no vote for more than the allowed lag, none sees one.
    Down { views: Vec<View> },
    /// Some counting endpoints see votes and others do not.
    Disagree { voting: Vec<View>, down: Vec<View> },
    /// Down, but the vote account has no activated stake.
    Unstaked { views: Vec<View> },
    /// Down, but the identity cannot pay for a vote.
    Broke { views: Vec<View>, balance: u64 },
    /// Fewer than two counting endpoints show it down, and none shows it voting: nothing to decide on.
    Blind(String),
}

/// Decide one look. `max_lag` is `MAX_VOTE_LAG_SLOTS`.
pub fn judge(reads: &[EndpointRead], max_lag: u64) -> Verdict {
    let mut reasons = Vec::new();
    let mut candidates = Vec::new();
    for r in reads {
        match &r.answer {
            Err(why) => reasons.push(format!("{}: {why}", r.url)),
            Ok(a) => match (&a.health, &a.vote) {
                (Health::Behind(n), _) => reasons.push(match n {
                    Some(n) => format!("{}: behind by {n} slots (getHealth)", r.url),
                    None => format!("{}: behind (getHealth)", r.url),
                }),
                (Health::Unhealthy(m), _) => reasons.push(format!("{}: unhealthy ({m})", r.url)),
                (Health::Ok, None) => reasons.push(format!("{}: does not list the vote account", r.url)),
                (Health::Ok, Some(v)) => candidates.push(View {
                    index: r.index,
                    url: r.url.clone(),
                    slot: a.slot,
                    last_vote: v.last_vote,
                    stake: v.activated_stake,
                    balance: a.balance,
                }),
            },
        }
    }
    // Keep only views another view's slot corroborates.
    let (views, lone): (Vec<View>, Vec<View>) = candidates
        .iter()
        .cloned()
        .partition(|v| candidates.iter().any(|o| o.index != v.index && o.slot.abs_diff(v.slot) <= SLOT_AGREEMENT));
    for v in &lone {
        if candidates.len() > 1 {
            reasons.push(format!(
                "{}: its slot {} is more than {SLOT_AGREEMENT} from every other endpoint's",
                v.url, v.slot
            ));
        }
    }
    // A lone endpoint can still show the validator voting (that alone forbids a fire); it cannot show it down.
    let (voting, down): (Vec<View>, Vec<View>) = views.into_iter().partition(|v| v.lag() <= max_lag);
    if lone.len() == 1 && candidates.len() == 1 {
        let v = &lone[0];
        if v.lag() <= max_lag {
            return Verdict::Voting { views: lone };
        }
        reasons.push(format!("{}: the only healthy endpoint, lag {} slots: a second is needed", v.url, v.lag()));
        return Verdict::Blind(reasons.join("; "));
    }
    // A lone endpoint that sees votes still forbids "down" (the primary may be back in slots only it has seen).
    let lone_voting: Vec<View> = lone.iter().filter(|v| v.lag() <= max_lag).cloned().collect();
    if !down.is_empty() && !lone_voting.is_empty() {
        return Verdict::Disagree { voting: voting.into_iter().chain(lone_voting).collect(), down };
    }
    match (voting.is_empty(), down.len()) {
        (false, 0) => Verdict::Voting { views: voting },
        (false, _) => Verdict::Disagree { voting, down },
        (true, n) if n >= 2 => {
            if down.iter().all(|v| v.stake == 0) {
                return Verdict::Unstaked { views: down };
            }
            let balance = down.iter().filter_map(|v| v.balance).max();
            match balance {
                Some(b) if b < MIN_VOTE_BALANCE => Verdict::Broke { views: down, balance: b },
                _ => Verdict::Down { views: down },
            }
        }
        (true, n) => {
            if n == 1 {
                reasons.push(format!(
                    "{}: the only counting endpoint that shows lag {}: a second is needed",
                    down[0].url,
                    down[0].lag()
                ));
            }
            if reasons.is_empty() {
                reasons.push("no endpoint answered".into());
            }
            Verdict::Blind(reasons.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(index: usize, health: Health, slot: u64, last_vote: Option<u64>, stake: u64, balance: u64) -> EndpointRead {
        EndpointRead {
            index,
            url: format!("e{index}"),
            answer: Ok(Answered {
                health,
                slot,
                vote: last_vote.map(|last_vote| VoteAccount {
                    vote_pubkey: "V".into(),
                    node_pubkey: "N".into(),
                    activated_stake: stake,
                    last_vote,
                    root_slot: 0,
                    delinquent: false,
                }),
                balance: Some(balance),
            }),
        }
    }

    fn ok(index: usize, slot: u64, last_vote: u64) -> EndpointRead {
        read(index, Health::Ok, slot, Some(last_vote), 1_000, 10_000_000)
    }

    fn failed(index: usize) -> EndpointRead {
        EndpointRead { index, url: format!("e{index}"), answer: Err("HTTP 503".into()) }
    }

    fn name(v: &Verdict) -> &'static str {
        match v {
            Verdict::Voting { .. } => "voting",
            Verdict::Down { .. } => "down",
            Verdict::Disagree { .. } => "disagree",
            Verdict::Unstaked { .. } => "unstaked",
            Verdict::Broke { .. } => "broke",
            Verdict::Blind(_) => "blind",
        }
    }

    #[test]
    fn verdict_table() {
        let cases: Vec<(&str, Vec<EndpointRead>, &str)> = vec![
            ("all voting", vec![ok(0, 1000, 999), ok(1, 1001, 1000), ok(2, 1000, 998)], "voting"),
            ("two down at 129", vec![ok(0, 1129, 1000), ok(1, 1130, 1000)], "down"),
            ("lag exactly 128 is voting", vec![ok(0, 1128, 1000), ok(1, 1128, 1000)], "voting"),
            ("one down view alone", vec![ok(0, 1500, 1000), failed(1), failed(2)], "blind"),
            (
                "one down, two failed, one behind",
                vec![ok(0, 1500, 1000), failed(1), read(2, Health::Behind(Some(300)), 1200, Some(1000), 1, 1)],
                "blind",
            ),
            ("a frozen index disagrees", vec![ok(0, 1500, 1000), ok(1, 1500, 1499), ok(2, 1501, 1000)], "disagree"),
            (
                "a lagging endpoint is not the validator",
                vec![ok(0, 1500, 1499), ok(1, 1501, 1500), ok(2, 1100, 900)],
                "voting",
            ),
            (
                "two lagging by health do not count",
                vec![
                    read(0, Health::Behind(Some(400)), 1100, Some(900), 1, 10_000_000),
                    read(1, Health::Unhealthy("x".into()), 1100, Some(900), 1, 10_000_000),
                    ok(2, 1500, 1000),
                ],
                "blind",
            ),
            (
                "unstaked",
                vec![
                    read(0, Health::Ok, 1500, Some(1000), 0, 10_000_000),
                    read(1, Health::Ok, 1500, Some(1000), 0, 10_000_000),
                ],
                "unstaked",
            ),
            (
                "broke",
                vec![
                    read(0, Health::Ok, 1500, Some(1000), 5, 800_000),
                    read(1, Health::Ok, 1500, Some(1000), 5, 800_000),
                ],
                "broke",
            ),
            (
                "not listed anywhere",
                vec![read(0, Health::Ok, 1500, None, 0, 0), read(1, Health::Ok, 1500, None, 0, 0)],
                "blind",
            ),
            ("nothing answered", vec![failed(0), failed(1)], "blind"),
            ("an endpoint far ahead is alone", vec![ok(0, 9000, 1000), ok(1, 1500, 1499), ok(2, 1501, 1500)], "voting"),
            (
                "a lone endpoint seeing votes forbids down",
                vec![ok(0, 9000, 8999), ok(1, 1500, 1000), ok(2, 1501, 1000)],
                "disagree",
            ),
            ("two endpoints far apart", vec![ok(0, 9000, 1000), ok(1, 1500, 1000)], "blind"),
            ("a single healthy endpoint voting", vec![ok(0, 1500, 1499), failed(1)], "voting"),
        ];
        for (why, reads, want) in cases {
            let got = judge(&reads, 128);
            assert_eq!(name(&got), want, "{why}: {got:?}");
        }
    }

    #[test]
    fn blind_and_down_say_why() {
        let Verdict::Blind(why) = judge(&[ok(0, 1500, 1000), failed(1)], 128) else { panic!("blind") };
        assert!(why.contains("e1: HTTP 503") && why.contains("a second is needed"), "{why}");
        let Verdict::Down { views } = judge(&[ok(0, 1500, 1000), ok(1, 1502, 1000), ok(2, 1499, 1000)], 128) else {
            panic!("down")
        };
        assert_eq!(views.iter().map(View::lag).collect::<Vec<_>>(), vec![500, 502, 499]);
        // The balance that decides is the largest any down view reports (one endpoint's stale zero must not hide a fire).
        let mut a = ok(0, 1500, 1000);
        if let Ok(x) = &mut a.answer {
            x.balance = Some(0);
        }
        assert_eq!(name(&judge(&[a, ok(1, 1500, 1000)], 128)), "down");
    }
}
