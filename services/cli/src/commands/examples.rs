//! The examples each command's `--help` ends with. They live together so
//! that one test can parse every one of them with the real command
//! definitions: an example that no longer parses fails the build's tests.

/// `scanfleet keys generate`.
pub const KEYS_GENERATE: &str = "Examples:
  scanfleet keys generate --out-dir keys/";
/// `scanfleet keys id`.
pub const KEYS_ID: &str = "Examples:
  scanfleet keys id keys/signing.pub.pem";
/// `scanfleet envelope sign`.
pub const ENVELOPE_SIGN: &str = "Examples:
  scanfleet envelope sign --key keys/signing.pem --payload-type application/vnd.in-toto+json statement.json --out statement.dsse.json";
/// `scanfleet envelope verify`.
pub const ENVELOPE_VERIFY: &str = "Examples:
  scanfleet envelope verify --key keys/signing.pub.pem --payload-type application/vnd.in-toto+json statement.dsse.json";
/// `scanfleet envelope encrypt`.
pub const ENVELOPE_ENCRYPT: &str = "Examples:
  scanfleet envelope encrypt --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --armor report.json -o report.json.age";
/// `scanfleet envelope decrypt`.
pub const ENVELOPE_DECRYPT: &str = "Examples:
  scanfleet envelope decrypt -i collector.age report.json.age -o report.json";
/// `scanfleet scan`.
pub const SCAN: &str = "Examples:
  scanfleet scan --root ./rootfs --profile profiles/container-hardening --out hdf.json
  scanfleet scan k8s://shop/web-0/web --kubeconfig admin.kubeconfig --profile profiles/container-baseline-inspec --threshold threshold.yml";
/// `scanfleet profile check`.
pub const PROFILE_CHECK: &str = "Examples:
  scanfleet profile check profiles/container-baseline-inspec
  scanfleet profile check ./my-stig-profile -o json";
/// `scanfleet threshold`.
pub const THRESHOLD: &str = "Examples:
  scanfleet threshold -i hdf.json -T threshold.yml";
/// `scanfleet submit`.
pub const SUBMIT: &str = "Examples:
  scanfleet submit k8s://shop/web-0/web --profile container-baseline --profile-version 1.0.0
  scanfleet submit --namespace shop --selector app=web -o json";
/// `scanfleet results list`.
pub const RESULTS_LIST: &str = "Examples:
  scanfleet results list --namespace shop --outcome failed
  scanfleet results list --image-digest sha256:0d5ba8e6a1b53a3b9e2ba25d46d6b1c6d4c1d1d2cc0b7b0bd5a84e6a50b3f6b1 -o yaml";
/// `scanfleet results show`.
pub const RESULTS_SHOW: &str = "Examples:
  scanfleet results show 01JD6V8Q4K7E2S9N3B5X0C1M2P -o json";
/// `scanfleet results export`.
pub const RESULTS_EXPORT: &str = "Examples:
  scanfleet results export 01JD6V8Q4K7E2S9N3B5X0C1M2P --hdf scan.hdf.json --envelope scan.dsse.json --key keys/signing.pub.pem";
/// `scanfleet results drift`.
pub const RESULTS_DRIFT: &str = "Examples:
  scanfleet results drift 01JD6V8Q4K7E2S9N3B5X0C1M2P
  scanfleet results drift 01JD6V8Q4K7E2S9N3B5X0C1M2P -o yaml";
/// `scanfleet watch`.
pub const WATCH: &str = "Examples:
  scanfleet watch 01JD6V8Q4K7E2S9N3B5X0C1M2P 01JD6V8Q4K7E2S9N3B5X0C1M2Q --timeout 300
  scanfleet watch 01JD6V8Q4K7E2S9N3B5X0C1M2P -o json";
/// `scanfleet bus init`.
pub const BUS_INIT: &str = "Examples:
  scanfleet bus init --nats-url tls://nats.example:4222 --nats-ca ca.crt --nats-nkey-file nkeys/admin.nk --replicas 3";
/// `scanfleet bus identities`.
pub const BUS_IDENTITIES: &str = "Examples:
  scanfleet bus identities --out nkeys/";
/// `scanfleet completion`.
pub const COMPLETION: &str = "Examples:
  scanfleet completion bash > /etc/bash_completion.d/scanfleet
  scanfleet completion zsh";
/// `scanfleet man`.
pub const MAN: &str = "Examples:
  scanfleet man --out-dir /usr/local/share/man/man1";

/// The exit statuses, on the top-level `--help` (docs/cli.md says the same).
pub const EXIT_STATUS: &str = "Exit status:
  0  success
  1  findings: a failed threshold, a rejected envelope or export, a scan that failed or did not arrive
  2  invalid usage or input (flags, files, profiles, credentials refused)
  3  a server or cluster is unavailable (intake, the collector, NATS, the Kubernetes API); retry later";
