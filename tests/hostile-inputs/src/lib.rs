//! The hostile-input suite of issue #13: at least 10,000 generated inputs
//! at every edge of the real intake, collector and worker processes, each
//! of which must be refused with a clear client error, with no panic in
//! any log, every process still serving afterwards, and nothing queued or
//! stored. The suite itself is `tests/hostile_inputs.rs`; this crate holds
//! the generators, one module per edge's kind of input, and the tally.
//!
//! Generation is deterministic: every input is a function of the run's
//! seed (printed; `HOSTILE_SEED` overrides it) and its index, so a failure
//! printed with its seed and input reproduces.

pub mod bad_tokens;
pub mod grpc_requests;
pub mod http_requests;
pub mod port_bytes;
pub mod raw_grpc;
pub mod seeded;
pub mod verdicts;
pub mod webhook_bodies;
