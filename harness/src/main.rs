use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use vmstate_harness::stream;

/// Property-based compatibility harness for QEMU's migration wire format.
#[derive(Parser)]
#[command(name = "vmstate-harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
}

fn analyze(file: &PathBuf, desc: bool, hex: Option<&str>) -> Result<String, String> {
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let opts = stream::Options {
        annotate: hex.is_some(),
    };
    let s = stream::parse_with(&data, &opts).map_err(|e| format!("{}: {e}", file.display()))?;
    if let Some(sel) = hex {
        let ids = stream::hexdump::select(&s, sel);
        if ids.is_empty() {
            return Err(format!("{}: no section {sel:?}", file.display()));
        }
        return Ok(stream::hexdump::dump(&s, &ids));
    }
    let mut out = if desc {
        let json = stream::desc_json(&s).map_err(|e| format!("{}: {e}", file.display()))?;
        stream::to_python_json(&json)
    } else {
        let mut out = String::with_capacity(data.len() / 2);
        stream::write_state(&s, &mut out);
        out
    };
    out.push('\n');
    // Freeing the parsed tree value by value is wasted work right before
    // the process exits.
    std::mem::forget(s);
    Ok(out)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Analyze { file, desc, hex } => match analyze(&file, desc, hex.as_deref()) {
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
        },
    }
}
