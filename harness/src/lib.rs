//! vmstate-harness: optimized codec, generators, oracles, the migration
//! stream parser and the `vmstate-harness` CLI.
pub mod stream;
