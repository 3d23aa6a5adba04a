//! How every read command prints: one `-o/--output table|json|yaml`
//! convention, so a script written against one command works against the
//! next (`results list`, `results show`, `watch`, `submit`, `profile check`).
//!
//! Records are JSON objects built once per command (the JSON and YAML forms
//! are exactly those objects; timestamps in them are RFC 3339, as in the
//! signed statements); a table shows chosen fields of them. Tables are for
//! people: fitted to the terminal's width with long cells cut short, and
//! coloured only on a terminal and never when `NO_COLOR` is set
//! (<https://no-color.org>). Piped, a table keeps every character.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use serde_json::Value;

/// The output format of a read command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts (one document; `watch` prints one object per line).
    Json,
    /// YAML for scripts (`watch` prints one document per result).
    Yaml,
}

/// The `-o/--output` flag every read command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// One table column: its heading and how a record shows in it.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The heading.
    pub heading: &'static str,
    /// The cell's text for a record (unused for a plain field).
    cell: fn(&Value) -> String,
    /// The record's field shown as is, when the column is just that.
    field: Option<&'static str>,
}

impl Column {
    /// A column showing the record's `field` as is (`-` when absent).
    pub const fn field(heading: &'static str, field: &'static str) -> Self {
        Self {
            heading,
            cell: |_| String::new(),
            field: Some(field),
        }
    }

    /// A column whose cell `cell` derives from the record.
    pub const fn derived(heading: &'static str, cell: fn(&Value) -> String) -> Self {
        Self {
            heading,
            cell,
            field: None,
        }
    }

    /// The cell's text for `record`.
    pub fn text(&self, record: &Value) -> String {
        match self.field {
            Some(field) => field_text(record.get(field)),
            None => (self.cell)(record),
        }
    }
}

/// The text of a record's field for a cell: `-` when absent or empty.
pub fn field_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// What the terminal allows: its width, and whether to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    /// Columns available; `None` when not a terminal (nothing is cut).
    pub width: Option<u16>,
    /// Whether cells may carry colour.
    pub colour: bool,
}

/// The longest a cell gets on a terminal before it is cut with `…`.
const MAX_CELL_CHARS: usize = 48;

impl Terminal {
    /// Standard output's terminal, if it is one.
    pub fn stdout() -> Self {
        let tty = std::io::stdout().is_terminal();
        Self::from(tty, std::env::var_os("NO_COLOR").as_deref(), || {
            comfy_table::Table::new().width()
        })
    }

    /// The rule, apart from the process: colour on a terminal unless
    /// `NO_COLOR` is set to anything non-empty.
    pub fn from(
        tty: bool,
        no_color: Option<&std::ffi::OsStr>,
        width: impl FnOnce() -> Option<u16>,
    ) -> Self {
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        Self {
            width: if tty { width().or(Some(100)) } else { None },
            colour: tty && !no_color,
        }
    }
}

/// Prints `records` in `format` (a table of `columns` for people).
///
/// # Errors
/// When stdout cannot take YAML (never for JSON values).
pub fn print_records(format: OutputFormat, columns: &[Column], records: &[Value]) -> Result<()> {
    match format {
        OutputFormat::Table => print!("{}", table(columns, records, Terminal::stdout())),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(records)?),
        OutputFormat::Yaml => print!("{}", yaml(&Value::Array(records.to_vec()))?),
    }
    Ok(())
}

/// Prints one record in `format` (a two-column table of its fields).
///
/// # Errors
/// As [`print_records`].
pub fn print_record(format: OutputFormat, record: &Value) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let rows: Vec<Value> = record
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| serde_json::json!({"field": k, "value": v}))
                .collect();
            let columns = [
                Column::field("FIELD", "field"),
                Column::field("VALUE", "value"),
            ];
            print!("{}", table(&columns, &rows, Terminal::stdout()));
        }
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(record)?),
        OutputFormat::Yaml => print!("{}", yaml(record)?),
    }
    Ok(())
}

/// One record of a stream (`watch`): a table line (the heading before the
/// first), a JSON line, or a YAML document.
///
/// # Errors
/// As [`print_records`].
pub fn stream_line(
    format: OutputFormat,
    columns: &[Column],
    record: &Value,
    first: bool,
) -> Result<String> {
    Ok(match format {
        OutputFormat::Table => {
            let mut line = String::new();
            if first {
                line.push_str(&fixed_line(columns.iter().map(|c| c.heading.to_owned())));
                line.push('\n');
            }
            line.push_str(&fixed_line(columns.iter().map(|c| c.text(record))));
            line
        }
        OutputFormat::Json => serde_json::to_string(record)?,
        OutputFormat::Yaml => format!("---\n{}", yaml(record)?.trim_end()),
    })
}

