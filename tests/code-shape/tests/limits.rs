//! The workspace stays within the size limits of `scanfleet-code-shape`.

use std::path::{Path, PathBuf};

use scanfleet_code_shape::{
    MAX_FILE_LINES, MAX_FN_LINES, MAX_MAIN_LINES, function_lengths, rust_files,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn no_file_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for dir in ["services", "tests", "loadtest"] {
        for file in rust_files(&workspace().join(dir)) {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_FILE_LINES {
                long.push(format!("{}: {lines} lines", relative(&file)));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines; split them along the concepts they hold:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_function_in_services_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for file in rust_files(&workspace().join("services")) {
        let source = std::fs::read_to_string(&file).unwrap();
        for f in function_lengths(&relative(&file), &source).unwrap() {
            if f.lines > MAX_FN_LINES {
                long.push(format!("{} {}: {} lines", f.at, f.name, f.lines));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines; split them along their steps:\n{}",
        long.join("\n")
    );
}

#[test]
fn every_service_main_is_a_few_lines() {
    let mut long = Vec::new();
    for file in rust_files(&workspace().join("services")) {
        if file.file_name().is_some_and(|n| n == "main.rs") {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_MAIN_LINES {
                long.push(format!("{}: {lines} lines", relative(&file)));
            }
        }
    }
    assert!(
        long.is_empty(),
        "main.rs files over {MAX_MAIN_LINES} lines; move the wiring into the library:\n{}",
        long.join("\n")
    );
}
