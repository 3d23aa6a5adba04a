//! The wire contracts between scanfleet's services: the `ScanIntent` that
//! travels on the bus and the `Intake` and `Results` gRPC services.
//!
//! The source of truth is `proto/scanfleet/v1/*.proto`. The Rust code in
//! `src/gen/` is generated from it and committed, so normal builds need no
//! `protoc` and no build script; the `generated_code` test regenerates it with
//! protox (pure Rust) and fails when the committed code and the `.proto` files
//! disagree.
//!
//! These are wire types only. Services convert them into their own domain
//! types at the edge, so a schema change never ripples through the scan
//! engine or the trust layer.

/// Version 1 of the scanfleet API (`package scanfleet.v1`).
#[allow(missing_docs, clippy::all, clippy::pedantic)] // generated code
pub mod v1 {
    include!("gen/scanfleet.v1.rs");
}
