//! GitHub `package` and `registry_package` events for container packages.

use crate::endpoint::{host_of, optional_tag};
use crate::image_name::{check_host, check_repository};
use crate::json_path::Node;
use crate::webhook_request::WebhookRequest;
use crate::{IgnoreReason, ManifestDigest, PushEvent, RegistryKind, WebhookError, WebhookOutcome};

/// Header naming the GitHub event.
pub const GITHUB_EVENT: &str = "X-GitHub-Event";
/// Header with the delivery GUID, stable across redeliveries.
pub const GITHUB_DELIVERY: &str = "X-GitHub-Delivery";

fn text_header<'a>(req: &WebhookRequest<'a>, name: &str) -> Result<&'a str, WebhookError> {
    let bad = |problem: &str| WebhookError::BadHeader {
        header: name.to_owned(),
        problem: problem.to_owned(),
    };
    let raw = req
        .header(name)
        .map_err(|_| bad("is repeated"))?
        .ok_or_else(|| bad("is missing"))?;
    let s = std::str::from_utf8(raw).map_err(|_| bad("is not UTF-8"))?;
    if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("must be 1 to 128 printable ASCII characters"));
    }
    Ok(s)
}

/// One delivery carries one package version, so only the body size limit
/// applies.
pub(crate) fn parse(
    root: &Node<'_>,
    req: &WebhookRequest<'_>,
) -> Result<WebhookOutcome, WebhookError> {
    let event = text_header(req, GITHUB_EVENT)?;
    let delivery = text_header(req, GITHUB_DELIVERY)?;
    let mut out = WebhookOutcome::default();
    if event != "package" && event != "registry_package" {
        out.ignore(
            "",
            IgnoreReason::NotAPush {
                action: format!("GitHub event {event}"),
            },
        );
        return Ok(out);
    }
    let action = root.get_str("action")?;
    if action != "published" {
        out.ignore(
            "",
            IgnoreReason::NotAPush {
                action: format!("{event} {action}"),
            },
        );
        return Ok(out);
    }
    let pkg = root.get(event)?;
    let package_type = pkg.get_str("package_type")?;
    let lower = package_type.to_ascii_lowercase();
    if lower != "container" && lower != "docker" {
        let package_type = package_type.to_owned();
        out.ignore(
            pkg.path(),
            IgnoreReason::NotAContainerPackage { package_type },
        );
        return Ok(out);
    }
    let version = pkg.get("package_version")?;
    let metadata = version.opt("container_metadata")?;
    let manifest = match &metadata {
        Some(m) => m.opt("manifest")?,
        None => None,
    };
    let digest = digest(&version, manifest.as_ref())?;
    let tag = match &metadata {
        Some(m) => match m.opt("tag")? {
            Some(t) => optional_tag(t.opt("name")?)?,
            None => None,
        },
        None => None,
    };
    let media_type = match &manifest {
        Some(m) => m.opt_str("media_type")?.map(str::to_owned),
        None => None,
    };
    let (registry, repository) = location(&pkg, &version, &lower)?;
    out.events.push(PushEvent {
        registry,
        repository,
        digest,
        tag,
        media_type,
        source: RegistryKind::Ghcr,
        event_id: delivery.to_owned(),
    });
    Ok(out)
}

/// For containers `package_version.version` is the manifest digest; the
/// container metadata's manifest digest is the fallback.
fn digest(version: &Node<'_>, manifest: Option<&Node<'_>>) -> Result<ManifestDigest, WebhookError> {
    let v = version.opt("version")?;
    if let Some(v) = &v
        && let Ok(d) = ManifestDigest::parse(v.str()?)
    {
        return Ok(d);
    }
    if let Some(m) = manifest
        && let Some(d) = m.opt("digest")?
    {
        return d.digest();
    }
    match v {
        Some(v) => v.digest(),
        None => Err(version
            .get("version")
            .err()
            .unwrap_or_else(|| version.invalid("no digest"))),
    }
}

/// Registry host and repository: from `package_url`
/// (`ghcr.io/<owner>/<name>:<tag>`) when present, else from the owner's
/// login and the package name, which GHCR lowercases.
fn location(
    pkg: &Node<'_>,
    version: &Node<'_>,
    package_type: &str,
) -> Result<(String, String), WebhookError> {
    if let Some(url_node) = version.opt("package_url")? {
        let url = url_node.non_empty_str()?;
        let host = host_of(&url_node, url)?;
        let path = url.split_once("://").map_or(url, |(_, r)| r);
        let path = &path[host.len()..].trim_start_matches('/');
        let path = path.split_once('@').map_or(*path, |(p, _)| p);
        let path = match path.rsplit_once('/') {
            Some((dir, last)) => {
                let name = last.split_once(':').map_or(last, |(n, _)| n);
                &path[..dir.len() + 1 + name.len()]
            }
            None => path.split_once(':').map_or(path, |(n, _)| n),
        };
        check_repository(path).map_err(|p| url_node.invalid(p))?;
        return Ok((host, path.to_owned()));
    }
    let host = if package_type == "docker" {
        "docker.pkg.github.com"
    } else {
        "ghcr.io"
    };
    check_host(host).map_err(|p| pkg.invalid(p))?;
    let owner = pkg.get("owner")?.get_str("login")?.to_ascii_lowercase();
    let name = pkg.get_str("name")?.to_ascii_lowercase();
    let repo = format!("{owner}/{name}");
    check_repository(&repo).map_err(|p| pkg.get("name").map_or_else(|e| e, |n| n.invalid(p)))?;
    Ok((host.to_owned(), repo))
}
