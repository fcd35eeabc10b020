//! Solana validators end to end: the simulated cluster (`solana-sim`: three RPC endpoints, two validators
//! with Agave-shaped admin sockets), the real `solana-admin` agent in front of each, the real trap
//! (`CHAIN=solana`). The cluster's checker runs on every slot: no test may ever see two running validators
//! with the staked identity, or one voting without a safe tower.
//!
//! Covered: a fire when the validator stops voting (tower moved, one FIRED SMS, skipped leader slots
//! reported); no fire for each "not when" (endpoints disagree, endpoints behind, one healthy endpoint, a
//! broke identity, an unstaked account); promotion orders under failures drawn from a seed (primary host
//! gone, primary validator down but agent up, backup agent killed mid-request, backup refusing for a
//! while, `UNREACHABLE_PRIMARY=refuse`); a replayed request refused; a restart mid-promotion finishing the
//! same promotion.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use graphene_sim::SmsSink;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use solana_sim::{AdminFault, Behaviour};
use tokio_util::sync::CancellationToken;
use witness_trap::config::vars as v;
use witness_trap::demo_solana::stage::{Stage, StageOptions, NODES};
use witness_trap::trap::state::{AnyState, Outcome, Phase};

use crate::support::run;

const SID: &str = "ACsolana000000000000000000000000000";
const TOKEN: &str = "solana-token-0123456789abcdef";

struct World {
    stage: Stage,
    sms: SmsSink,
    state_file: PathBuf,
    vars: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

async fn world(extra: &[(&str, &str)]) -> World {
    world_of(2, extra).await
}

async fn world_of(validators: usize, extra: &[(&str, &str)]) -> World {
    let options = StageOptions { admin_timeout: Duration::from_secs(1), validators, ..Default::default() };
    let stage = Stage::start(options).await.expect("stage");
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.expect("sms");
    let dir = tempfile::tempdir().expect("dir");
    let state_file = dir.path().join("state.json");
    let mut vars = stage.vars(&state_file).with(v::FIRE_TIMEOUT_SECS, 300).with_twilio(
        sms.url(),
        SID,
        TOKEN,
        "+15005550006",
        "+14155550123",
    );
    for (k, val) in extra {
        vars = vars.with(k, *val);
    }
    World { stage, sms, state_file, vars: vars.into_map(), _dir: dir }
}

impl World {
    fn spawn(&self) -> (tokio::task::JoinHandle<witness_trap::cli::ExitStatus>, CancellationToken) {
        let stop = CancellationToken::new();
        let (vars, clock, s) = (self.vars.clone(), self.stage.clock.clone(), stop.clone());
        (tokio::spawn(async move { run(&vars, clock, s, true).await }), stop)
    }

    fn state(&self) -> Option<AnyState> {
        witness_trap::trap::state::read_file(&self.state_file).ok().flatten()
    }

