//! The size limits that keep scanfleet's code readable in one sitting.
//!
//! A file longer than [`MAX_FILE_LINES`] or a function longer than
//! [`MAX_FN_LINES`] is where rules start being copied instead of shared:
//! nobody can hold it in their head, so the next change adds a branch rather
//! than finding the owner. A service `main.rs` longer than
//! [`MAX_MAIN_LINES`] is wiring that belongs in the service's library, where
//! tests can reach it. The `limits` test applies these to the workspace;
//! generated code (`src/gen/`) is exempt.

use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Longest file, in lines, under `services/`, `tests/` and `loadtest/`.
pub const MAX_FILE_LINES: usize = 800;
/// Longest function (signature to closing brace), in lines, under `services/`.
pub const MAX_FN_LINES: usize = 120;
/// Longest `main.rs` of a service binary.
pub const MAX_MAIN_LINES: usize = 20;

/// One function and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnLength {
    /// `path:line` of the function's first line.
    pub at: String,
    /// The function's name, qualified by its impl type where it has one.
    pub name: String,
    /// Lines from the first attribute-free line to the closing brace.
    pub lines: usize,
}

/// Every Rust file under `dir`, skipping `target/`, `gen/` and hidden folders.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "gen") {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The length of every function in `source` (free functions, methods and
/// trait default methods, nested ones included).
///
/// # Errors
/// The parser's message when `source` is not valid Rust.
pub fn function_lengths(path: &str, source: &str) -> Result<Vec<FnLength>, String> {
    let file = syn::parse_file(source).map_err(|e| format!("{path}: {e}"))?;
    let mut visitor = Lengths {
        path,
        owner: None,
        out: Vec::new(),
    };
    visitor.visit_file(&file);
    Ok(visitor.out)
}

struct Lengths<'a> {
    path: &'a str,
    owner: Option<String>,
    out: Vec<FnLength>,
}

impl Lengths<'_> {
    fn record(&mut self, ident: &syn::Ident, sig: &syn::Signature, block: &syn::Block) {
        let first = sig.fn_token.span.start().line;
        let last = block.brace_token.span.close().end().line;
        let name = match &self.owner {
            Some(owner) => format!("{owner}::{ident}"),
            None => ident.to_string(),
        };
        self.out.push(FnLength {
            at: format!("{}:{first}", self.path),
            name,
            lines: last + 1 - first,
        });
    }
}

impl<'ast> Visit<'ast> for Lengths<'_> {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.record(&f.sig.ident, &f.sig, &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let ty = &i.self_ty;
        let previous = self.owner.replace(quote_type(ty));
        syn::visit::visit_item_impl(self, i);
        self.owner = previous;
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.record(&f.sig.ident, &f.sig, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.record(&f.sig.ident, &f.sig, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

fn quote_type(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_else(|| "impl".into()),
        _ => "impl".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_functions_methods_and_defaults() {
        let source = "fn a() {\n    1;\n}\nstruct S;\nimpl S {\n    fn b(&self) {}\n}\ntrait T {\n    fn c() {\n    }\n    fn d();\n}\n";
        let got = function_lengths("x.rs", source).unwrap();
        let summary: Vec<(String, usize)> = got.into_iter().map(|f| (f.name, f.lines)).collect();
        assert_eq!(
            summary,
            vec![("a".into(), 3), ("S::b".into(), 1), ("c".into(), 2)]
        );
    }

    #[test]
    fn invalid_rust_is_an_error_naming_the_file() {
        let err = function_lengths("bad.rs", "fn (").unwrap_err();
        assert!(err.starts_with("bad.rs: "), "{err}");
    }
}
