//! Pulls from a real Distribution registry on loopback (TLS from a
//! throwaway CA, htpasswd basic auth), images built by umoci and pushed by
//! skopeo; and the same images read from their OCI layout and a tar of it.

use std::path::Path;

use scanfleet_image_fetch::adapters::image_archive::ImageArchive;
use scanfleet_image_fetch::adapters::image_pull::{PullError, pull_image};
use scanfleet_image_fetch::adapters::registry_client::{
    Credentials, RegistryClient, RegistryOptions,
};
use scanfleet_image_fetch::layer_entry::UnpackLimits;
use scanfleet_image_fetch::manifest::Platform;
use scanfleet_scan_intents::ImageDigest;
use scanfleet_test_harness::registry::{TestRegistry, build_layout};
use zeroize::Zeroizing;

const FILES: &[(&str, &[u8], u32)] = &[
    ("etc/app.conf", b"listen 8080\n", 0o644),
    ("usr/bin/helper", b"#!/bin/sh\n", 0o4755),
];

fn options(reg: &TestRegistry, password: Option<&str>) -> RegistryOptions {
    RegistryOptions {
        ca_bundle: Some(reg.pki.ca.clone()),
        credentials: password.map(|p| Credentials {
            username: reg.user.0.clone(),
            password: Zeroizing::new(p.into()),
        }),
        ..RegistryOptions::default()
    }
}

fn assert_image(root: &Path) {
    assert_eq!(
        std::fs::read(root.join("etc/app.conf")).unwrap(),
        b"listen 8080\n"
    );
    assert!(root.join("usr/bin/helper").is_file());
}

#[tokio::test]
async fn pulls_by_digest_over_tls_with_basic_auth() {
    let reg = TestRegistry::start("scanner", "s3cret-pw", None);
    let layout = tempfile::tempdir().unwrap();
    let layout = layout.path().join("layout");
    build_layout(&layout, "v1", FILES);
    let digest = ImageDigest::parse(&reg.push(&layout, "v1", "shop/web")).unwrap();
    let work = tempfile::tempdir().unwrap();

    let client =
        RegistryClient::new(&reg.host(), "shop/web", options(&reg, Some("s3cret-pw"))).unwrap();
    let image = pull_image(
        &client,
        &digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(work.path()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nregistry log:\n{}", reg.log()));
    assert_eq!(image.digest, digest);
    assert_eq!(image.layers, 1);
    assert_image(&image.root());
    assert_eq!(
        image.recorded.get(b"/usr/bin/helper").unwrap().mode & 0o7777,
        0o4755,
        "setuid is kept as recorded data"
    );
    let dir = image.dir().to_path_buf();
    drop(image);
    assert!(!dir.exists(), "the private directory is removed on drop");
    refusals_name_the_registry_and_the_step(&reg, &digest, work.path()).await;
}

/// Wrong or missing credentials, a foreign CA, a missing digest: each one
/// error naming the registry and the step, and no directory left behind.
async fn refusals_name_the_registry_and_the_step(
    reg: &TestRegistry,
    digest: &ImageDigest,
    work: &Path,
) {
    // Wrong password: one clear error naming the registry and the step.
    let client = RegistryClient::new(&reg.host(), "shop/web", options(reg, Some("wrong"))).unwrap();
    let err = pull_image(
        &client,
        digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(work),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(err, PullError::AuthRefused { status: 401, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "registry {} refused the credentials for user \"scanner\" while fetching manifest \
             shop/web@{digest} (HTTP 401); not retrying: check the user name and password",
            reg.host()
        )
    );
    // No credentials at all.
    let client = RegistryClient::new(&reg.host(), "shop/web", options(reg, None)).unwrap();
    let err = pull_image(
        &client,
        digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(work),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "registry {} requires credentials while fetching manifest shop/web@{digest}; none \
             were given",
            reg.host()
        )
    );
    // A CA that did not sign the registry's certificate.
    let other = tempfile::tempdir().unwrap();
    let other_pki = scanfleet_test_harness::registry::TestPki::new(other.path());
    let client = RegistryClient::new(
        &reg.host(),
        "shop/web",
        RegistryOptions {
            ca_bundle: Some(other_pki.ca.clone()),
            ..options(reg, Some("s3cret-pw"))
        },
    )
    .unwrap();
    let err = pull_image(
        &client,
        digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(work),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.starts_with(&format!(
            "registry {}: fetching manifest shop/web@{digest}: TLS with 127.0.0.1:",
            reg.host()
        )),
        "{err}"
    );
    // A digest the registry does not have.
    let missing = ImageDigest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
    let client =
        RegistryClient::new(&reg.host(), "shop/web", options(reg, Some("s3cret-pw"))).unwrap();
    let err = pull_image(
        &client,
        &missing,
        &Platform::default(),
        UnpackLimits::default(),
        Some(work),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(err, PullError::Rejected { .. }) && err.is_permanent(),
        "a missing manifest is not worth retrying: {err}"
    );
    let err = err.to_string();
    assert!(err.contains("HTTP 404"), "{err}");
    assert_eq!(
        std::fs::read_dir(work).unwrap().count(),
        0,
        "every failed pull removed its directory"
    );
}

#[tokio::test]
async fn reads_oci_layouts_and_archives_and_verifies_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    build_layout(&layout, "v1", FILES);
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();

    let archive = ImageArchive::open(&layout, Some(&work), &UnpackLimits::default()).unwrap();
    let digest = archive.image_digest().unwrap();
    let image = pull_image(
        &archive,
        &digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(&work),
    )
    .await
    .unwrap();
    assert_image(&image.root());
    drop(image);

    let tar = tmp.path().join("image.tar");
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success());
    let archive = ImageArchive::open(&tar, Some(&work), &UnpackLimits::default()).unwrap();
    assert_eq!(archive.image_digest().unwrap(), digest);
    let image = pull_image(
        &archive,
        &digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(&work),
    )
    .await
    .unwrap();
    assert_image(&image.root());
    drop(image);
    drop(archive);

    // Corrupt the layer blob: refused by digest before anything unpacks,
    // and the private directory is gone.
    let blobs = layout.join("blobs/sha256");
    let biggest = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&biggest, bytes).unwrap();
    let archive = ImageArchive::open(&layout, Some(&work), &UnpackLimits::default()).unwrap();
    let err = pull_image(
        &archive,
        &digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(&work),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains(": content has digest sha256:"), "{err}");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

