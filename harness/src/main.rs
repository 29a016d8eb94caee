use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Property-based compatibility harness for QEMU's migration wire format.
#[derive(Parser)]
#[command(name = "vmstate-harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {}
}
