//! `vmstate-harness check`: the whole property campaign across cores, with
//! a progress bar, a table of cases run per property, and the first
//! failure's reproducer written as a case file.

use crate::campaign::{Ctx, Outcome, PROPERTIES};
use arbitrary::Unstructured;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use vmstate_reference::Dialect;

/// Options of `vmstate-harness check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Cases per property.
    #[arg(long, default_value_t = 10_000)]
    pub cases: u64,
    /// Seed of the campaign (case i of property p uses seed ^ hash(p, i)).
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// Generate devices in this dialect only (qemu-10.x, qemu-11.1,
    /// qemu-master, alloc-combo).
    #[arg(long)]
    pub dialect: Option<Dialect>,
    /// Where to write the first failure's reproducer.
    #[arg(long, default_value = "vmstate-harness-failure.json")]
    pub out: PathBuf,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// QEMU engines to add as third (and fourth) engines: the paths
    /// harness/qemu/build.sh prints. The campaign then runs in their
    /// dialect, and with two engines also compares the two QEMUs.
    #[arg(long = "qemu", value_name = "ENGINE")]
    pub qemu: Vec<PathBuf>,
    /// Run only shard I of N (`I/N`, 0-based): case i of every property
    /// runs in shard i mod N, so N machines run disjoint cases of the same
    /// campaign. Merge their `--json` summaries with `vmstate-harness merge`.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Write the summary (tallies per property, first failure) as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Print how often the generator makes each shape in `--cases`
    /// generated devices (the generator of the save and load properties),
    /// instead of running the campaign.
    #[arg(long)]
    pub stats: bool,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N")?;
    let (i, n): (u64, u64) = (
        i.parse().map_err(|e| format!("{e}"))?,
        n.parse().map_err(|e| format!("{e}"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// One property's tally in a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyTally {
    pub name: String,
    pub run: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// What a campaign (or one shard of it) came to; shards merge by adding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub seed: u64,
    /// Cases per property of the whole campaign.
    pub cases: u64,
    /// The shards this summary covers, as (I, N); (0, 1) for one run.
    pub shards: Vec<(u64, u64)>,
    pub engines: Vec<String>,
    pub properties: Vec<PropertyTally>,
    /// Failures: property, case seed, report.
    pub failures: Vec<(String, u64, String)>,
}

impl Summary {
    /// The table `check` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<52} {:>10} {:>10} {:>8}\n",
            "property", "cases", "skipped", "failed"
        );
        for p in &self.properties {
            out += &format!(
                "{:<52} {:>10} {:>10} {:>8}\n",
                p.name, p.run, p.skipped, p.failed
            );
        }
        out
    }

    /// Adds the shard summaries of one campaign; refuses different
    /// campaigns and overlapping or missing shards.
    pub fn merge(parts: &[Summary]) -> Result<Summary, String> {
        let first = parts.first().ok_or("no summaries")?;
        let mut out = first.clone();
        out.shards.clear();
        out.failures.clear();
        for p in &mut out.properties {
            (p.run, p.skipped, p.failed) = (0, 0, 0);
        }
        for part in parts {
            if (part.seed, part.cases, &part.engines) != (first.seed, first.cases, &first.engines) {
                return Err("summaries of different campaigns (seed, cases or engines)".into());
            }
            for shard in &part.shards {
                if out.shards.contains(shard) {
                    return Err(format!("shard {}/{} given twice", shard.0, shard.1));
                }
                out.shards.push(*shard);
            }
            if part.properties.len() != out.properties.len() {
                return Err("summaries with different properties".into());
            }
            for (o, p) in out.properties.iter_mut().zip(&part.properties) {
                if o.name != p.name {
                    return Err(format!("property {} vs {}", o.name, p.name));
                }
                o.run += p.run;
                o.skipped += p.skipped;
                o.failed += p.failed;
            }
            out.failures.extend(part.failures.iter().cloned());
        }
        let n = out.shards.first().map_or(1, |s| s.1);
        let mut have: Vec<u64> = out.shards.iter().map(|s| s.0).collect();
        have.sort();
        if out.shards.iter().any(|s| s.1 != n) || have != (0..n).collect::<Vec<_>>() {
            return Err(format!("shards {:?} do not cover 0..{n}", out.shards));
        }
        out.shards = vec![(0, 1)];
        Ok(out)
    }
}

/// `vmstate-harness merge FILE...`: adds shard summaries, prints the table.
pub fn merge(paths: &[PathBuf]) -> bool {
    let parts: Result<Vec<Summary>, String> = paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    match parts.and_then(|p| Summary::merge(&p)) {
        Ok(s) => {
            print!("{}", s.table());
            for (property, seed, report) in &s.failures {
                println!("FAIL {property} (case seed {seed:#x})\n{report}");
            }
            s.failures.is_empty()
        }
        Err(e) => {
            println!("FAIL {e}");
            false
        }
    }
}

/// `check --stats`: the coverage table of the generator.
pub fn stats(args: &CheckArgs) -> bool {
    let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
    let mut made = 0u64;
    for i in 0..args.cases {
        let mut rng = StdRng::seed_from_u64(case_seed(args.seed, 0, i));
        let len = rng.random_range(0..4096);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let mut u = Unstructured::new(&bytes);
        let case = match args.dialect {
            Some(d) => crate::generate::generate(&mut u, d),
            None => <crate::generate::GenCase as arbitrary::Arbitrary>::arbitrary(&mut u),
        };
        let Ok(case) = case else { continue };
        made += 1;
        for s in case.shapes {
            *counts.entry(s).or_default() += 1;
        }
    }
    println!("{:<52} {:>8} {:>8}", "shape", "cases", "share");
    let mut missing = 0;
    for shape in crate::generate::SHAPES {
        let n = counts.get(shape).copied().unwrap_or(0);
        missing += (n == 0) as usize;
        let share = 100.0 * n as f64 / made.max(1) as f64;
        println!("{shape:<52} {n:>8} {share:>7.1}%");
    }
    println!(
        "{made} devices generated (seed {:#x}); {missing} shapes never made",
        args.seed
    );
    missing == 0
}

