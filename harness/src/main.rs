use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use vmstate_harness::cli;

/// mimalloc: `check` runs about a fifth more cases per second than on
/// glibc's malloc (README, "Speed").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Property-based compatibility harness for QEMU's migration wire format.
#[derive(Parser)]
#[command(name = "vmstate-harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the property campaign: reference vs optimized codec, dialect
    /// against dialect, round trips, vmstate_check verdicts.
    Check(cli::check::CheckArgs),
    /// Print the compatibility matrix: does a stream saved in one dialect
    /// load in another, per field kind (computed from generated devices).
    Matrix {
        /// Generated devices per field kind.
        #[arg(long, default_value_t = 50)]
        cases: usize,
        #[arg(long, default_value_t = 0x5eed)]
        seed: u64,
        /// The destination before the load: fresh (a migration), live
        /// (`loadvm` into a running VM) or reset.
        #[arg(long, default_value = "fresh")]
        dest: String,
    },
    /// Add the `check --shard I/N --json FILE` summaries of one campaign
    /// and print its table.
    Merge {
        /// The shards' JSON summaries.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the dialect table: each QEMU version's facts, side by side.
    Dialects,
    /// Run case files (or directories of them); one PASS/FAIL line per case.
    Case {
        /// Case files or directories (default: corpus/vectors).
        #[arg(default_value = "corpus/vectors")]
        paths: Vec<PathBuf>,
        /// The model engine to run them on: reference or optimized.
        #[arg(long, default_value = "reference")]
        engine: String,
        /// Run them on QEMU's own C instead: the engine harness/qemu/build.sh
        /// printed. Cases of other dialects are skipped.
        #[arg(long, value_name = "ENGINE", conflicts_with = "engine")]
        qemu: Option<PathBuf>,
    },
    /// Replay the QEMU leak findings (case files whose names start with a
    /// finding); one FOUND/FAIL entry per case, with the QEMU code responsible.
    Findings {
        /// Finding case files or directories (default: corpus/findings).
        #[arg(default_value = "corpus/findings")]
        paths: Vec<PathBuf>,
        /// Confirm or refute each finding on QEMU's own C instead (with
        /// LeakSanitizer's report from a `build.sh --sanitize` engine).
        #[arg(long, value_name = "ENGINE")]
        qemu: Option<PathBuf>,
    },
    /// Parse a migration stream and print it as JSON, in the shape of
    /// QEMU's analyze-migration.py `-d state` (default) or `-d desc`.
    Analyze {
        /// The migration stream (e.g. written by `migrate file:...`).
        file: PathBuf,
        /// Print the vmdesc (the `-d desc` shape) instead of the state.
        #[arg(long, conflicts_with = "hex")]
        desc: bool,
        /// Print an annotated hex dump of one section, chosen by id,
        /// idstr or the state key such as "cpu (4)".
        #[arg(long, value_name = "SECTION")]
        hex: Option<String>,
    },
    /// Load every device section of each stream with the optimized codec
    /// and save it again: identical, different (first differing offset and
    /// field) or excluded (not a VMSD). Exit 1 on any difference.
    Reencode {
        /// Migration streams.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Dialect (default: the one of the QEMU version that wrote each
        /// stream: 10.0.2 -> qemu-10.x, 11.1.3 -> qemu-11.1).
        #[arg(long)]
        dialect: Option<vmstate_reference::Dialect>,
    },
    /// Load every device section of a stream through the reference model
    /// into destinations rebuilt from its vmdesc: ok, error, or
    /// "QEMU <version> aborts: <assertion>".
    Load(cli::reencode::LoadArgs),
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Merge { files } => exit(cli::check::merge(&files)),
        Command::Dialects => {
            print!("{}", cli::dialects::table());
            ExitCode::SUCCESS
        }
        Command::Check(args) if args.stats => exit(cli::check::stats(&args)),
        Command::Check(args) => exit(cli::check::check(&args)),
        Command::Matrix { cases, seed, dest } => {
            use vmstate_harness::generate::PreState;
            let Some(pre) = PreState::ALL.into_iter().find(|p| p.name() == dest) else {
                eprintln!("error: --dest is fresh, live or reset");
                return ExitCode::from(2);
            };
            let rows = vmstate_harness::matrix::compute(cases, seed, pre);
            print!("{}", vmstate_harness::matrix::render(&rows));
            ExitCode::SUCCESS
        }
        Command::Case {
            paths,
            engine,
            qemu,
        } => {
            let engine = match qemu {
                Some(path) => vmstate_harness::engine::open_qemu(&path),
                None => vmstate_harness::engine::model(&engine)
                    .ok_or(format!("unknown engine {engine:?} (reference, optimized)")),
            };
            match engine {
                Ok(engine) => exit(cli::case::run_cases(&paths, engine.as_ref())),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Findings { paths, qemu: None } => exit(cli::findings::run_findings(&paths)),
        Command::Findings {
            paths,
            qemu: Some(engine),
        } => exit(cli::findings::run_findings_qemu(&paths, &engine)),
        Command::Reencode { files, dialect } => {
            exit(cli::reencode::reencode_files(&files, dialect))
        }
        Command::Load(args) => exit(cli::reencode::load(&args)),
        Command::Analyze { file, desc, hex } => {
            match cli::analyze::analyze(&file, desc, hex.as_deref()) {
                Ok(out) => {
                    let mut o = std::io::stdout().lock();
                    // A closed pipe (e.g. `| head`) is not an error worth a panic.
                    let _ = o.write_all(out.as_bytes()).and_then(|()| o.flush());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
