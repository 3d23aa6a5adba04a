//! InSpec's FilterTable: `where` (by criteria or a block run against each
//! row), `entries`, `raw_data`, `exist?`, `count`, column accessors and
//! custom matchers and properties. Built-in table resources (`users`,
//! `packages`, `processes`, ...) and library resources share it.

use std::rc::Rc;

use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::support::{Column, Table, TableSpec, row_field};
use crate::inspec::value::{RHash, Shared, Value, ruby_eq};

/// Rows from a resource's raw data: an array of hashes (or row structs).
pub fn rows_of(data: &Value) -> Vec<Rc<RHash>> {
    let Value::Array(items) = data else {
        return Vec::new();
    };
    items
        .borrow()
        .iter()
        .filter_map(|r| match r {
            Value::Hash(h) => Some(Rc::new(h.borrow().clone())),
            Value::Row(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// A table over `rows` with these columns (`(accessor, field, simple)`).
pub fn table(display: String, rows: Vec<Rc<RHash>>, columns: &[(&str, &str, bool)]) -> Rc<Table> {
    Rc::new(Table {
        display,
        rows,
        spec: Rc::new(TableSpec {
            columns: columns
                .iter()
                .map(|(n, f, s)| Column {
                    name: (*n).to_string(),
                    field: (*f).to_string(),
                    simple: *s,
                })
                .collect(),
            ..TableSpec::default()
        }),
    })
}

/// A field of a row struct (`entry.name`).
pub fn row_call(row: &Rc<RHash>, name: &str) -> Option<Value> {
    match name {
        "to_h" => Some(Value::hash((**row).clone())),
        "[]" => None,
        _ => row_field(row, name),
    }
}

/// Calls a table member; `None` when it is not one.
///
/// # Errors
/// As a `where` block or a custom member.
pub fn call(it: &Interp<'_>, t: &Rc<Table>, name: &str, args: &Args) -> R<Option<Value>> {
    let entries = || Value::array(t.rows.iter().map(|r| Value::Row(r.clone())).collect());
    Ok(Some(match name {
        "where" => where_(it, t, args)?,
        "entries" | "to_a" => entries(),
        "raw_data" | "params" => {
            Value::array(t.rows.iter().map(|r| Value::hash((**r).clone())).collect())
        }
        "exist?" | "exists?" => Value::Bool(!t.rows.is_empty()),
        "count" | "size" | "length" => Value::Int(i64::try_from(t.rows.len()).unwrap_or(i64::MAX)),
        "empty?" => Value::Bool(t.rows.is_empty()),
        "to_s" => Value::str(&t.display),
        _ => {
            if let Some((_, p)) = t
                .spec
                .matchers
                .iter()
                .chain(t.spec.properties.iter())
                .find(|(n, _)| n == name)
            {
                let mut a = vec![Value::Table(t.clone())];
                a.extend(args.positional().iter().cloned());
                return it.call_proc(p, a, None).map(Some);
            }
            if let Some(col) = t.column(name) {
                if let Some(v) = args.get(0) {
                    let crit = RHash::from_pairs([(Value::sym(&col.field), v.clone())]);
                    return criteria(it, t, &crit).map(|t| Some(Value::Table(t)));
                }
                return it.new_array(t.values(col)).map(Some);
            }
            if matches!(
                name,
                "each"
                    | "map"
                    | "select"
                    | "reject"
                    | "any?"
                    | "all?"
                    | "none?"
                    | "find"
                    | "first"
                    | "last"
                    | "each_with_index"
                    | "flat_map"
                    | "collect"
                    | "detect"
                    | "sort_by"
                    | "group_by"
                    | "min_by"
                    | "max_by"
                    | "sum"
                    | "include?"
            ) {
                return it
                    .call_method(&entries(), name, args.clone(), it.at.get())
                    .map(Some);
            }
            return Ok(None);
        }
    }))
}

fn where_(it: &Interp<'_>, t: &Rc<Table>, args: &Args) -> R<Value> {
    let mut current = t.clone();
    if let Some(Value::Hash(h)) = args.get(0).cloned().or_else(|| args.pos.last().cloned()) {
        let crit = h.borrow().clone();
        current = criteria(it, &current, &crit)?;
    }
    if let Some(b) = &args.block {
        let mut rows = Vec::new();
        for r in &current.rows {
            it.tick(1)?;
            let keep = it.call_proc_as(b, Vec::new(), None, Some(Value::Row(r.clone())))?;
            if keep.truthy() {
                rows.push(r.clone());
            }
        }
        let source = block_source(it, b);
        current = Rc::new(Table {
            display: format!("{} with {source}", t.display),
            rows,
            spec: t.spec.clone(),
        });
    }
    Ok(Value::Table(current))
}

fn block_source(it: &Interp<'_>, b: &crate::inspec::interp::Proc) -> String {
    use crate::inspec::interp::ProcBody;
    let ProcBody::Block { block, .. } = &b.body else {
        return "block".into();
    };
    let loc = block.loc;
    let text = it
        .program
        .files
        .get(loc.file as usize)
        .and_then(|f| f.text.get(loc.start as usize..loc.end as usize))
        .unwrap_or("block");
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .or_else(|| t.strip_prefix("do").and_then(|x| x.strip_suffix("end")))
        .unwrap_or(t);
    inner.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Rows whose fields match every criterion: a regex matches the field's
/// text, a proc is called with it, anything else compares with `==`
/// (a number and its decimal text count as equal).
fn criteria(it: &Interp<'_>, t: &Rc<Table>, crit: &RHash) -> R<Rc<Table>> {
    let mut rows = Vec::new();
    let mut desc = Vec::new();
    for (k, v) in crit.entries() {
        let field = t
            .column(&k.to_s())
            .map_or_else(|| k.to_s(), |c| c.field.clone());
        desc.push(format!("{field} == {}", v.inspect()));
    }
    for r in &t.rows {
        it.tick(1)?;
        let mut keep = true;
        for (k, want) in crit.entries() {
            let field = t
                .column(&k.to_s())
                .map_or_else(|| k.to_s(), |c| c.field.clone());
            let got = row_field(r, &field).unwrap_or(Value::Nil);
            let ok = match want {
                Value::Regex(re) => re.re.is_match(&got.to_s()),
                Value::Proc(p) => it.call_proc(p, vec![got.clone()], None)?.truthy(),
                Value::Unknown => true,
                w => {
                    ruby_eq(&got, w)
                        || matches!(
                            (&got, w),
                            (Value::Int(_), Value::Str(_)) | (Value::Str(_), Value::Int(_))
                        ) && got.to_s() == w.to_s()
                }
            };
            if !ok {
                keep = false;
                break;
            }
        }
        if keep {
            rows.push(r.clone());
        }
    }
    Ok(Rc::new(Table {
        display: format!("{} with {}", t.display, desc.join(" and ")),
        rows,
        spec: t.spec.clone(),
    }))
}

/// Configures a `FilterTable.create` factory in a library class body.
///
/// # Errors
/// Never in practice; the signature matches the other dispatchers.
pub fn spec_call(
    _it: &Interp<'_>,
    recv: &Value,
    spec: &Shared<TableSpec>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let name_arg = args.get(0).map(Value::to_s).unwrap_or_default();
    match name {
        "register_column" | "add" => {
            if let Some(b) = &args.block {
                spec.borrow_mut().properties.push((name_arg, b.clone()));
            } else {
                let field = args
                    .kw("field")
                    .map_or_else(|| name_arg.clone(), |f| f.to_s());
                let simple = args.kw("style").is_some_and(|s| s.to_s() == "simple");
                spec.borrow_mut().columns.push(Column {
                    name: name_arg,
                    field,
                    simple,
                });
            }
        }
        "register_custom_matcher" | "register_custom_property" => {
            if let Some(b) = &args.block {
                let mut s = spec.borrow_mut();
                if name == "register_custom_matcher" {
                    s.matchers.push((name_arg, b.clone()));
                } else {
                    s.properties.push((name_arg, b.clone()));
                }
            }
        }
        "add_accessor" => {}
        "install_filter_methods_on_resource" | "connect" => {
            spec.borrow_mut().data_method = args.get(1).map(Value::to_s);
            if let Some(Value::Class(crate::inspec::value::ClassRef::User(cls))) = args.get(0) {
                *cls.table.borrow_mut() = Some(spec.clone());
            }
        }
        _ => return Ok(None),
    }
    Ok(Some(recv.clone()))
}
