//! Proves that `src/gen/` is exactly what the `.proto` files generate.
//!
//! Run with `SCANFLEET_BLESS=1` to rewrite `src/gen/` after editing a proto.

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn proto_root() -> PathBuf {
    crate_dir().join("../../proto")
}

fn proto_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("scanfleet/v1"))
        .expect("proto/scanfleet/v1 exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .collect();
    files.sort();
    files
}

#[test]
fn committed_code_matches_the_proto_files() {
    let root = proto_root();
    let files = proto_files(&root);
    assert!(
        files.len() >= 3,
        "expected the scanfleet/v1 protos, found {files:?}"
    );
    let fds = protox::compile(&files, [&root]).expect("the .proto files compile");

    let out = tempfile::tempdir().unwrap();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("code generation succeeds");

    let generated = std::fs::read_to_string(out.path().join("scanfleet.v1.rs")).unwrap();
    let committed_path = crate_dir().join("src/gen/scanfleet.v1.rs");
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if generated != committed {
        if std::env::var_os("SCANFLEET_BLESS").is_some() {
            std::fs::write(&committed_path, &generated).unwrap();
            return;
        }
        panic!(
            "{} is stale: the .proto files changed. Regenerate with\n  \
             SCANFLEET_BLESS=1 cargo test -p scanfleet-contracts --test generated_code",
            committed_path.display()
        );
    }
}
