//! Validation of the image name parts a webhook reports: registry host,
//! repository path and tag, following the grammar of
//! `distribution/reference` (the grammar `docker pull` and kubelet use).
//!
//! Webhook bodies are untrusted, and these strings end up in logs, NATS
//! subjects and pod matching; anything a registry could not actually have
//! stored is refused here rather than half-matched later.

/// Longest repository path the reference grammar allows.
pub const MAX_REPOSITORY_LEN: usize = 255;
/// Longest tag the reference grammar allows.
pub const MAX_TAG_LEN: usize = 128;
/// Longest registry host (a DNS name plus an optional port).
pub const MAX_HOST_LEN: usize = 255;

/// Checks a repository path such as `library/nginx` or `shop/team/web`:
/// slash-separated components of lowercase alphanumerics joined by single
/// `.`, single or double `_`, or runs of `-`.
pub fn check_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("repository is empty".into());
    }
    if repo.len() > MAX_REPOSITORY_LEN {
        return Err(format!(
            "repository is {} characters, over the limit of {MAX_REPOSITORY_LEN}",
            repo.len()
        ));
    }
    for (i, component) in repo.split('/').enumerate() {
        check_path_component(component)
            .map_err(|p| format!("repository component {} ({component:?}): {p}", i + 1))?;
    }
    Ok(())
}

fn check_path_component(c: &str) -> Result<(), &'static str> {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() {
        return Err("empty path component");
    }
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err("must start and end with a lowercase letter or digit");
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        match &c[start..i] {
            "." | "_" | "__" => {}
            run if run.bytes().all(|x| x == b'-') => {}
            _ => {
                return Err(
                    "only lowercase letters, digits and the separators . _ __ - are allowed",
                );
            }
        }
    }
    Ok(())
}

/// Checks a tag: word characters, `.` and `-`, not starting with `.` or `-`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    if b.is_empty() {
        return Err("tag is empty".into());
    }
    if b.len() > MAX_TAG_LEN {
        return Err(format!(
            "tag is {} characters, over the limit of {MAX_TAG_LEN}",
            b.len()
        ));
    }
    if !word(b[0]) {
        return Err("tag must start with a letter, digit or underscore".into());
    }
    if !b.iter().all(|&x| word(x) || x == b'.' || x == b'-') {
        return Err("tag may only hold letters, digits, _, . and -".into());
    }
    Ok(())
}

/// Checks a registry host: a DNS name or IPv4 address, optionally with a
/// port. IPv6 literals are refused; no registry in scope reports one and the
/// brackets would need escaping everywhere downstream.
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("registry host is empty".into());
    }
    if host.len() > MAX_HOST_LEN {
        return Err(format!("registry host is over {MAX_HOST_LEN} characters"));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|x| x.is_ascii_digit()))
    {
        return Err(format!("registry host {host:?} has an invalid port"));
    }
    for label in name.split('.') {
        let b = label.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-');
        if !ok {
            return Err(format!("registry host {host:?} is not a valid host name"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar_table() {
        let cases = [
            ("library/nginx", true),
            ("shop/team/web", true),
            ("a", true),
            ("my_app/web__x/a.b/c--d", true),
            ("Shop/web", false),
            ("shop//web", false),
            ("shop/web/", false),
            ("/shop", false),
            ("shop/-web", false),
            ("shop/web_", false),
            ("shop/we___b", false),
            ("shop/we..b", false),
            ("shop/we b", false),
            ("shop/web:1", false),
            ("", false),
        ];
        for (repo, ok) in cases {
            assert_eq!(
                check_repository(repo).is_ok(),
                ok,
                "{repo:?}: {:?}",
                check_repository(repo)
            );
        }
        assert!(check_repository(&"a".repeat(256)).is_err());
        assert!(check_repository(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn tag_grammar_table() {
        let cases = [
            ("1.2.3", true),
            ("latest", true),
            ("_x", true),
            ("v1-rc.1_b", true),
            (".x", false),
            ("-x", false),
            ("a/b", false),
            ("a:b", false),
            ("", false),
        ];
        for (tag, ok) in cases {
            assert_eq!(check_tag(tag).is_ok(), ok, "{tag:?}");
        }
        assert!(check_tag(&"a".repeat(128)).is_ok());
        assert!(check_tag(&"a".repeat(129)).is_err());
    }

    #[test]
    fn host_grammar_table() {
        let cases = [
            ("ghcr.io", true),
            ("registry.local:5000", true),
            ("10.0.0.1:443", true),
            ("localhost", true),
            ("reg_istry.io", false),
            ("-a.io", false),
            ("a..io", false),
            ("a.io:", false),
            ("a.io:123456", false),
            ("a.io:x", false),
            ("[::1]:5000", false),
            ("", false),
            ("a.io/x", false),
        ];
        for (host, ok) in cases {
            assert_eq!(check_host(host).is_ok(), ok, "{host:?}");
        }
    }
}
