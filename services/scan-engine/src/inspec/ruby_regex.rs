//! Ruby regular expressions on Rust's linear-time `regex` engine.
//!
//! Ruby's syntax is translated (`^`/`$` are always line anchors, `m` means
//! dot-matches-newline, `\h` is a hex digit, `\Z` allows a final newline).
//! Features that need a backtracking engine (look-around, back-references,
//! atomic groups, possessive quantifiers) are refused with a clear error:
//! that is what makes a regex bomb in a hostile profile impossible, since
//! every match here runs in time linear in its input.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::{Regex, RegexBuilder};

use super::ast::RegexFlags;

/// A compiled Ruby regex with its source, for `inspect` and equality.
#[derive(Debug, Clone)]
pub struct RubyRegex {
    /// The Ruby source between the slashes.
    pub source: String,
    /// Its options.
    pub flags: RegexFlags,
    /// The translated, compiled form.
    pub re: Regex,
}

impl RubyRegex {
    /// Compiles (through a bounded, process-wide cache).
    ///
    /// # Errors
    /// A message naming the unsupported feature or the syntax problem.
    pub fn new(source: &str, flags: RegexFlags) -> Result<Self, String> {
        static CACHE: OnceLock<Mutex<HashMap<(String, u8), Regex>>> = OnceLock::new();
        let key = (
            source.to_string(),
            u8::from(flags.ignore_case)
                | u8::from(flags.extended) << 1
                | u8::from(flags.multi_line) << 2,
        );
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(re) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Self {
                source: source.to_string(),
                flags,
                re: re.clone(),
            });
        }
        let translated = translate(source, flags)?;
        let re = RegexBuilder::new(&translated)
            .size_limit(2 << 20)
            .dfa_size_limit(4 << 20)
            .nest_limit(64)
            .build()
            .map_err(|e| format!("invalid regular expression /{source}/: {e}"))?;
        let mut guard = cache.lock().unwrap_or_else(|p| p.into_inner());
        if guard.len() > 4096 {
            guard.clear();
        }
        guard.insert(key, re.clone());
        Ok(Self {
            source: source.to_string(),
            flags,
            re,
        })
    }

    /// A regex matching `text` literally (`Regexp.escape`).
    ///
    /// # Errors
    /// When the escaped text is too large to compile.
    pub fn literal(text: &str) -> Result<Self, String> {
        Self::new(&escape(text), RegexFlags::default())
    }

    fn flag_letters(&self) -> String {
        let mut s = String::new();
        if self.flags.multi_line {
            s.push('m');
        }
        if self.flags.ignore_case {
            s.push('i');
        }
        if self.flags.extended {
            s.push('x');
        }
        s
    }

    /// `/source/flags`
    pub fn inspect(&self) -> String {
        format!("/{}/{}", self.source, self.flag_letters())
    }

    /// Ruby's `Regexp#to_s`: `(?flags-flags:source)`.
    pub fn to_s(&self) -> String {
        let on = self.flag_letters();
        let off: String = ['m', 'i', 'x']
            .iter()
            .filter(|c| !on.contains(**c))
            .collect();
        if off.is_empty() {
            format!("(?{on}:{})", self.source)
        } else {
            format!("(?{on}-{off}:{})", self.source)
        }
    }
}

/// `Regexp.escape`.
pub fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '.' | '*' | '?' | '+' | '^' | '$' | '|' | '(' | ')' | '[' | ']' | '{' | '}' | '\\'
            | '/' | '-' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' ' => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

fn refuse(source: &str, what: &str) -> String {
    format!(
        "regular expression /{source}/ uses {what}, which needs a backtracking engine; \
         profile regexes run on a linear-time engine, so rewrite it without {what}"
    )
}

