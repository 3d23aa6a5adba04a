//! The profile catalog (used by intake and the worker) serves InSpec
//! profile directories exactly as it serves YAML ones: pinned by version
//! or by the digest of every file (libraries included), with input
//! overrides checked against the declared inputs and typed like them.

use scanfleet_scan_engine::adapters::profile_catalog::{CatalogError, Edition, ProfileCatalog};
use scanfleet_scan_engine::profile::{InputOverrides, InputValue};

fn write_profile(root: &std::path::Path, library: &str) {
    let p = root.join("ruby-profile");
    std::fs::create_dir_all(p.join("controls")).unwrap();
    std::fs::create_dir_all(p.join("libraries")).unwrap();
    std::fs::write(
        p.join("inspec.yml"),
        "name: ruby-profile\nversion: 2.0.1\ninputs:\n  - name: max_days\n    type: Numeric\n    value: 60\n",
    )
    .unwrap();
    std::fs::write(
        p.join("controls/c.rb"),
        "control 'c-1' do\n  impact 0.5\n  describe input('max_days') do\n    it { should be <= 90 }\n  end\nend\n",
    )
    .unwrap();
    std::fs::write(p.join("libraries/helper.rb"), library).unwrap();
}

#[test]
fn inspec_profiles_are_pinned_by_version_and_digest() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), "module Helper\nend\n");
    let catalog = ProfileCatalog::new(dir.path().to_path_buf());
    let none = InputOverrides::new();
    let p = catalog
        .load("ruby-profile", Edition::Version("2.0.1"), &none)
        .unwrap();
    assert_eq!(p.controls.len(), 1);
    let digest = format!("sha256:{}", p.sha256);
    catalog
        .load("ruby-profile", Edition::Digest(&digest), &none)
        .unwrap();
    assert!(matches!(
        catalog.load("ruby-profile", Edition::Version("2.0.0"), &none),
        Err(CatalogError::OtherEdition { .. })
    ));

    let typed: InputOverrides = [("max_days".to_owned(), "30".to_owned())].into();
    let p = catalog
        .load("ruby-profile", Edition::Version("2.0.1"), &typed)
        .unwrap();
    assert_eq!(
        p.metadata.inputs[0].value,
        InputValue::Typed(serde_json::json!(30))
    );
    let bad: InputOverrides = [("max_days".to_owned(), "thirty".to_owned())].into();
    assert!(matches!(
        catalog.load("ruby-profile", Edition::Version("2.0.1"), &bad),
        Err(CatalogError::Inputs { .. })
    ));
    let unknown: InputOverrides = [("nope".to_owned(), "1".to_owned())].into();
    assert!(matches!(
        catalog.load("ruby-profile", Edition::Version("2.0.1"), &unknown),
        Err(CatalogError::Inputs { .. })
    ));

    // The digest covers libraries: another library is another edition.
    let other = tempfile::tempdir().unwrap();
    write_profile(other.path(), "module Helper\n  X = 1\nend\n");
    let other = ProfileCatalog::new(other.path().to_path_buf());
    assert!(matches!(
        other.load("ruby-profile", Edition::Digest(&digest), &none),
        Err(CatalogError::OtherEdition { .. })
    ));
}
