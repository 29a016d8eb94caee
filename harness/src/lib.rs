//! vmstate-harness: optimized codec, generators, oracles, the migration
//! stream parser and the `vmstate-harness` CLI.

pub mod campaign;
pub mod case;
pub mod cli;
pub mod codec;
pub mod engine;
pub mod fuzz;
pub mod generate;
pub mod leak;
pub mod matrix;
pub mod oracle;
pub mod stream;