/// Ruby regex source to Rust regex syntax.
///
/// # Errors
/// When the source uses a feature the linear-time engine cannot run.
pub fn translate(source: &str, flags: RegexFlags) -> Result<String, String> {
    let mut out = String::from("(?m)");
    if flags.ignore_case {
        out.push_str("(?i)");
    }
    if flags.multi_line {
        out.push_str("(?s)");
    }
    if flags.extended {
        out.push_str("(?x)");
    }
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    let mut class_depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err(format!(
                        "regular expression /{source}/ ends with a backslash"
                    ));
                };
                i += 1;
                escape_seq(n, class_depth > 0, source, &mut out)?;
            }
            '[' => {
                class_depth += 1;
                out.push('[');
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            '(' if class_depth == 0 && chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i + 2..].iter().take(3).collect();
                if rest.starts_with('=')
                    || rest.starts_with('!')
                    || rest.starts_with("<=")
                    || rest.starts_with("<!")
                {
                    return Err(refuse(source, "look-around"));
                }
                if rest.starts_with('>') {
                    return Err(refuse(source, "an atomic group"));
                }
                if rest.starts_with('#') {
                    return Err(refuse(source, "an inline comment group"));
                }
                // Inline options: Ruby's `m` is Rust's `s`.
                out.push_str("(?");
                i += 2;
                while i < chars.len() && chars[i] != ':' && chars[i] != ')' && chars[i] != '<' {
                    match chars[i] {
                        'm' => out.push('s'),
                        c @ ('i' | 'x' | '-') => out.push(c),
                        c => out.push(c),
                    }
                    i += 1;
                }
                continue;
            }
            '+' | '*' | '?' | '}' if class_depth == 0 && chars.get(i + 1) == Some(&'+') => {
                return Err(refuse(source, "a possessive quantifier"));
            }
            c => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

fn escape_seq(n: char, in_class: bool, source: &str, out: &mut String) -> Result<(), String> {
    match n {
        'h' => out.push_str(if in_class { "0-9a-fA-F" } else { "[0-9a-fA-F]" }),
        'H' if !in_class => out.push_str("[^0-9a-fA-F]"),
        'Z' if !in_class => out.push_str(r"(?:\n?\z)"),
        'e' => out.push_str(r"\x1b"),
        '1'..='9' => return Err(refuse(source, "a back-reference")),
        'k' => return Err(refuse(source, "a named back-reference")),
        'G' | 'K' => return Err(refuse(source, &format!("\\{n}"))),
        '/' => out.push('/'),
        c if c.is_ascii_alphanumeric() => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_ascii() => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(src: &str, text: &str) -> bool {
        RubyRegex::new(src, RegexFlags::default())
            .expect("compiles")
            .re
            .is_match(text)
    }

    #[test]
    fn ruby_anchors_and_classes() {
        assert!(m("^b$", "a\nb\nc"), "^ and $ are line anchors in Ruby");
        assert!(!m(r"\Ab", "a\nb"));
        assert!(m(r"\A\h+\Z", "cafe\n"));
        assert!(m(r"a\/b", "a/b"));
        assert!(m("[[:digit:]]+", "x42"));
        let dotall = RubyRegex::new(
            "a.b",
            RegexFlags {
                multi_line: true,
                ..RegexFlags::default()
            },
        )
        .expect("compiles");
        assert!(dotall.re.is_match("a\nb"));
    }

    #[test]
    fn backtracking_features_are_refused_by_name() {
        for (src, what) in [
            ("(?=a)", "look-around"),
            ("(?<!a)b", "look-around"),
            (r"(a)\1", "back-reference"),
            ("(?>a+)", "atomic group"),
            ("a++", "possessive"),
        ] {
            let e = RubyRegex::new(src, RegexFlags::default()).unwrap_err();
            assert!(e.contains(what), "{src}: {e}");
        }
    }

    #[test]
    fn a_classic_regex_bomb_runs_in_linear_time() {
        let bomb = RubyRegex::new("^(a+)+$", RegexFlags::default()).expect("compiles");
        let text = format!("{}!", "a".repeat(100_000));
        let t = std::time::Instant::now();
        assert!(!bomb.re.is_match(&text));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn to_s_and_inspect() {
        let r = RubyRegex::new(
            "ab",
            RegexFlags {
                ignore_case: true,
                ..RegexFlags::default()
            },
        )
        .expect("compiles");
        assert_eq!(r.inspect(), "/ab/i");
        assert_eq!(r.to_s(), "(?i-mx:ab)");
    }
}
