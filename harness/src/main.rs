use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vmstate_harness::case;

/// Property-based compatibility harness for QEMU's migration wire format.
#[derive(Parser)]
#[command(name = "vmstate-harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run case files (or directories of them); one PASS/FAIL line per case.
    Case {
        /// Case files or directories (default: corpus/vectors).
        #[arg(default_value = "corpus/vectors")]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Case { paths } => run_cases(&paths),
    }
}

fn run_cases(paths: &[PathBuf]) -> ExitCode {
    let mut failed = 0;
    let mut total = 0;
    for path in paths {
        let files = match case::case_files(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("FAIL {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        for file in files {
            for result in case::run_file(&file, &case::Reference) {
                println!("{result}");
                total += 1;
                failed += result.failure.is_some() as usize;
            }
        }
    }
    println!("{} passed, {failed} failed", total - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
