//! Kubeconfig files for the admin user and for ServiceAccount tokens.

use base64::Engine;

/// Renders a kubeconfig with a bearer token.
pub fn render(server: &str, ca_pem: &str, user: &str, token: &str, namespace: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let ns = if namespace.is_empty() {
        String::new()
    } else {
        format!("\n    namespace: {namespace}")
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: {user}@kubesim\n  context:\n    cluster: kubesim\n    user: {user}{ns}\ncurrent-context: {user}@kubesim\n"
    )
}

/// Writes a kubeconfig with mode 0600 (it holds a credential).
pub fn write(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}
