//! `check --shard I/N`: merged shard summaries equal one run's summary.

use vmstate_harness::cli::check::{CheckArgs, Summary, check};

fn run(shard: Option<(u64, u64)>, dir: &std::path::Path, name: &str) -> Summary {
    let json = dir.join(name);
    let args = CheckArgs {
        cases: 60,
        seed: 0x5eed,
        dialect: None,
        out: dir.join("failure.json"),
        jobs: Some(1),
        qemu: vec![],
        shard,
        json: Some(json.clone()),
        stats: false,
    };
    assert!(check(&args), "the campaign held");
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn merged_shards_give_the_same_table_as_one_run() {
    let dir = std::env::temp_dir().join(format!("vmstate-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let whole = run(None, &dir, "whole.json");
    let parts: Vec<Summary> = (0..3)
        .map(|i| run(Some((i, 3)), &dir, &format!("s{i}.json")))
        .collect();
    let merged = Summary::merge(&parts).unwrap();
    assert_eq!(merged.table(), whole.table());
    assert!(whole.properties.iter().all(|p| p.run == 60));
    // A missing or repeated shard is refused.
    assert!(Summary::merge(&parts[..2]).is_err());
    assert!(Summary::merge(&[parts[0].clone(), parts[0].clone(), parts[1].clone()]).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
