//! Oracles that can fail: for every rule of the leak oracle, the case
//! runner and the stream consumption oracle, a small hand-made input that
//! breaks exactly that rule and must be reported, next to the unbroken
//! input that must pass.
//!
//! - leak oracle (`leak::check`, `leak::faithful`, `leak::strict`,
//!   `leak::within_cap`): hand-made "after" heaps, no loader involved;
//! - case runner (`case::run_case_file`): one in-memory case file, one
//!   wrong expectation per table row, on both model engines;
//! - engine comparisons (`oracle::save_agrees_with`, `load_agrees_with`,
//!   `round_trip_with`): an engine that lies about one thing;
//! - stream oracle (`stream::check_consumption`, `fuzz::stream`): a parsed
//!   real stream whose record offsets are edited one at a time.

mod case_runner;
mod comparison_rules;
mod leak_rules;
mod stream_rules;
