//! `cargo fuzz run differential`: the oracle is `vmstate_harness::fuzz::differential`.
//! Built without `--cfg fuzzing` (plain `cargo build`), it replays the
//! files given as arguments through the same oracle instead.
#![cfg_attr(fuzzing, no_main)]

use vmstate_fuzz as _; // the global allocator

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = vmstate_harness::fuzz::differential(data) {
        panic!("{e}");
    }
});

#[cfg(not(fuzzing))]
fn main() -> std::process::ExitCode {
    vmstate_harness::fuzz::replay_files("differential", std::env::args_os().skip(1))
}
