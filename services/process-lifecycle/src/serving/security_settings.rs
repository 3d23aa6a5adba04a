//! The flags, variables and YAML keys that say how a service's listeners
//! are protected, shared by intake, the worker and the collector.
//!
//! TLS is the only default: a service without a certificate and key does
//! not start, unless the operator wrote `insecure_plaintext: true` (or the
//! flag, or `SCANFLEET_INSECURE_PLAINTEXT=true`), and then every listener
//! logs a warning when it binds.

use std::path::PathBuf;

use super::tls::{ListenerSecurity, ServerTls, TlsFiles};

/// The TLS flags and `SCANFLEET_*` variables, flattened into each
/// service's arguments. Unset values fall back to the YAML file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain every listener presents (reloaded when the
    /// file changes)
    #[arg(long, env = "SCANFLEET_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of that certificate (reloaded when the file changes)
    #[arg(long, env = "SCANFLEET_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM bundle of CAs whose client certificates are accepted (mTLS); a
    /// certificate from any other CA is refused in the handshake
    #[arg(long, env = "SCANFLEET_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// Refuse clients that present no certificate (needs
    /// --tls-client-ca-file) [default: false]
    #[arg(long, env = "SCANFLEET_REQUIRE_CLIENT_CERTIFICATE", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub require_client_certificate: Option<bool>,
    /// Serve plaintext instead of TLS (development only; logs a warning)
    /// [default: false]
    #[arg(long, env = "SCANFLEET_INSECURE_PLAINTEXT", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub insecure_plaintext: Option<bool>,
}

/// The same settings as YAML keys, flattened into each service's file
/// schema.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// See [`TlsArgs::tls_cert_file`].
    pub tls_cert_file: Option<PathBuf>,
    /// See [`TlsArgs::tls_key_file`].
    pub tls_key_file: Option<PathBuf>,
    /// See [`TlsArgs::tls_client_ca_file`].
    pub tls_client_ca_file: Option<PathBuf>,
    /// See [`TlsArgs::require_client_certificate`].
    pub require_client_certificate: Option<bool>,
    /// See [`TlsArgs::insecure_plaintext`].
    pub insecure_plaintext: Option<bool>,
}

impl TlsArgs {
    /// Settles flags over the file, loads the material once (so a bad
    /// file is a configuration error, exit 2) and appends every problem to
    /// `errors`.
    pub fn settle(self, file: TlsFile, errors: &mut Vec<String>) -> ListenerSecurity {
        let cert = self.tls_cert_file.or(file.tls_cert_file);
        let key = self.tls_key_file.or(file.tls_key_file);
        let client_ca = self.tls_client_ca_file.or(file.tls_client_ca_file);
        let require = self
            .require_client_certificate
            .or(file.require_client_certificate)
            .unwrap_or(false);
        let plaintext = self
            .insecure_plaintext
            .or(file.insecure_plaintext)
            .unwrap_or(false);
        if plaintext {
            if cert.is_some() || key.is_some() || client_ca.is_some() {
                errors.push("insecure_plaintext: true together with TLS files; choose one".into());
            }
            return ListenerSecurity::InsecurePlaintext;
        }
        if require && client_ca.is_none() {
            errors.push(
                "require_client_certificate: needs --tls-client-ca-file to verify them".into(),
            );
        }
        let (Some(cert), Some(key)) = (cert, key) else {
            errors.push(
                "--tls-cert-file and --tls-key-file: every listener serves TLS; give both \
                 (or insecure_plaintext: true for a development fleet)"
                    .into(),
            );
            return ListenerSecurity::InsecurePlaintext;
        };
        match ServerTls::load(TlsFiles {
            cert,
            key,
            client_ca,
            require_client_certificate: require,
        }) {
            Ok(tls) => ListenerSecurity::Tls(tls),
            Err(e) => {
                errors.push(format!("TLS: {e}"));
                ListenerSecurity::InsecurePlaintext
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(args: TlsArgs, file: TlsFile) -> (ListenerSecurity, Vec<String>) {
        let mut errors = Vec::new();
        let security = args.settle(file, &mut errors);
        (security, errors)
    }

    #[test]
    fn tls_is_required_unless_plaintext_is_asked_for() {
        let (_, errors) = settle(TlsArgs::default(), TlsFile::default());
        assert!(
            errors[0].contains("--tls-cert-file and --tls-key-file"),
            "{errors:?}"
        );
        let (security, errors) = settle(
            TlsArgs::default(),
            TlsFile {
                insecure_plaintext: Some(true),
                ..Default::default()
            },
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(matches!(security, ListenerSecurity::InsecurePlaintext));
    }

    #[test]
    fn contradictions_and_unreadable_files_are_named() {
        let (_, errors) = settle(
            TlsArgs {
                insecure_plaintext: Some(true),
                tls_cert_file: Some("/x".into()),
                ..Default::default()
            },
            TlsFile::default(),
        );
        assert!(errors[0].contains("choose one"), "{errors:?}");
        let (_, errors) = settle(
            TlsArgs {
                tls_cert_file: Some("/nonexistent/cert.pem".into()),
                require_client_certificate: Some(true),
                ..Default::default()
            },
            TlsFile {
                tls_key_file: Some("/nonexistent/key.pem".into()),
                ..Default::default()
            },
        );
        let all = errors.join("\n");
        assert!(all.contains("needs --tls-client-ca-file"), "{all}");
        assert!(all.contains("/nonexistent/cert.pem"), "{all}");
    }
}
