//! Lowering prism nodes: literals, variables, calls, blocks and parameters.

use std::sync::Arc;

use ruby_prism::Node as P;

use super::{Lines, MAX_NESTING};
use crate::inspec::ast::{Arg, Block, Call, Kind, Loc, Node, Param, Params, Part, RegexFlags};

pub(super) struct Lower {
    pub(super) file: u32,
    pub(super) lines: Lines,
}

pub(super) fn name(id: &ruby_prism::ConstantId<'_>) -> String {
    String::from_utf8_lossy(id.as_slice()).into_owned()
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Lower {
    pub(super) fn loc(&self, l: &ruby_prism::Location<'_>) -> Loc {
        let (line, col) = self.lines.at(l.start());
        Loc {
            file: self.file,
            line,
            col,
            start: l.start(),
            end: l.end(),
        }
    }

    pub(super) fn boxed(&self, n: &P<'_>, d: usize) -> Box<Node> {
        Box::new(self.node(n, d))
    }

    pub(super) fn opt(&self, n: Option<P<'_>>, d: usize) -> Option<Box<Node>> {
        n.map(|n| self.boxed(&n, d))
    }

    pub(super) fn stmts(
        &self,
        s: Option<ruby_prism::StatementsNode<'_>>,
        d: usize,
    ) -> Option<Box<Node>> {
        s.map(|s| self.boxed(&s.as_node(), d))
    }

    /// Lowers one node; `d` is the nesting depth.
    pub(super) fn node(&self, n: &P<'_>, d: usize) -> Node {
        let loc = self.loc(&n.location());
        if d > MAX_NESTING {
            return Node::new(
                Kind::Unsupported(format!("code nested deeper than {MAX_NESTING} levels")),
                loc,
            );
        }
        let d = d + 1;
        let kind = self
            .literal(n, d)
            .or_else(|| self.variable(n, d))
            .or_else(|| self.control(n, d))
            .or_else(|| self.definition(n, d))
            .or_else(|| self.assignment(n, d))
            .unwrap_or_else(|| Kind::Unsupported(unsupported_name(n)));
        Node::new(kind, loc)
    }

    pub(super) fn parts(&self, list: ruby_prism::NodeList<'_>, d: usize) -> Vec<Part> {
        list.iter()
            .map(|p| {
                if let Some(s) = p.as_string_node() {
                    Part::Lit(text(s.unescaped()))
                } else if let Some(e) = p.as_embedded_statements_node() {
                    let loc = self.loc(&e.location());
                    Part::Code(
                        self.stmts(e.statements(), d)
                            .map_or(Node::new(Kind::Nil, loc), |b| *b),
                    )
                } else if let Some(v) = p.as_embedded_variable_node() {
                    Part::Code(self.node(&v.variable(), d))
                } else {
                    Part::Code(self.node(&p, d))
                }
            })
            .collect()
    }

    pub(super) fn literal(&self, n: &P<'_>, d: usize) -> Option<Kind> {
        Some(if n.as_nil_node().is_some() {
            Kind::Nil
        } else if n.as_true_node().is_some() {
            Kind::True
        } else if n.as_false_node().is_some() {
            Kind::False
        } else if n.as_self_node().is_some() {
            Kind::SelfRef
        } else if let Some(i) = n.as_integer_node() {
            integer(&i.value()).map_or_else(
                || Kind::Unsupported("an integer beyond 64 bits".into()),
                Kind::Int,
            )
        } else if let Some(f) = n.as_float_node() {
            Kind::Float(f.value())
        } else if let Some(s) = n.as_string_node() {
            Kind::Str(text(s.unescaped()))
        } else if let Some(s) = n.as_interpolated_string_node() {
            let parts = self.parts(s.parts(), d);
            match literal_only(&parts) {
                Some(s) => Kind::Str(s),
                None => Kind::Interp(parts),
            }
        } else if let Some(s) = n.as_symbol_node() {
            Kind::Sym(text(s.unescaped()))
        } else if let Some(s) = n.as_interpolated_symbol_node() {
            let parts = self.parts(s.parts(), d);
            match literal_only(&parts) {
                Some(s) => Kind::Sym(s),
                None => Kind::DSym(parts),
            }
        } else if let Some(r) = n.as_regular_expression_node() {
            let flags = RegexFlags {
                ignore_case: r.is_ignore_case(),
                extended: r.is_extended(),
                multi_line: r.is_multi_line(),
            };
            // Ruby keeps escapes in the regex source; unescaped() does too for regexes.
            Kind::Regex(vec![Part::Lit(text(r.content_loc().as_slice()))], flags)
        } else if let Some(r) = n.as_interpolated_regular_expression_node() {
            let flags = RegexFlags {
                ignore_case: r.is_ignore_case(),
                extended: r.is_extended(),
                multi_line: r.is_multi_line(),
            };
            let parts = r
                .parts()
                .iter()
                .map(|p| match p.as_string_node() {
                    Some(s) => Part::Lit(text(s.content_loc().as_slice())),
                    None => self.parts_one(&p, d),
                })
                .collect();
            Kind::Regex(parts, flags)
        } else if let Some(a) = n.as_array_node() {
            Kind::Array(a.elements().iter().map(|e| self.node(&e, d)).collect())
        } else if let Some(h) = n.as_hash_node() {
            Kind::Hash(self.pairs(h.elements(), d))
        } else if let Some(h) = n.as_keyword_hash_node() {
            Kind::Hash(self.pairs(h.elements(), d))
        } else if let Some(s) = n.as_splat_node() {
            match s.expression() {
                Some(e) => Kind::Splat(self.boxed(&e, d)),
                None => Kind::Unsupported("anonymous splat".into()),
            }
        } else if let Some(r) = n.as_range_node() {
            Kind::Range(
                self.opt(r.left(), d),
                self.opt(r.right(), d),
                r.is_exclude_end(),
            )
        } else if let Some(f) = n.as_source_file_node() {
            Kind::Str(text(f.filepath()))
        } else if n.as_x_string_node().is_some() || n.as_interpolated_x_string_node().is_some() {
            Kind::Unsupported(
                "a backtick command (run commands through the `command` resource)".into(),
            )
        } else {
            return None;
        })
    }

    pub(super) fn parts_one(&self, p: &P<'_>, d: usize) -> Part {
        let loc = self.loc(&p.location());
        if let Some(e) = p.as_embedded_statements_node() {
            Part::Code(
                self.stmts(e.statements(), d)
                    .map_or(Node::new(Kind::Nil, loc), |b| *b),
            )
        } else if let Some(v) = p.as_embedded_variable_node() {
            Part::Code(self.node(&v.variable(), d))
        } else {
            Part::Code(self.node(p, d))
        }
    }

    pub(super) fn pairs(
        &self,
        list: ruby_prism::NodeList<'_>,
        d: usize,
    ) -> Vec<(Option<Node>, Node)> {
        list.iter()
            .map(|e| {
                if let Some(a) = e.as_assoc_node() {
                    (Some(self.node(&a.key(), d)), self.node(&a.value(), d))
                } else if let Some(s) = e.as_assoc_splat_node() {
                    let loc = self.loc(&s.location());
                    let v = s.value().map_or_else(
                        || Node::new(Kind::Unsupported("anonymous **".into()), loc),
                        |v| self.node(&v, d),
                    );
                    (None, v)
                } else {
                    (None, self.node(&e, d))
                }
            })
            .collect()
    }

    pub(super) fn variable(&self, n: &P<'_>, d: usize) -> Option<Kind> {
        Some(if let Some(v) = n.as_local_variable_read_node() {
            Kind::Local(name(&v.name()))
        } else if let Some(v) = n.as_local_variable_write_node() {
            Kind::SetLocal(name(&v.name()), self.boxed(&v.value(), d))
        } else if let Some(v) = n.as_instance_variable_read_node() {
            Kind::Ivar(name(&v.name()))
        } else if let Some(v) = n.as_instance_variable_write_node() {
            Kind::SetIvar(name(&v.name()), self.boxed(&v.value(), d))
        } else if let Some(c) = n.as_constant_read_node() {
            Kind::Const(vec![name(&c.name())])
        } else if n.as_constant_path_node().is_some() {
            match const_path(n) {
                Some(p) => Kind::Const(p),
                None => Kind::Unsupported("a dynamic constant path".into()),
            }
        } else if let Some(c) = n.as_constant_write_node() {
            Kind::SetConst(name(&c.name()), self.boxed(&c.value(), d))
        } else if let Some(r) = n.as_numbered_reference_read_node() {
            Kind::NthRef(r.number())
        } else if n.as_global_variable_read_node().is_some()
            || n.as_class_variable_read_node().is_some()
        {
            Kind::Unsupported(format!(
                "global or class variable {}",
                text(n.location().as_slice())
            ))
        } else if let Some(i) = n.as_implicit_node() {
            return Some(self.node(&i.value(), d).kind);
        } else if let Some(c) = n.as_call_node() {
            self.call(&c, d)
        } else {
            return None;
        })
    }

    pub(super) fn args(&self, a: Option<ruby_prism::ArgumentsNode<'_>>, d: usize) -> Vec<Arg> {
        let mut out = Vec::new();
        let Some(a) = a else { return out };
        for arg in a.arguments().iter() {
            if let Some(h) = arg.as_keyword_hash_node() {
                for (k, v) in self.pairs(h.elements(), d) {
                    match k {
                        Some(k) => out.push(Arg::Pair(k, v)),
                        None => out.push(Arg::DoubleSplat(v)),
                    }
                }
            } else if let Some(s) = arg.as_splat_node() {
                let loc = self.loc(&s.location());
                out.push(Arg::Splat(s.expression().map_or_else(
                    || Node::new(Kind::Unsupported("anonymous splat".into()), loc),
                    |e| self.node(&e, d),
                )));
            } else if let Some(b) = arg.as_block_argument_node() {
                if let Some(e) = b.expression() {
                    out.push(Arg::Block(self.node(&e, d)));
                }
            } else {
                out.push(Arg::Pos(self.node(&arg, d)));
            }
        }
        out
    }

    pub(super) fn call(&self, c: &ruby_prism::CallNode<'_>, d: usize) -> Kind {
        let method = name(&c.name());
        let recv = c.receiver().map(|r| self.node(&r, d));
        let mut args = self.args(c.arguments(), d);
        let mut block = None;
        if let Some(b) = c.block() {
            if let Some(bn) = b.as_block_node() {
                block = Some(Arc::new(self.block(
                    bn.parameters(),
                    bn.body(),
                    &bn.location(),
                    d,
                )));
            } else if let Some(ba) = b.as_block_argument_node()
                && let Some(e) = ba.expression()
            {
                args.push(Arg::Block(self.node(&e, d)));
            }
        }
        if method == "!"
            && args.is_empty()
            && let Some(r) = recv
        {
            return Kind::Not(Box::new(r));
        }
        Kind::Call(Box::new(Call {
            recv,
            name: method,
            args,
            block,
            safe_nav: c.is_safe_navigation(),
            vcall: c.is_variable_call(),
        }))
    }

    pub(super) fn block(
        &self,
        params: Option<P<'_>>,
        body: Option<P<'_>>,
        loc: &ruby_prism::Location<'_>,
        d: usize,
    ) -> Block {
        let mut p = Params::default();
        if let Some(params) = params {
            if let Some(bp) = params.as_block_parameters_node() {
                if let Some(inner) = bp.parameters() {
                    p = self.params(&inner, d);
                }
            } else if let Some(np) = params.as_numbered_parameters_node() {
                p.numbered = np.maximum();
            }
        }
        Block {
            params: p,
            body: body.map(|b| Arc::new(self.node(&b, d))),
            loc: self.loc(loc),
        }
    }

    pub(super) fn param(&self, n: &P<'_>) -> Param {
        if let Some(r) = n.as_required_parameter_node() {
            Param::Name(name(&r.name()))
        } else if let Some(m) = n.as_multi_target_node() {
            Param::Destructure(m.lefts().iter().map(|l| self.param(&l)).collect())
        } else {
            Param::Name("_".into())
        }
    }

    pub(super) fn params(&self, p: &ruby_prism::ParametersNode<'_>, d: usize) -> Params {
        let rest_name = |n: Option<P<'_>>| {
            n.map(|n| {
                n.as_rest_parameter_node()
                    .and_then(|r| r.name())
                    .map_or_else(|| "*".to_string(), |id| name(&id))
            })
        };
        Params {
            required: p.requireds().iter().map(|r| self.param(&r)).collect(),
            optional: p
                .optionals()
                .iter()
                .filter_map(|o| o.as_optional_parameter_node())
                .map(|o| (name(&o.name()), self.node(&o.value(), d)))
                .collect(),
            rest: rest_name(p.rest()),
            post: p.posts().iter().map(|r| self.param(&r)).collect(),
            keywords: p
                .keywords()
                .iter()
                .filter_map(|k| {
                    if let Some(o) = k.as_optional_keyword_parameter_node() {
                        Some((name(&o.name()), Some(self.node(&o.value(), d))))
                    } else {
                        k.as_required_keyword_parameter_node()
                            .map(|r| (name(&r.name()), None))
                    }
                })
                .collect(),
            keyword_rest: p.keyword_rest().and_then(|k| {
                k.as_keyword_rest_parameter_node()
                    .map(|k| k.name().map_or_else(|| "**".to_string(), |id| name(&id)))
            }),
            block: p
                .block()
                .and_then(|b| b.as_block_parameter_node())
                .and_then(|b| b.name())
                .map(|id| name(&id)),
            numbered: 0,
        }
    }
}

