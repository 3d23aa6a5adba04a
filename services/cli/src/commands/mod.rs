//! One module per subcommand; each exposes `Args` and `run`.

pub mod scan;
pub mod threshold;