    /// Wait until the state is what `what` wants, checking the cluster's safety on every step.
    async fn wait_state(&self, what: impl Fn(&AnyState) -> bool) -> AnyState {
        for _ in 0..3000 {
            self.assert_safe();
            if let Some(s) = self.state() {
                if what(&s) {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the state never became what was expected: {:?}", self.state().map(|s| s.phase.name().to_string()))
    }

    fn assert_safe(&self) {
        let violations = self.stage.cluster.violations();
        assert!(violations.is_empty(), "safety violated: {violations:?}");
        assert!(self.stage.cluster.holders().len() <= 1, "two holders: {:?}", self.stage.cluster.holders());
    }

    /// Let `slots` slots pass, checking safety all along.
    async fn for_slots(&self, slots: u64) {
        let until = self.stage.cluster.slot() + slots;
        while self.stage.cluster.slot() < until {
            self.assert_safe();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn fired_sms(&self) -> Vec<String> {
        self.sms.messages().into_iter().map(|m| m.body).filter(|b| b.contains("FIRED")).collect()
    }

    fn all_sms(&self) -> Vec<String> {
        self.sms.messages().into_iter().map(|m| m.body).collect()
    }

    async fn armed(&self) {
        self.wait_state(|s| s.phase.name() == "armed").await;
    }

    async fn fired(&self) -> AnyState {
        self.wait_state(|s| matches!(s.phase, Phase::Fired { .. })).await
    }
}

fn swapped(s: &AnyState) -> bool {
    matches!(&s.phase, Phase::Fired { outcome: Outcome::Swapped { .. }, .. })
}

fn target_from(s: &AnyState) -> (String, Option<String>) {
    match &s.phase {
        Phase::Fired { target, from, .. } => (target.clone(), from.clone()),
        other => panic!("not fired: {}", other.name()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_that_stops_voting_is_failed_over_once_with_its_tower() {
    // TOWER_SAFE_SLOTS far above what the promotion takes, even on a loaded machine: voting before it
    // proves the tower moved (the trap did not wait it out).
    let w = world(&[(v::TOWER_SAFE_SLOTS, "2000"), (v::FIRE_TIMEOUT_SECS, "1200")]).await;
    let (trap, _stop) = w.spawn();
    w.armed().await;
    let staked = w.stage.cluster.staked().pubkey();
    assert_eq!(w.stage.cluster.holders(), vec![NODES[0].to_string()]);
    w.for_slots(20).await;
    let hung_at = w.stage.cluster.slot();
    w.stage.validators[0].stall(true);
    let last_vote = w.stage.cluster.last_vote().expect("voted");
    let fired = w.fired().await;
    assert!(swapped(&fired), "{:?}", fired.phase.name());
    assert_eq!(target_from(&fired), ("node:val2".into(), Some("node:val1".into())));
    assert_eq!(w.stage.cluster.holders(), vec![NODES[1].to_string()]);
    assert_eq!(w.stage.validators[1].identity().as_deref(), Some(staked.as_str()));
    assert_ne!(w.stage.validators[0].identity().as_deref(), Some(staked.as_str()), "the primary demoted");
    let first = w.stage.cluster.first_vote_after(NODES[1], hung_at).expect("the backup votes");
    assert!(first > last_vote + 128, "not before the lag passed the threshold: last {last_vote}, first {first}");
    // The tower moved with the identity: the backup voted within the lockout window without a violation.
    assert!(first < last_vote + 2000, "it did not need to wait the tower-safe slots: {}", first - last_vote);
    assert_eq!(trap.await.expect("trap"), witness_trap::cli::ExitStatus::Ok);
    w.for_slots(40).await;
    assert_eq!(w.fired_sms().len(), 1, "one FIRED SMS: {:?}", w.all_sms());
    assert!(w.all_sms().iter().any(|b| b.contains("skipped")), "skipped leader slots reported: {:?}", w.all_sms());
    // The primary recovering does not vote again: it runs with its junk identity.
    w.stage.validators[0].stall(false);
    w.for_slots(40).await;
}

/// Run the trap for `slots` slots after arming, with `fault` applied; it must stay armed, the primary holding.
async fn no_fire(extra: &[(&str, &str)], fault: impl FnOnce(&World), expect_alert: Option<&str>) {
    let w = world(extra).await;
    let (_trap, stop) = w.spawn();
    w.armed().await;
    fault(&w);
    w.for_slots(700).await;
    let s = w.state().expect("state");
    assert_eq!(s.phase.name(), "armed", "it must not fire");
    assert_eq!(w.stage.cluster.holders().len(), 1);
    assert!(w.fired_sms().is_empty());
    if let Some(text) = expect_alert {
        assert!(w.all_sms().iter().any(|b| b.contains(text)), "an alert saying {text:?}: {:?}", w.all_sms());
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fire_when_the_endpoints_disagree() {
    // Two indexes frozen (they show the vote account silent), one honest: the validator votes.
    no_fire(
        &[],
        |w| {
            w.stage.endpoints[0].set(Behaviour::FrozenVotes);
            w.stage.endpoints[1].set(Behaviour::FrozenVotes);
        },
        Some("disagree"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fire_when_the_lag_is_the_endpoints_own() {
    // Two endpoints far behind (getHealth -32005) and the validator down: one healthy view is not two.
    no_fire(
        &[],
        |w| {
            w.stage.endpoints[0].set(Behaviour::Behind(400));
            w.stage.endpoints[1].set(Behaviour::Down);
            w.stage.validators[0].stall(true);
        },
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fire_when_the_identity_cannot_pay_for_votes() {
    no_fire(
        &[],
        |w| {
            w.stage.cluster.set_identity_balance(100_000);
            w.stage.validators[0].stall(true);
        },
        Some("lamports"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fire_when_the_vote_account_is_unstaked() {
    no_fire(
        &[],
        |w| {
            w.stage.cluster.set_stake(0);
            w.stage.validators[0].stall(true);
        },
        Some("unstaked"),
    )
    .await;
}

/// What happens to the primary's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Primary {
    /// The validator hangs (alive, holding the staked identity, not voting); its agent answers.
    Hangs,
    /// The validator crashed; its agent answers (and cannot reach the admin socket).
    DownAgentUp,
    /// The whole host is gone: validator and agent.
    HostGone,
    /// The validator hangs, and its agent dies in the middle of the demotion (then comes back).
    AgentKilledMidDemote,
    /// The validator hangs and its tower file is gone: demoted, but nothing to hand over.
    HangsWithoutTower,
}

/// What happens to the backup's side while it is promoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backup {
    Fine,
    /// The validator refuses set-identity for a while.
    Refusing,
    /// Its agent dies in the middle of the promotion, then comes back.
    AgentKilledMidRequest,
}

/// Wait until validator `i` has received `n` more admin calls than `before`, checking safety.
async fn admin_calls_reach(w: &World, i: usize, before: usize, n: usize) {
    for _ in 0..6000 {
        w.assert_safe();
        if w.stage.validators[i].admin_calls().len() >= before + n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("validator {i} never got {n} more admin calls");
}

/// One failover under `primary` and `backup` failures, their order and moments drawn from `seed`; the
/// cluster's checker runs at every step (two staked validators, or a vote without a safe tower, fail it).
async fn promotion(primary: Primary, backup: Backup, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let why = format!("seed {seed}, primary {primary:?}, backup {backup:?}");
    let mut w = world(&[]).await;
    let (trap, _stop) = w.spawn();
    w.armed().await;
    w.for_slots(rng.gen_range(5..60)).await;
    let at = w.stage.cluster.slot();
    // The backup's fault first or the primary's first, as the seed says.
    let backup_first = rng.gen_bool(0.5);
    let backup_fault = match backup {
        Backup::Fine => AdminFault::None,
        Backup::Refusing => AdminFault::Refuse("simulated: not caught up".into()),
        Backup::AgentKilledMidRequest => AdminFault::Delay(Duration::from_millis(rng.gen_range(100..500))),
    };
    let backup_calls = w.stage.validators[1].admin_calls().len();
    if backup_first {
        w.stage.validators[1].set_admin_fault(backup_fault.clone());
    }
    let primary_calls = w.stage.validators[0].admin_calls().len();
    match primary {
        Primary::Hangs => w.stage.validators[0].stall(true),
        Primary::DownAgentUp => w.stage.validators[0].crash(),
        Primary::HostGone => {
            w.stage.stop_agent(0);
            w.stage.validators[0].crash();
        }
        Primary::AgentKilledMidDemote => {
            w.stage.validators[0].set_admin_fault(AdminFault::Delay(Duration::from_millis(rng.gen_range(100..500))));
            w.stage.validators[0].stall(true);
        }
        Primary::HangsWithoutTower => {
            w.stage.validators[0].stall(true);
            // Let the last vote's tower be written, then lose it.
            w.for_slots(2).await;
            let tower = solana_sim::tower::path(&w.stage.validators[0].ledger(), &w.stage.cluster.staked().pubkey());
            std::fs::remove_file(&tower).expect("tower file");
        }
    }
    let last_vote = w.stage.cluster.last_vote().expect("voted");
    if !backup_first {
        w.for_slots(rng.gen_range(0..100)).await;
        w.stage.validators[1].set_admin_fault(backup_fault);
    }
    if primary == Primary::AgentKilledMidDemote {
        // The demotion's contactInfo and setIdentity reach the validator: kill its agent in the middle.
        admin_calls_reach(&w, 0, primary_calls, 2).await;
        w.stage.stop_agent(0);
        w.for_slots(rng.gen_range(10..150)).await;
        w.stage.validators[0].set_admin_fault(AdminFault::None);
        w.stage.start_agent(0).await.expect("agent back");
    }
    match backup {
        Backup::Fine => {}
        Backup::Refusing => {
            admin_calls_reach(&w, 1, backup_calls, 2).await;
            w.for_slots(rng.gen_range(20..100)).await;
            w.stage.validators[1].set_admin_fault(AdminFault::None);
        }
        Backup::AgentKilledMidRequest => {
            // Killed once its validator has received the promotion's setIdentity.
            for _ in 0..6000 {
                w.assert_safe();
                if w.stage.validators[1].admin_calls().iter().skip(backup_calls).any(|c| c == "setIdentity") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            w.stage.stop_agent(1);
            w.for_slots(rng.gen_range(10..80)).await;
            w.stage.validators[1].set_admin_fault(AdminFault::None);
            w.stage.start_agent(1).await.expect("agent back");
        }
    }
    let fired = w.fired().await;
    assert!(swapped(&fired), "{why}: {:?}", fired.phase);
    assert_eq!(w.stage.cluster.holders(), vec![NODES[1].to_string()], "{why}");
    let first = w.stage.cluster.first_vote_after(NODES[1], at).expect("the backup votes");
    assert!(first > last_vote + 128, "{why}: not before the lag passed MAX_VOTE_LAG_SLOTS");
    if matches!(primary, Primary::HostGone | Primary::DownAgentUp | Primary::HangsWithoutTower) {
        // No tower could be moved: the backup votes only past the tower-safe slots.
        assert!(first >= last_vote + 200, "{why}: voted {} slots after the last vote", first - last_vote);
    }
    assert_eq!(trap.await.expect("trap"), witness_trap::cli::ExitStatus::Ok, "{why}");
    // Alerts are delivered beside the trap's loop: read them once it has finished.
    w.for_slots(30).await;
    if matches!(primary, Primary::HostGone | Primary::DownAgentUp) {
        assert!(w.all_sms().iter().any(|b| b.contains("TOWER_SAFE_SLOTS")), "{why}: told: {:?}", w.all_sms());
    }
    if backup == Backup::Refusing {
        assert!(w.all_sms().iter().any(|b| b.contains("promotion")), "{why}: alerted: {:?}", w.all_sms());
    }
    assert_eq!(w.fired_sms().len(), 1, "{why}: {:?}", w.all_sms());
}

/// A seed for a scenario, printed so a failure can be replayed (`SOLANA_SEED=N`).
fn seed() -> u64 {
    let s = std::env::var("SOLANA_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(rand::random::<u64>() % 1_000_000);
    eprintln!("promotion seed: {s}");
    s
}

/// Every primary failure once, each with a backup failure drawn from the seed.
async fn scenarios(primaries: &[Primary]) {
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (k, p) in primaries.iter().enumerate() {
        let b = [Backup::Fine, Backup::Refusing, Backup::AgentKilledMidRequest][rng.gen_range(0..3)];
        promotion(*p, b, seed.wrapping_add(k as u64)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_with_the_primary_unreachable_wait_the_tower_safe_slots() {
    scenarios(&[Primary::HostGone, Primary::DownAgentUp]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_with_the_primary_hung_move_its_tower() {
    scenarios(&[Primary::Hangs, Primary::AgentKilledMidDemote]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_without_a_tower_is_waited_for() {
    promotion(Primary::HangsWithoutTower, Backup::Fine, seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_survives_the_backup_agent_killed_mid_request() {
    promotion(Primary::Hangs, Backup::AgentKilledMidRequest, seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_retries_a_refusing_backup_and_alerts() {
    promotion(Primary::DownAgentUp, Backup::Refusing, seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_never_promotes_without_a_confirmed_demotion() {
    let mut w = world(&[(v::UNREACHABLE_PRIMARY, "refuse"), (v::FIRE_TIMEOUT_SECS, "120")]).await;
    let (trap, _stop) = w.spawn();
    w.armed().await;
    w.stage.stop_agent(0);
    w.stage.validators[0].crash();
    let fired = w.fired().await;
    assert!(!swapped(&fired), "refused");
    assert!(w.stage.cluster.holders().is_empty(), "nothing promoted");
    assert!(!w.stage.validators[1].admin_calls().iter().any(|c| c == "setIdentity"), "the backup never asked");
    assert_eq!(trap.await.expect("trap"), witness_trap::cli::ExitStatus::SwapFailed);
    assert!(w.all_sms().iter().any(|b| b.contains("UNREACHABLE_PRIMARY")), "{:?}", w.all_sms());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_promotion_finishes_the_same_promotion() {
    let w = world(&[]).await;
    let (trap, stop) = w.spawn();
    w.armed().await;
    // The backup's validator hangs on set-identity: the promotion cannot complete.
    w.stage.validators[1].set_admin_fault(AdminFault::Hang);
    w.stage.validators[0].stall(true);
    let firing = w.wait_state(|s| matches!(&s.phase, Phase::Firing { attempts, .. } if !attempts.is_empty())).await;
    let Phase::Firing { target, .. } = &firing.phase else { unreachable!() };
    assert_eq!(target, "node:val2");
    // The trap dies (as a killed process: no clean-up), mid-promotion.
    trap.abort();
    let _ = trap.await;
    drop(stop);
    assert_eq!(w.state().expect("state").phase.name(), "firing", "killed mid-promotion");
    w.stage.validators[1].set_admin_fault(AdminFault::None);
    let (trap, _stop) = w.spawn();
    let fired = w.fired().await;
    assert!(swapped(&fired));
    assert_eq!(target_from(&fired), ("node:val2".into(), Some("node:val1".into())));
    assert_eq!(w.stage.cluster.holders(), vec![NODES[1].to_string()]);
    assert_eq!(trap.await.expect("trap"), witness_trap::cli::ExitStatus::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_promotion_is_refused_and_changes_nothing() {
    use witness_trap::agent::{AgentClient, ClientError, ClientOptions, Request, SignedRequest};
    let w = world(&[]).await;
    let clock = w.stage.clock.clone();
    let url = format!("http://{}", w.stage.agents[1].addr);
    let client =
        AgentClient::new(&url, w.stage.trap_key.clone(), clock.clone(), ClientOptions::default()).expect("client");
    let now = u64::try_from(clock.now().as_millis()).expect("ms");
    // A request to demote the backup (harmless: it holds its junk identity), sent twice.
    let request = Request {
        action: witness_trap::agent::Action::Demote,
        node: NODES[1].into(),
        nonce: witness_trap::agent::request::fresh_nonce(),
        // The longest validity an agent accepts (the stage's clock runs 20× the wall's).
        expires_at: now + witness_trap::agent::request::MAX_VALIDITY_MS,
        tower: None,
    };
    let signed = SignedRequest::sign(&request, &w.stage.trap_key);
    client.send_signed(&signed, &request).await.expect("first");
    let calls = w.stage.validators[1].admin_calls().len();
    match client.send_signed(&signed, &request).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "replay"),
        other => panic!("the replay must be refused: {other:?}"),
    }
    assert_eq!(w.stage.validators[1].admin_calls().len(), calls, "nothing reached the validator");
    w.assert_safe();
}

/// `check` on this world: Ok(summary) or the problems' variables and messages.
async fn check(w: &World, vars: &HashMap<String, String>) -> Result<String, Vec<(String, String)>> {
    let settings = witness_trap::config::load(vars).expect("load");
    match witness_trap::service::check(settings, w.stage.clock.clone()).await {
        Ok(r) => Ok(r.summary.unwrap_or_default()),
        Err(f) => match f.error {
            witness_trap::service::ServiceError::Config(r)
            | witness_trap::service::ServiceError::ChainUnavailable(r) => {
                Err(r.problems.into_iter().map(|p| (p.var, p.message)).collect())
            }
            other => Err(vec![("?".into(), other.to_string())]),
        },
    }
}

fn named(problems: &[(String, String)], var: &str, text: &str) -> bool {
    problems.iter().any(|(v, m)| v == var && m.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_arming_checks_name_what_is_wrong() {
    let mut w = world(&[]).await;
    let summary = check(&w, &w.vars).await.expect("a good stage passes");
    assert!(summary.contains("val1 holds identity") && summary.contains("to val2"), "{summary}");
    // The wrong identity for the vote account.
    let mut vars = w.vars.clone();
    vars.insert(v::IDENTITY.into(), solana_sim::Keypair::generate().pubkey());
    let p = check(&w, &vars).await.expect_err("wrong identity");
    assert!(named(&p, v::VOTE_ACCOUNT, "not IDENTITY"), "{p:?}");
    // An endpoint of another cluster.
    w.stage.endpoints[2].set(Behaviour::WrongGenesis(solana_sim::keys::random_hash()));
    let p = check(&w, &w.vars).await.expect_err("wrong genesis");
    assert!(named(&p, v::SOLANA_CLUSTER, "genesis hash"), "{p:?}");
    w.stage.endpoints[2].set(Behaviour::Honest);
    // A backup's agent unreachable.
    w.stage.stop_agent(1);
    let p = check(&w, &w.vars).await.expect_err("agent down");
    assert!(named(&p, v::AGENT_URLS, "val2"), "{p:?}");
    w.stage.start_agent(1).await.expect("agent back");
    // The validator already down: arming would fire at once.
    w.stage.validators[0].stall(true);
    w.for_slots(140).await;
    let p = check(&w, &w.vars).await.expect_err("down");
    assert!(named(&p, v::VOTE_ACCOUNT, "not voting now"), "{p:?}");
    w.stage.validators[0].stall(false);
    w.for_slots(5).await;
    assert!(check(&w, &w.vars).await.is_ok(), "back to voting");
    assert_eq!(w.state().map(|s| s.phase.name().to_string()), None, "check arms nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_with_the_staked_identity_are_refused_before_arming() {
    use witness_trap::agent::{AgentClient, ClientOptions};
    let w = world(&[]).await;
    // Someone promoted the backup by hand while the primary still votes.
    let url = format!("http://{}", w.stage.agents[1].addr);
    let client = AgentClient::new(&url, w.stage.trap_key.clone(), w.stage.clock.clone(), ClientOptions::default())
        .expect("client");
    client.promote(NODES[1], None).await.expect("promoted by hand");
    let p = check(&w, &w.vars).await.expect_err("two holders");
    assert!(named(&p, v::AGENT_URLS, "val1, val2"), "{p:?}");
    let (trap, _stop) = w.spawn();
    assert_eq!(trap.await.expect("trap"), witness_trap::cli::ExitStatus::Config, "nothing armed");
    assert!(w.state().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_lag_and_the_skipped_leader_slots() {
    let w = world(&[(v::CONFIRMATIONS, "100")]).await;
    let (_trap, stop) = w.spawn();
    w.armed().await;
    w.stage.validators[0].stall(true);
    for _ in 0..3000 {
        let note = crate::support::last_poll(&w.state_file).and_then(|p| p.watch).unwrap_or_default();
        if note.contains("NOT VOTING") && note.contains("skipped") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settings = witness_trap::config::load(&w.vars).expect("load");
    let report = witness_trap::service::status(settings, w.stage.clock.clone()).await.expect("status");
    let text = report.lines.join("\n");
    assert!(text.contains("NOT VOTING") && text.contains("leader slots"), "{text}");
    assert_eq!(w.state().expect("state").phase.name(), "armed", "skipped slots never fire");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_binary_drives_a_validator_from_its_variables() {
    use witness_trap::agent::{AgentClient, ClientOptions};
    let w = world(&[]).await;
    let ledger = w.stage.dir.join(NODES[1]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut agent = crate::support::bin()
        .arg("agent")
        .env(v::AGENT_LISTEN, format!("127.0.0.1:{port}"))
        .env(v::AGENT_TRUSTED_KEYS, w.stage.trap_key.public_key().to_string())
        .env(v::AGENT_NODE_NAME, "val2-bin")
        .env(v::AGENT_ACTION, "solana-admin")
        .env(v::LEDGER_PATH, &ledger)
        .env(v::JUNK_IDENTITY_FILE, ledger.join("junk-identity.json"))
        .env(v::STAKED_IDENTITY_FILE, ledger.join("staked-identity.json"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("agent binary");
    let client = AgentClient::new(
        &format!("http://127.0.0.1:{port}"),
        w.stage.trap_key.clone(),
        w.stage.clock.clone(),
        ClientOptions::default(),
    )
    .expect("client");
    let mut identity = Err(String::new());
    for _ in 0..200 {
        identity = client.identity("val2-bin").await.map_err(|e| e.to_string());
        if identity.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = agent.kill();
    let mut stderr = String::new();
    if let Some(mut e) = agent.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let _ = agent.wait();
    assert_eq!(identity, Ok(w.stage.validators[1].identity().expect("running")), "{stderr}");
    assert!(stderr.contains("solana admin socket"), "its backend is logged: {stderr}");
    // Neither keypair's bytes appear in its output.
    for file in ["junk-identity.json", "staked-identity.json"] {
        let bytes = std::fs::read_to_string(ledger.join(file)).expect("keypair");
        let first: String = bytes.chars().take(20).collect();
        assert!(!stderr.contains(&first), "{file} leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_backups_move_down_the_agents_and_never_back() {
    let w = world_of(3, &[]).await;
    let (trap, _stop) = w.spawn();
    w.armed().await;
    w.stage.validators[0].stall(true);
    // The first fire moves the identity to val2, and the trap goes on guarding it with val3 next.
    w.wait_state(|s| s.phase.name() == "armed" && s.roles.as_ref().is_some_and(|r| r.current == "node:val2")).await;
    assert_eq!(w.stage.cluster.holders(), vec![NODES[1].to_string()]);
    w.for_slots(20).await;
    w.stage.validators[1].stall(true);
    let fired = w.fired().await;
    assert!(swapped(&fired));
    assert_eq!(target_from(&fired), ("node:val3".into(), Some("node:val2".into())));
    assert_eq!(w.stage.cluster.holders(), vec![NODES[2].to_string()], "never back to val1");
    assert_eq!(trap.await.expect("trap"), witness_trap::cli::ExitStatus::Ok);
    assert_eq!(w.fired_sms().len(), 2, "{:?}", w.all_sms());
    w.assert_safe();
}
