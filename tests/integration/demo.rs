//! `witness-trap demo --chain eos` as an operator runs it: the Antelope incident runs to completion and its
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
fn an_unknown_chain_is_a_usage_error() {
    let out = demo(&["--chain", "solana"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("eos") && err.contains("hive"), "{err}");
}