/// The bearer-token flow against the real registry configured with
/// `auth: token`: the right password gets a token (from the realm the
/// registry's challenge names) and the pull succeeds; a wrong one is
/// refused at the token server, reported once naming the registry and
/// the step, and tried exactly once.
#[tokio::test]
async fn pulls_with_a_bearer_token_and_a_wrong_password_is_asked_once() {
    let reg = TestRegistry::start_with_token_auth("scanner", "t0ken-pw", None);
    let tokens = reg.token_server.as_ref().unwrap();
    let layout = tempfile::tempdir().unwrap();
    let layout = layout.path().join("layout");
    build_layout(&layout, "v1", FILES);
    let digest = ImageDigest::parse(&reg.push(&layout, "v1", "shop/web")).unwrap();
    assert!(tokens.issued() >= 1, "skopeo pushed with a token");
    let work = tempfile::tempdir().unwrap();

    let before = tokens.issued();
    let client =
        RegistryClient::new(&reg.host(), "shop/web", options(&reg, Some("t0ken-pw"))).unwrap();
    let image = pull_image(
        &client,
        &digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(work.path()),
    )
    .await
    .unwrap();
    assert_image(&image.root());
    assert!(tokens.issued() > before, "the pull used a bearer token");
    drop(image);

    let refused_before = tokens.refused();
    let client =
        RegistryClient::new(&reg.host(), "shop/web", options(&reg, Some("wrong"))).unwrap();
    let err = pull_image(
        &client,
        &digest,
        &Platform::default(),
        UnpackLimits::default(),
        Some(work.path()),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(err, PullError::AuthRefused { status: 401, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "registry {} refused the credentials for user \"scanner\" while getting a token \
             from {} for fetching manifest shop/web@{digest} (HTTP 401); not retrying: check \
             the user name and password",
            reg.host(),
            tokens.realm()
        )
    );
    assert_eq!(
        tokens.refused() - refused_before,
        1,
        "asked once, no retries"
    );
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        0,
        "nothing left unpacked"
    );
}
