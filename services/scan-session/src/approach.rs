//! Which way a scan reaches its container, decided before any identity is
//! created so the identity's Role grants only what that way needs.

use k8s_openapi::api::core::v1::Pod;

/// How to reach the container: the intent domain's type, so what an intent
/// asks for and what a session does are one set of values.
pub use scanfleet_scan_intents::Approach;

/// What the operator allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApproachPolicy {
    /// Whether ephemeral debug containers may be added to workloads.
    pub allow_debug: bool,
    /// Name of the scanner sidecar container.
    pub sidecar_container: String,
}

/// The first approach to try, and whether a missing shell may fall back to
/// debug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApproachPlan {
    /// Tried first.
    pub first: Approach,
    /// `auto` on a target whose shell turns out to be missing.
    pub fall_back_to_debug: bool,
}

/// Whether `pod` carries the scanner sidecar with a shared process
/// namespace (and the target is not the sidecar itself).
pub fn has_sidecar(pod: &Pod, container: &str, policy: &ApproachPolicy) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    container != policy.sidecar_container
        && spec.share_process_namespace == Some(true)
        && spec
            .containers
            .iter()
            .any(|c| c.name == policy.sidecar_container)
}

/// Decides the plan, or refuses with the reason a user can act on.
///
/// # Errors
/// The refusal text; retrying cannot change it.
pub fn plan(
    requested: Approach,
    pod: &Pod,
    container: &str,
    policy: &ApproachPolicy,
) -> Result<ApproachPlan, String> {
    let sidecar = has_sidecar(pod, container, policy);
    match requested {
        Approach::Auto if sidecar => Ok(ApproachPlan {
            first: Approach::Sidecar,
            fall_back_to_debug: false,
        }),
        Approach::Auto => Ok(ApproachPlan {
            first: Approach::Exec,
            fall_back_to_debug: policy.allow_debug,
        }),
        Approach::Exec => Ok(ApproachPlan {
            first: Approach::Exec,
            fall_back_to_debug: false,
        }),
        Approach::Debug if policy.allow_debug => Ok(ApproachPlan {
            first: Approach::Debug,
            fall_back_to_debug: false,
        }),
        Approach::Debug => Err(
            "the debug approach was requested but debug containers are disabled by policy".into(),
        ),
        Approach::Sidecar if sidecar => Ok(ApproachPlan {
            first: Approach::Sidecar,
            fall_back_to_debug: false,
        }),
        Approach::Sidecar => Err(format!(
            "the sidecar approach needs a container named {:?} and shareProcessNamespace: true in the pod",
            policy.sidecar_container
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(shared: bool, names: &[&str]) -> Pod {
        let containers: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"name": n, "image": "x"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "spec": {"shareProcessNamespace": shared, "containers": containers}
        }))
        .unwrap()
    }

    fn policy(allow_debug: bool) -> ApproachPolicy {
        ApproachPolicy {
            allow_debug,
            sidecar_container: "scanner".into(),
        }
    }

    #[test]
    fn auto_prefers_the_sidecar_then_exec_with_debug_as_policy_allows() {
        let with = pod(true, &["app", "scanner"]);
        let without = pod(false, &["app", "scanner"]);
        assert_eq!(
            plan(Approach::Auto, &with, "app", &policy(true))
                .unwrap()
                .first,
            Approach::Sidecar
        );
        let p = plan(Approach::Auto, &without, "app", &policy(true)).unwrap();
        assert_eq!((p.first, p.fall_back_to_debug), (Approach::Exec, true));
        let p = plan(Approach::Auto, &without, "app", &policy(false)).unwrap();
        assert_eq!((p.first, p.fall_back_to_debug), (Approach::Exec, false));
    }

    #[test]
    fn impossible_requests_are_refused_with_the_reason() {
        let p = pod(false, &["app"]);
        let e = plan(Approach::Debug, &p, "app", &policy(false)).unwrap_err();
        assert!(e.contains("disabled by policy"), "{e}");
        let e = plan(Approach::Sidecar, &p, "app", &policy(true)).unwrap_err();
        assert!(e.contains("shareProcessNamespace"), "{e}");
        assert!("bogus".parse::<Approach>().is_err());
    }
}
