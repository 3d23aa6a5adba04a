//! What to scan: one named container, or every container matching a
//! selector in a namespace.

use std::fmt;

use crate::k8s_names::{ContainerName, NameError, NamespaceName, PodName};
use crate::label_selector::LabelSelector;

/// The URI scheme of explicit targets.
pub const SCHEME: &str = "k8s://";
/// Longest accepted target URI: the scheme plus the longest namespace, pod
/// and container names and two slashes is 6+63+253+63+2 = 387.
pub const MAX_URI_LEN: usize = 387;

/// One container in one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerRef {
    /// The pod's namespace.
    pub namespace: NamespaceName,
    /// The pod.
    pub pod: PodName,
    /// The container inside the pod.
    pub container: ContainerName,
}

/// Why a target URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetUriError {
    /// Over [`MAX_URI_LEN`].
    #[error("is {0} bytes, over the limit of {MAX_URI_LEN}")]
    TooLong(usize),
    /// Missing or wrong scheme.
    #[error("must start with \"k8s://\"")]
    Scheme,
    /// Not exactly three path segments.
    #[error("must have the form k8s://NAMESPACE/POD/CONTAINER (found {0} segments)")]
    Shape(usize),
    /// A segment is not a valid name.
    #[error("{segment}: {source}")]
    Name {
        /// "namespace", "pod" or "container".
        segment: &'static str,
        /// The rule it broke.
        source: NameError,
    },
}

impl ContainerRef {
    /// Parses `k8s://NAMESPACE/POD/CONTAINER`. Strict on purpose: no
    /// query, fragment, percent-encoding, empty or extra segments, since no
    /// valid Kubernetes name needs them.
    pub fn parse_uri(uri: &str) -> Result<Self, TargetUriError> {
        if uri.len() > MAX_URI_LEN {
            return Err(TargetUriError::TooLong(uri.len()));
        }
        let rest = uri.strip_prefix(SCHEME).ok_or(TargetUriError::Scheme)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [ns, pod, container] = parts.as_slice() else {
            return Err(TargetUriError::Shape(parts.len()));
        };
        let name = |segment| move |source| TargetUriError::Name { segment, source };
        Ok(Self {
            namespace: NamespaceName::new(ns).map_err(name("namespace"))?,
            pod: PodName::new(pod).map_err(name("pod"))?,
            container: ContainerName::new(container).map_err(name("container"))?,
        })
    }
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/{}/{}",
            self.namespace, self.pod, self.container
        )
    }
}

/// A validated scan target, before selector expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Exactly one container.
    Container(ContainerRef),
    /// Every running pod in `namespace` matching `selector`; only
    /// `container` of each when set, else all of their containers.
    Selector {
        /// Where to look.
        namespace: NamespaceName,
        /// Which pods.
        selector: LabelSelector,
        /// Which container of each pod.
        container: Option<ContainerName>,
    },
}

impl Target {
    /// The namespace either form targets; intents are routed by it.
    pub fn namespace(&self) -> &NamespaceName {
        match self {
            Target::Container(c) => &c.namespace,
            Target::Selector { namespace, .. } => namespace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_table() {
        let ok = ContainerRef::parse_uri("k8s://shop/web-7d4b9c8f6-x2m4q/app").unwrap();
        assert_eq!(ok.namespace.as_str(), "shop");
        assert_eq!(ok.pod.as_str(), "web-7d4b9c8f6-x2m4q");
        assert_eq!(ok.container.as_str(), "app");
        assert_eq!(ok.to_string(), "k8s://shop/web-7d4b9c8f6-x2m4q/app");
        assert!(ContainerRef::parse_uri("k8s://shop/web.v2-0/app").is_ok());

        let cases = [
            ("http://shop/web/app", "must start with \"k8s://\""),
            ("K8S://shop/web/app", "must start with \"k8s://\""),
            (
                "k8s://shop/web",
                "must have the form k8s://NAMESPACE/POD/CONTAINER (found 2 segments)",
            ),
            (
                "k8s://shop/web/app/x",
                "must have the form k8s://NAMESPACE/POD/CONTAINER (found 4 segments)",
            ),
            (
                "k8s://shop/web/app/",
                "must have the form k8s://NAMESPACE/POD/CONTAINER (found 4 segments)",
            ),
            ("k8s:///web/app", "namespace: must not be empty"),
            ("k8s://shop//app", "pod: must not be empty"),
            ("k8s://shop/web/", "container: must not be empty"),
            (
                "k8s://Shop/web/app",
                "namespace: a lowercase RFC 1123 label must consist of lowercase alphanumeric \
                 characters or '-', and must start and end with an alphanumeric character",
            ),
            (
                "k8s://shop.prod/web/app",
                "namespace: a lowercase RFC 1123 label must consist of lowercase alphanumeric \
                 characters or '-', and must start and end with an alphanumeric character",
            ),
            (
                "k8s://shop/web/app.v1",
                "container: a lowercase RFC 1123 label must consist of lowercase alphanumeric \
                 characters or '-', and must start and end with an alphanumeric character",
            ),
            (
                "k8s://shop/web?x=1/app",
                "pod: a lowercase RFC 1123 subdomain must consist of lowercase alphanumeric \
                 characters, '.' or '-', and must start and end with an alphanumeric character",
            ),
        ];
        for (uri, want) in cases {
            assert_eq!(
                ContainerRef::parse_uri(uri).unwrap_err().to_string(),
                want,
                "{uri:?}"
            );
        }
        let long_ns = format!("k8s://{}/web/app", "a".repeat(64));
        assert_eq!(
            ContainerRef::parse_uri(&long_ns).unwrap_err().to_string(),
            "namespace: must be no more than 63 characters (got 64)"
        );
        let longest = format!(
            "k8s://{}/{}/{}",
            "a".repeat(63),
            "b".repeat(253),
            "c".repeat(63)
        );
        assert_eq!(longest.len(), MAX_URI_LEN);
        assert!(ContainerRef::parse_uri(&longest).is_ok());
        assert_eq!(
            ContainerRef::parse_uri(&format!("{longest}x")).unwrap_err(),
            TargetUriError::TooLong(388)
        );
    }
}
