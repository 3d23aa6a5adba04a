//! Profile inputs: the values declared in `inspec.yml`, overridden at scan
//! time (`--input name=value`), and substituted into control files as
//! `{{ name }}` before the controls are read.

use std::collections::BTreeSet;

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};

use super::{Input, InputOverrides, InputValue, Location, ProfileProblem};

/// The declared inputs with overrides applied; problems are added to
/// `problems` (an unknown override names the declared inputs).
pub(super) fn parse_inputs(
    meta: &Node,
    overrides: &InputOverrides,
    problems: &mut Vec<ProfileProblem>,
) -> Vec<Input> {
    let at = |span: &marked_yaml::Span| {
        span.start().map(|m| Location {
            file: "inspec.yml".into(),
            line: m.line(),
            column: m.column(),
        })
    };
    let mut inputs = Vec::new();
    let mut names = BTreeSet::new();
    if let Some(seq) = meta.as_mapping().and_then(|m| m.get_sequence("inputs")) {
        for item in seq.iter() {
            let Some(map) = item.as_mapping() else {
                problems.push(ProfileProblem {
                    location: at(item.span()),
                    message: "each input must be a mapping with `name` and `value`".into(),
                });
                continue;
            };
            let Some(name) = map.get_scalar("name") else {
                problems.push(ProfileProblem {
                    location: at(map.span()),
                    message: "input is missing `name`".into(),
                });
                continue;
            };
            for key in map.keys() {
                if !matches!(
                    key.as_str(),
                    "name" | "value" | "description" | "type" | "required"
                ) {
                    problems.push(ProfileProblem {
                        location: at(key.span()),
                        message: format!("unknown input field `{}`", key.as_str()),
                    });
                }
            }
            let value = match map.get_node("value") {
                Some(Node::Scalar(s)) => InputValue::Scalar(s.as_str().to_string()),
                Some(Node::Sequence(seq)) => InputValue::List(
                    seq.iter()
                        .filter_map(|n| n.as_scalar().map(|s| s.as_str().to_string()))
                        .collect(),
                ),
                Some(other) => {
                    problems.push(ProfileProblem {
                        location: at(other.span()),
                        message: "input value must be a string or a list of strings".into(),
                    });
                    continue;
                }
                None => {
                    problems.push(ProfileProblem {
                        location: at(name.span()),
                        message: format!("input `{}` has no default `value`", name.as_str()),
                    });
                    continue;
                }
            };
            names.insert(name.as_str().to_string());
            inputs.push(Input {
                name: name.as_str().to_string(),
                description: map
                    .get_scalar("description")
                    .map(|s| s.as_str().to_string()),
                value,
            });
        }
    }
    for (k, v) in overrides {
        match inputs.iter_mut().find(|i| &i.name == k) {
            Some(input) => {
                input.value = match input.value {
                    // The YAML front end never makes typed inputs.
                    InputValue::Scalar(_) | InputValue::Typed(_) => InputValue::Scalar(v.clone()),
                    InputValue::List(_) => InputValue::List(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect(),
                    ),
                }
            }
            None => problems.push(ProfileProblem {
                location: None,
                message: format!(
                    "--input {k}: the profile declares no such input (declared: {})",
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }
    inputs
}

/// Replaces `{{ name }}` in every scalar with the input's value. A scalar that
/// is exactly one reference to a list input becomes a sequence, so list inputs
/// can feed list-valued check fields.
pub(super) fn substitute_inputs(
    node: &mut Node,
    inputs: &[Input],
    report: &mut dyn FnMut(&marked_yaml::Span, String),
) {
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !text.contains("{{") {
                return;
            }
            let span = *s.span();
            let trimmed = text.trim();
            if let Some(name) = trimmed
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
                .map(str::trim)
                .filter(|n| !n.contains("{{") && !n.contains("}}"))
            {
                match inputs.iter().find(|i| i.name == name) {
                    Some(Input {
                        value: InputValue::List(list),
                        ..
                    }) => {
                        let seq = list
                            .iter()
                            .map(|v| Node::from(MarkedScalarNode::new(span, v.clone())))
                            .collect();
                        *node = Node::from(MarkedSequenceNode::new(span, seq));
                        return;
                    }
                    Some(Input {
                        value: InputValue::Scalar(v),
                        ..
                    }) => {
                        *node = Node::from(MarkedScalarNode::new(span, v.clone()));
                        return;
                    }
                    Some(Input {
                        value: InputValue::Typed(v),
                        ..
                    }) => {
                        *node = Node::from(MarkedScalarNode::new(span, v.to_string()));
                        return;
                    }
                    None => {
                        report(
                            &span,
                            format!("input `{name}` is not declared in inspec.yml"),
                        );
                        return;
                    }
                }
            }
            // Embedded references: scalar inputs only.
            let mut out = String::new();
            let mut rest = text;
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else {
                    report(&span, "unterminated `{{` input reference".into());
                    return;
                };
                let name = after[..end].trim();
                match inputs.iter().find(|i| i.name == name) {
                    Some(Input {
                        value: InputValue::Scalar(v),
                        ..
                    }) => out.push_str(v),
                    Some(_) => {
                        report(
                            &span,
                            format!("list input `{name}` can only be used as a whole value"),
                        );
                        return;
                    }
                    None => {
                        report(
                            &span,
                            format!("input `{name}` is not declared in inspec.yml"),
                        );
                        return;
                    }
                }
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            *node = Node::from(MarkedScalarNode::new(span, out));
        }
        Node::Sequence(seq) => {
            for item in seq.iter_mut() {
                substitute_inputs(item, inputs, report);
            }
        }
        Node::Mapping(map) => {
            let map: &mut MarkedMappingNode = map;
            for (_, v) in map.iter_mut() {
                substitute_inputs(v, inputs, report);
            }
        }
    }
}