/// `table` for people: fitted to `terminal`, long cells cut, outcome words
/// coloured when allowed.
pub fn table(columns: &[Column], records: &[Value], terminal: Terminal) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    match terminal.width {
        Some(width) => {
            t.set_content_arrangement(ContentArrangement::Dynamic);
            t.set_width(width);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    if terminal.colour {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(columns.iter().map(|c| Cell::new(c.heading)));
    // Two spaces between columns and none before the first, like kubectl.
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for record in records {
        t.add_row(columns.iter().map(|c| {
            let mut text = c.text(record);
            if terminal.width.is_some() && text.chars().count() > MAX_CELL_CHARS {
                text = text.chars().take(MAX_CELL_CHARS - 1).collect::<String>() + "…";
            }
            let cell = Cell::new(&text);
            match colour_of(&text) {
                Some(colour) if terminal.colour => cell.fg(colour),
                _ => cell,
            }
        }));
    }
    let mut text = t.to_string();
    // The NOTHING preset pads every line to the widest; scripts that grep
    // tables and people copying from them are better without the tail.
    text = text
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}

/// A spinner on standard error while a call runs, on a terminal only
/// (indicatif draws nothing when stderr is not one; the command's own
/// lines are the plain progress then). Cleared with `finish_and_clear`.
pub fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// An RFC 3339 timestamp (UTC, as in the signed statements).
pub fn rfc3339(seconds: i64, nanos: i32) -> String {
    jiff::Timestamp::new(seconds, nanos)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn yaml(value: &Value) -> Result<String> {
    yaml_serde::to_string(value).context("writing YAML")
}

/// Lines of a stream cannot be measured in advance: fixed widths, enough
/// for a scan id and a usual target.
fn fixed_line(cells: impl Iterator<Item = String>) -> String {
    let widths = [26usize, 40, 9, 7, 9, 9];
    cells
        .enumerate()
        .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join("  ")
        .trim_end()
        .to_owned()
}

fn colour_of(text: &str) -> Option<Color> {
    match text {
        "completed" | "pass" | "passed" | "ok" => Some(Color::Green),
        "failed" | "FAIL" | "error" => Some(Color::Red),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 2] = [
        Column::field("SCAN ID", "scanId"),
        Column::derived("OUTCOME", |r| field_text(r.pointer("/outcome"))),
    ];

    fn records() -> Vec<Value> {
        vec![
            serde_json::json!({"scanId": "01J".to_owned() + &"X".repeat(80), "outcome": "failed"}),
            serde_json::json!({"scanId": "01K", "outcome": "completed"}),
        ]
    }

    #[test]
    fn piped_tables_keep_every_character_and_carry_no_colour() {
        let piped = Terminal::from(false, None, || Some(40));
        assert_eq!(
            piped,
            Terminal {
                width: None,
                colour: false
            }
        );
        let text = table(&COLUMNS, &records(), piped);
        assert!(text.contains(&"X".repeat(80)), "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.starts_with("SCAN ID"), "{text}");
    }

    #[test]
    fn terminal_tables_fit_the_width_cut_long_cells_and_colour_outcomes() {
        let tty = Terminal::from(true, None, || Some(60));
        let text = table(&COLUMNS, &records(), tty);
        assert!(text.contains('…'), "{text}");
        assert!(!text.contains(&"X".repeat(80)), "{text}");
        assert!(text.contains("\u{1b}["), "coloured on a terminal: {text:?}");
        for line in text.lines() {
            let visible: String = strip_ansi(line);
            assert!(
                visible.chars().count() <= 60,
                "{visible:?} is wider than 60"
            );
        }
    }

    #[test]
    fn no_color_turns_colour_off_even_on_a_terminal() {
        let set = Terminal::from(true, Some(std::ffi::OsStr::new("1")), || Some(80));
        assert!(!set.colour);
        assert!(!table(&COLUMNS, &records(), set).contains('\u{1b}'));
        let empty = Terminal::from(true, Some(std::ffi::OsStr::new("")), || Some(80));
        assert!(
            empty.colour,
            "an empty NO_COLOR does not count (no-color.org)"
        );
    }

    #[test]
    fn streams_print_json_lines_yaml_documents_and_table_lines() {
        let r = &records()[1];
        assert_eq!(
            stream_line(OutputFormat::Json, &COLUMNS, r, true).unwrap(),
            r#"{"outcome":"completed","scanId":"01K"}"#
        );
        let y = stream_line(OutputFormat::Yaml, &COLUMNS, r, false).unwrap();
        assert!(y.starts_with("---\n") && y.contains("scanId: 01K"), "{y}");
        let t = stream_line(OutputFormat::Table, &COLUMNS, r, true).unwrap();
        assert!(t.starts_with("SCAN ID") && t.lines().nth(1).unwrap().starts_with("01K"));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_764_698_400, 0), "2025-12-02T18:00:00Z");
        assert_eq!(rfc3339(0, 500_000_000), "1970-01-01T00:00:00.5Z");
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
