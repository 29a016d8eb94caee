//! The subcommands of the `vmstate-harness` binary, one module each.

pub mod analyze;
pub mod case;
pub mod check;
pub mod findings;