/// The text of parts that are all literal (heredocs, adjacent literals).
pub(super) fn literal_only(parts: &[Part]) -> Option<String> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Lit(s) => out.push_str(s),
            Part::Code(_) => return None,
        }
    }
    Some(out)
}

/// `A::B::C` as segments, when every part is a plain constant.
pub(super) fn const_path(n: &P<'_>) -> Option<Vec<String>> {
    if let Some(c) = n.as_constant_read_node() {
        return Some(vec![name(&c.name())]);
    }
    let p = n.as_constant_path_node()?;
    let mut out = match p.parent() {
        Some(parent) => const_path(&parent)?,
        None => Vec::new(),
    };
    out.push(name(&p.name()?));
    Some(out)
}

pub(super) fn integer(i: &ruby_prism::Integer<'_>) -> Option<i64> {
    let (negative, digits) = i.to_u32_digits();
    let mut v: u64 = 0;
    for (n, &dgt) in digits.iter().enumerate() {
        if n > 1 {
            return None;
        }
        v |= u64::from(dgt) << (32 * n);
    }
    let v = i64::try_from(v).ok()?;
    Some(if negative { -v } else { v })
}

/// A readable name for a node kind we do not lower.
pub(super) fn unsupported_name(n: &P<'_>) -> String {
    let dbg = format!("{n:?}");
    let kind = dbg
        .split([' ', '{', '('])
        .next()
        .unwrap_or("node")
        .to_string();
    let snippet: String = text(n.location().as_slice()).chars().take(40).collect();
    format!("{} (`{}`)", kind.trim_end_matches("Node"), snippet.trim())
}
