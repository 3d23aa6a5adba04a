//! Ruby source to the owned [`ast`](super::ast) tree, through ruby-prism
//! (CRuby's own parser), with Ruby 3.3 syntax so that a bare `it` stays
//! RSpec's method and not 3.4's implicit block parameter.
//!
//! Parse errors are reported with `file:line:col`. Constructs outside the
//! supported language are kept as `Unsupported` nodes (see `ast.rs`), and
//! nesting beyond [`MAX_NESTING`] levels becomes one such node, so a hostile
//! file can neither overflow the stack nor stop the rest of the profile.

use ruby_prism::Version;

use super::ast::Node;

mod lower;
mod lower_flow;

use lower::Lower;

/// Deepest syntax nesting lowered; deeper code is an error on its control.
pub const MAX_NESTING: usize = 200;

/// The largest source file accepted (bytes).
pub const MAX_SOURCE_BYTES: usize = 4 << 20;

/// A parse error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// prism's message.
    pub message: String,
}

/// Byte offset to line/column, for one source text.
pub(super) struct Lines {
    starts: Vec<u32>,
}

impl Lines {
    fn new(text: &[u8]) -> Self {
        let mut starts = vec![0];
        starts.extend(
            memchr::memchr_iter(b'\n', text).map(|i| u32::try_from(i + 1).unwrap_or(u32::MAX)),
        );
        Self { starts }
    }

    pub(super) fn at(&self, offset: u32) -> (u32, u32) {
        let idx = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let line = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        (line, offset - self.starts[idx] + 1)
    }
}

/// Parses one file into a tree whose locations carry `file`.
///
/// # Errors
/// Every syntax error prism reports, with its position.
pub fn parse_ruby(file: u32, text: &str) -> Result<Node, Vec<ParseError>> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(vec![ParseError {
            line: 1,
            col: 1,
            message: format!(
                "file is {} bytes; the limit is {MAX_SOURCE_BYTES}",
                text.len()
            ),
        }]);
    }
    // prism recurses up to 10,000 levels in C; give it room whatever thread we are on.
    stacker::grow(64 << 20, || parse_on_big_stack(file, text))
}

fn parse_on_big_stack(file: u32, text: &str) -> Result<Node, Vec<ParseError>> {
    let options = ruby_prism::Options::default()
        .version(Version::CRuby3_3)
        .build();
    let result = ruby_prism::parse_with_options(text.as_bytes(), &options);
    let lines = Lines::new(text.as_bytes());
    let errors: Vec<ParseError> = result
        .errors()
        .map(|d| {
            let (line, col) = lines.at(d.location().start());
            ParseError {
                line,
                col,
                message: String::from_utf8_lossy(d.message()).into_owned(),
            }
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let lower = Lower { file, lines };
    Ok(lower.node(&result.node(), 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspec::ast::Kind;

    fn kind(src: &str) -> Kind {
        parse_ruby(0, src).expect("parses").kind
    }

    #[test]
    fn it_stays_a_method_call() {
        let Kind::Call(c) = kind("describe x do\n it { should exist }\nend") else {
            panic!("call expected")
        };
        let body = c.block.as_ref().and_then(|b| b.body.clone()).expect("body");
        match &body.kind {
            Kind::Call(it) => assert_eq!(it.name, "it"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = parse_ruby(0, "control 'x' do\n  describe file('/a' do\nend\n").unwrap_err();
        assert!(e.iter().any(|e| e.line == 2), "{e:?}");
    }

    #[test]
    fn deep_nesting_becomes_an_unsupported_node() {
        let src = format!("x = {}1{}", "[".repeat(5000), "]".repeat(5000));
        let node = parse_ruby(0, &src).expect("prism accepts it");
        let mut found = Vec::new();
        node.unsupported(&mut found);
        assert!(found[0].0.contains("nested deeper"), "{found:?}");
    }

    #[test]
    fn backticks_are_refused() {
        let node = parse_ruby(0, "x = `id`").expect("parses");
        let mut found = Vec::new();
        node.unsupported(&mut found);
        assert!(found[0].0.contains("backtick"), "{found:?}");
    }

    #[test]
    fn heredocs_are_dedented() {
        let Kind::SetLocal(_, v) = kind("x = <<~EOS\n    a\n      b\n  EOS\n") else {
            panic!()
        };
        match &v.kind {
            Kind::Str(s) => assert_eq!(s, "a\n  b\n"),
            other => panic!("{other:?}"),
        }
    }
}