#[derive(Default)]
struct Tally {
    run: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
}

/// The seed of case `i` of property `p` (SplitMix64 over the campaign seed).
fn case_seed(seed: u64, p: usize, i: u64) -> u64 {
    let mut z = seed ^ ((p as u64) << 48) ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs one case: random bytes of random length through the generators.
fn run_case(p: usize, seed: u64, ctx: &Ctx) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed);
    let len = rng.random_range(0..4096);
    let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
    let mut u = Unstructured::new(&bytes);
    (PROPERTIES[p].run)(&mut u, ctx).unwrap_or(Outcome::Skip)
}

/// The engines of one worker: the two models, then each `--qemu` engine
/// (a driver process per worker), in the QEMU engines' dialect.
fn worker_ctx(args: &CheckArgs) -> Result<Ctx, String> {
    let mut ctx = Ctx::models();
    ctx.dialect = args.dialect;
    for path in &args.qemu {
        let engine = crate::engine::open_qemu(path)?;
        let d = engine.dialects()[0];
        match ctx.dialect {
            Some(other) if other != d => {
                return Err(format!(
                    "{} runs {d}, but the campaign runs {other}",
                    engine.name()
                ));
            }
            _ => ctx.dialect = Some(d),
        }
        ctx.engines.push(engine);
    }
    Ok(ctx)
}

/// Runs the campaign; returns whether every property held.
pub fn check(args: &CheckArgs) -> bool {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let tallies: Vec<Tally> = PROPERTIES.iter().map(|_| Tally::default()).collect();
    match worker_ctx(args) {
        Err(e) => {
            println!("FAIL cannot start the engines: {e}");
            return false;
        }
        Ok(ctx) => {
            let names: Vec<String> = ctx.engines.iter().map(|e| e.name()).collect();
            let dialect = ctx
                .dialect
                .map_or("every dialect".into(), |d| d.to_string());
            println!("engines: {} ({dialect})", names.join(", "));
        }
    }
    let started = std::time::Instant::now();
    let first_failure = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let next = AtomicU64::new(0);
    let (shard, shards) = args.shard.unwrap_or((0, 1));
    // This shard's cases of each property: i = shard, shard + N, ...
    let per_property = args.cases.saturating_sub(shard).div_ceil(shards);
    let total = per_property * PROPERTIES.len() as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} cases ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let Ok(ctx) = worker_ctx(args) else {
                    return;
                };
                // Cases are handed out interleaved across properties, so a
                // stopped campaign has run every property about as much.
                while !stop.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= total {
                        break;
                    }
                    let (p, i) = (
                        (k % PROPERTIES.len() as u64) as usize,
                        shard + (k / PROPERTIES.len() as u64) * shards,
                    );
                    let seed = case_seed(args.seed, p, i);
                    let t = &tallies[p];
                    match run_case(p, seed, &ctx) {
                        Outcome::Pass => {}
                        Outcome::Skip => {
                            t.skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Fail(f) => {
                            t.failed.fetch_add(1, Ordering::Relaxed);
                            let mut first = first_failure.lock().unwrap_or_else(|e| e.into_inner());
                            if first.is_none() {
                                *first = Some((p, seed, f));
                            }
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    t.run.fetch_add(1, Ordering::Relaxed);
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();

    let first = first_failure
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let summary = Summary {
        seed: args.seed,
        cases: args.cases,
        shards: vec![(shard, shards)],
        engines: worker_ctx(args)
            .map(|c| c.engines.iter().map(|e| e.name()).collect())
            .unwrap_or_default(),
        properties: PROPERTIES
            .iter()
            .zip(&tallies)
            .map(|(p, t)| PropertyTally {
                name: p.name.into(),
                run: t.run.load(Ordering::Relaxed),
                skipped: t.skipped.load(Ordering::Relaxed),
                failed: t.failed.load(Ordering::Relaxed),
            })
            .collect(),
        failures: first
            .as_ref()
            .map(|(p, seed, f)| (PROPERTIES[*p].name.to_string(), *seed, f.report.clone()))
            .into_iter()
            .collect(),
    };
    print!("{}", summary.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json) {
            println!("could not write {}: {e}", path.display());
        }
    }
    let ran: u64 = tallies.iter().map(|t| t.run.load(Ordering::Relaxed)).sum();
    println!(
        "{ran} cases in {elapsed:.1} s: {:.0} cases/s on {jobs} worker(s)",
        ran as f64 / elapsed.max(1e-9)
    );
    let Some((p, seed, failure)) = first else {
        println!(
            "all {} properties held (seed {:#x})",
            PROPERTIES.len(),
            args.seed
        );
        return true;
    };
    let report: String = failure
        .report
        .lines()
        .take(80)
        .collect::<Vec<_>>()
        .join("\n");
    println!(
        "\nFAIL {} (case seed {seed:#x})\n{report}",
        PROPERTIES[p].name
    );
    let reproducer = match &failure.case {
        Some(case) => serde_json::to_string_pretty(case).unwrap_or_default(),
        None => failure.report.clone(),
    };
    match std::fs::write(&args.out, reproducer) {
        Ok(()) => println!("reproducer written to {}", args.out.display()),
        Err(e) => println!("could not write {}: {e}", args.out.display()),
    }
    false
}
