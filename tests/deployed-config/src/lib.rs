//! The fleet's pods as `deploy/` renders them, laid out on disk so that each
//! service's own configuration parser can read them.
//!
//! `scripts/check-deploy` proves the manifests are valid Kubernetes; it
//! cannot tell whether the `intake.yml` in a ConfigMap, the `SCANFLEET_*`
//! variables of a Deployment and the files its volumes mount are a
//! configuration the service accepts. A key renamed in a service but not in
//! `deploy/`, or a mount path that no longer matches the file a setting
//! names, would only show as a crash-looping pod on a real cluster. Here the
//! rendered objects are materialised in a temporary root (ConfigMaps and the
//! operator's Secrets as files at their mount paths, the paths in arguments,
//! variables and configuration rewritten under that root) and handed to the
//! service's `Config::from_args`, exactly as the pod's process would be.

mod operator_objects;
mod pod_view;
mod rendered;

pub use operator_objects::OperatorObjects;
pub use pod_view::{PodView, flags_for_variables};
pub use rendered::RenderedOverlay;
