//! `witness-trap demo --chain eos` (and `--swap producer-api`, and `--chain solana`) as an operator runs it: the incident runs to completion and its
//! narration shows the misses, the trap's decisions, the swap, the schedule and the backup producing. Asserts
//! what the output says, never how long it took.

use std::process::Command;

fn demo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_witness-trap"))
        .env_clear()
        .arg("demo")
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn the_antelope_demo_narrates_the_swap_and_the_backup_producing() {
    let out = demo(&["--chain", "eos"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let backup = text
        .lines()
        .find_map(|l| l.split("backup node key").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the backup key is named")
        .to_string();
    assert!(backup.starts_with("EOS"), "{backup}");
    assert!(text.contains("INFO trap armed producer=demoproducer chain=eos"), "{text}");
    // In the order they happen.
    let steps = [
        "primary node goes down",
        "no block from demoproducer",
        "the producer missed",
        "crossing corroborated: firing",
        "broadcasting the key swap",
        "accepted transaction",
        &format!("the producers row of demoproducer now names {backup}"),
        "includes transaction",
        "proposed with the backup key: PENDING",
        "swap confirmed",
        "finished: fired; the swap is confirmed; alerts delivered",
        "is ACTIVE",
        "signed by the BACKUP node: the producer is producing again",
        "12 of 12 blocks signed by its BACKUP node",
        "summary",
        "first missed slot → swap in block",
        "first missed slot → backup's first block",
    ];
    let mut at = 0;
    for step in steps {
        match text[at..].find(step) {
            Some(i) => at += i + step.len(),
            None => panic!("{step:?} missing (or out of order) after byte {at}:\n{text}"),
        }
    }
    let sms = text.lines().find(|l| l.contains("sms │")).expect("an SMS line");
    assert!(sms.contains("@demoproducer") && sms.contains("eos") && sms.contains(&backup), "{sms}");
    assert!(text.contains(&format!("active schedule: {backup}; SMS sent: 1")), "{text}");
}

#[test]
fn the_pause_resume_demo_pauses_the_primary_before_resuming_the_backup() {
    let out = demo(&["--chain", "eos", "--swap", "producer-api"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("INFO trap armed producer=demoproducer chain=eos"), "{text}");
    // Each voice in its own order: the narration (chain and nodes), the trap's log, the agents' log.
    let in_order = |prefix: &str, steps: &[&str]| {
        let lines: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with(prefix)).collect();
        let voice = lines.join("\n");
        let mut at = 0;
        for step in steps {
            match voice[at..].find(step) {
                Some(i) => at += i + step.len(),
                None => panic!("{prefix}: {step:?} missing (or out of order) after byte {at}:\n{text}"),
            }
        }
    };
    in_order("demo │", &["bp1's nodeos hangs", "summary"]);
    assert!(text.contains("bp1 paused: true; bp2 paused: false; double productions seen: 0; SMS sent: 1"), "{text}");
    in_order(
        "chain │",
        &["no block from demoproducer", "signed by bp2 (the BACKUP node)", "12 of 12 blocks signed by its BACKUP node"],
    );
    in_order("node │", &["bp1 (primary): producer_api pause", "bp2 (backup): producer_api RESUME"]);
    in_order("trap │", &["crossing corroborated: firing", "resumed the backup node", "finished: fired"]);
    in_order("agent │", &["action=pause node=bp1", "action=paused node=bp1", "action=resume node=bp2"]);
    assert!(text.contains("first missed slot → backup's first block"), "{text}");
    assert!(!text.contains("DOUBLE PRODUCTION"), "{text}");
    let sms = text.lines().find(|l| l.contains("sms │")).expect("an SMS line");
    assert!(sms.contains("FIRED @demoproducer eos: missed ") && sms.contains(", now producing on node:bp2"), "{sms}");
}

#[test]
fn the_pause_resume_demo_is_for_antelope_chains_only() {
    let out = demo(&["--chain", "hive", "--swap", "producer-api"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Antelope failover"));
}

#[test]
fn an_unknown_chain_is_a_usage_error() {
    let out = demo(&["--chain", "polkadot"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("eos") && err.contains("hive"), "{err}");
}

#[test]
fn the_solana_demo_moves_the_identity_and_never_runs_it_twice() {
    let out = demo(&["--chain", "solana"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    // The trap's and the agents' lines in their order, and the narration's in its own: the narration
    // samples the cluster at its own pace, so the two interleave differently from run to run.
    let trap = [
        "INFO trap armed",
        "crossing corroborated: firing",
        "action=demote node=val1",
        "demoted node=val1",
        "action=promote node=val2",
        "promoted with the staked identity",
        "finished: fired; the swap is confirmed; alerts delivered",
    ];
    let narration = [
        "val1's validator hangs",
        "val1: admin.rpc setIdentity → now runs with its junk identity",
        "val2: admin.rpc setIdentity → now runs with the STAKED identity",
        "the vote account votes again, from val2",
        "summary",
        "slots from the last vote",
        "held the staked identity, or one voted without a safe tower: 0;",
    ];
    for steps in [&trap[..], &narration[..]] {
        let mut at = 0;
        for step in steps {
            match text[at..].find(step) {
                Some(i) => at += i + step.len(),
                None => panic!("{step:?} missing (or out of order) after byte {at}:\n{text}"),
            }
        }
    }
    assert!(text.lines().any(|l| l.contains("sms │") && l.contains("FIRED") && l.contains("node:val2")), "{text}");
    assert!(!text.contains("!!!"), "no violation: {text}");
}
