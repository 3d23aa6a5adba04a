//! Ruby source to the owned [`ast`](super::ast) tree, through ruby-prism
//! (CRuby's own parser), with Ruby 3.3 syntax so that a bare `it` stays
//! RSpec's method and not 3.4's implicit block parameter.
//!
//! Parse errors are reported with `file:line:col`. Constructs outside the
//! supported language are kept as `Unsupported` nodes (see `ast.rs`), and
//! nesting beyond [`MAX_NESTING`] levels becomes one such node, so a hostile
//! file can neither overflow the stack nor stop the rest of the profile.

use std::sync::Arc;

use ruby_prism::{Node as P, Version};

use super::ast::{
    Arg, BeginBlock, Block, Call, Kind, Loc, MethodDef, Node, Param, Params, Part, RegexFlags,
    Rescue, Target,
};

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
struct Lines {
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

    fn at(&self, offset: u32) -> (u32, u32) {
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

struct Lower {
    file: u32,
    lines: Lines,
}

fn name(id: &ruby_prism::ConstantId<'_>) -> String {
    String::from_utf8_lossy(id.as_slice()).into_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Lower {
    fn loc(&self, l: &ruby_prism::Location<'_>) -> Loc {
        let (line, col) = self.lines.at(l.start());
        Loc {
            file: self.file,
            line,
            col,
            start: l.start(),
            end: l.end(),
        }
    }

    fn boxed(&self, n: &P<'_>, d: usize) -> Box<Node> {
        Box::new(self.node(n, d))
    }

    fn opt(&self, n: Option<P<'_>>, d: usize) -> Option<Box<Node>> {
        n.map(|n| self.boxed(&n, d))
    }

    fn stmts(&self, s: Option<ruby_prism::StatementsNode<'_>>, d: usize) -> Option<Box<Node>> {
        s.map(|s| self.boxed(&s.as_node(), d))
    }

    /// Lowers one node; `d` is the nesting depth.
    fn node(&self, n: &P<'_>, d: usize) -> Node {
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

    fn parts(&self, list: ruby_prism::NodeList<'_>, d: usize) -> Vec<Part> {
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

    fn literal(&self, n: &P<'_>, d: usize) -> Option<Kind> {
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

    fn parts_one(&self, p: &P<'_>, d: usize) -> Part {
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

    fn pairs(&self, list: ruby_prism::NodeList<'_>, d: usize) -> Vec<(Option<Node>, Node)> {
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

    fn variable(&self, n: &P<'_>, d: usize) -> Option<Kind> {
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

    fn args(&self, a: Option<ruby_prism::ArgumentsNode<'_>>, d: usize) -> Vec<Arg> {
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

    fn call(&self, c: &ruby_prism::CallNode<'_>, d: usize) -> Kind {
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
        if method == "!" && args.is_empty() {
            if let Some(r) = recv {
                return Kind::Not(Box::new(r));
            }
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

    fn block(
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

    fn param(&self, n: &P<'_>) -> Param {
        if let Some(r) = n.as_required_parameter_node() {
            Param::Name(name(&r.name()))
        } else if let Some(m) = n.as_multi_target_node() {
            Param::Destructure(m.lefts().iter().map(|l| self.param(&l)).collect())
        } else {
            Param::Name("_".into())
        }
    }

    fn params(&self, p: &ruby_prism::ParametersNode<'_>, d: usize) -> Params {
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

    fn control(&self, n: &P<'_>, d: usize) -> Option<Kind> {
        Some(if let Some(s) = n.as_statements_node() {
            let mut body: Vec<Node> = s.body().iter().map(|x| self.node(&x, d)).collect();
            if body.len() == 1 {
                return body.pop().map(|b| b.kind);
            }
            Kind::Seq(body)
        } else if let Some(p) = n.as_program_node() {
            return self.control(&p.statements().as_node(), d);
        } else if let Some(p) = n.as_parentheses_node() {
            match p.body() {
                Some(b) => return Some(self.node(&b, d).kind),
                None => Kind::Nil,
            }
        } else if let Some(a) = n.as_and_node() {
            Kind::And(self.boxed(&a.left(), d), self.boxed(&a.right(), d))
        } else if let Some(o) = n.as_or_node() {
            Kind::Or(self.boxed(&o.left(), d), self.boxed(&o.right(), d))
        } else if let Some(i) = n.as_if_node() {
            Kind::If(
                self.boxed(&i.predicate(), d),
                self.stmts(i.statements(), d),
                self.opt(i.subsequent(), d),
            )
        } else if let Some(u) = n.as_unless_node() {
            Kind::If(
                self.boxed(&u.predicate(), d),
                u.else_clause().and_then(|e| self.stmts(e.statements(), d)),
                self.stmts(u.statements(), d),
            )
        } else if let Some(e) = n.as_else_node() {
            match self.stmts(e.statements(), d) {
                Some(b) => return Some(b.kind),
                None => Kind::Nil,
            }
        } else if let Some(c) = n.as_case_node() {
            let whens = c
                .conditions()
                .iter()
                .filter_map(|w| w.as_when_node())
                .map(|w| {
                    (
                        w.conditions().iter().map(|x| self.node(&x, d)).collect(),
                        self.stmts(w.statements(), d).map(|b| *b),
                    )
                })
                .collect();
            Kind::Case(
                self.opt(c.predicate(), d),
                whens,
                c.else_clause().and_then(|e| self.stmts(e.statements(), d)),
            )
        } else if let Some(w) = n.as_while_node() {
            if w.is_begin_modifier() {
                Kind::Unsupported("`begin ... end while`".into())
            } else {
                Kind::While(
                    self.boxed(&w.predicate(), d),
                    self.stmts(w.statements(), d),
                    false,
                )
            }
        } else if let Some(w) = n.as_until_node() {
            if w.is_begin_modifier() {
                Kind::Unsupported("`begin ... end until`".into())
            } else {
                Kind::While(
                    self.boxed(&w.predicate(), d),
                    self.stmts(w.statements(), d),
                    true,
                )
            }
        } else if let Some(f) = n.as_for_node() {
            match targets(&f.index()) {
                Some(t) => Kind::For(
                    t,
                    self.boxed(&f.collection(), d),
                    self.stmts(f.statements(), d),
                ),
                None => Kind::Unsupported("a `for` loop over non-local targets".into()),
            }
        } else if let Some(b) = n.as_begin_node() {
            self.begin(&b, d)
        } else if let Some(r) = n.as_rescue_modifier_node() {
            Kind::Begin(Box::new(BeginBlock {
                body: Some(self.node(&r.expression(), d)),
                rescues: vec![Rescue {
                    classes: Vec::new(),
                    var: None,
                    body: Some(self.boxed(&r.rescue_expression(), d)),
                }],
                else_body: None,
                ensure: None,
            }))
        } else if let Some(r) = n.as_return_node() {
            Kind::Return(self.jump_value(r.arguments(), &n.location(), d))
        } else if let Some(r) = n.as_next_node() {
            Kind::Next(self.jump_value(r.arguments(), &n.location(), d))
        } else if let Some(r) = n.as_break_node() {
            Kind::Break(self.jump_value(r.arguments(), &n.location(), d))
        } else if let Some(y) = n.as_yield_node() {
            Kind::Yield(self.args(y.arguments(), d))
        } else if let Some(s) = n.as_super_node() {
            Kind::Super(Some(self.args(s.arguments(), d)))
        } else if n.as_forwarding_super_node().is_some() {
            Kind::Super(None)
        } else if let Some(dn) = n.as_defined_node() {
            Kind::Defined(self.boxed(&dn.value(), d))
        } else {
            return None;
        })
    }

    fn jump_value(
        &self,
        args: Option<ruby_prism::ArgumentsNode<'_>>,
        loc: &ruby_prism::Location<'_>,
        d: usize,
    ) -> Option<Box<Node>> {
        let mut values: Vec<Node> = self
            .args(args, d)
            .into_iter()
            .filter_map(|a| match a {
                Arg::Pos(n) => Some(n),
                _ => None,
            })
            .collect();
        match values.len() {
            0 => None,
            1 => values.pop().map(Box::new),
            _ => Some(Box::new(Node::new(Kind::Array(values), self.loc(loc)))),
        }
    }

    fn begin(&self, b: &ruby_prism::BeginNode<'_>, d: usize) -> Kind {
        let mut rescues = Vec::new();
        let mut clause = b.rescue_clause();
        while let Some(r) = clause {
            rescues.push(Rescue {
                classes: r.exceptions().iter().map(|e| self.node(&e, d)).collect(),
                var: r
                    .reference()
                    .and_then(|v| v.as_local_variable_target_node())
                    .map(|v| name(&v.name())),
                body: self.stmts(r.statements(), d),
            });
            clause = r.subsequent();
        }
        Kind::Begin(Box::new(BeginBlock {
            body: self.stmts(b.statements(), d).map(|x| *x),
            rescues,
            else_body: b
                .else_clause()
                .and_then(|e| self.stmts(e.statements(), d))
                .map(|x| *x),
            ensure: b
                .ensure_clause()
                .and_then(|e| self.stmts(e.statements(), d))
                .map(|x| *x),
        }))
    }

    fn definition(&self, n: &P<'_>, d: usize) -> Option<Kind> {
        Some(if let Some(def) = n.as_def_node() {
            let singleton = match def.receiver() {
                None => false,
                Some(r) if r.as_self_node().is_some() => true,
                Some(_) => return Some(Kind::Unsupported("`def` on another object".into())),
            };
            Kind::Def(Arc::new(MethodDef {
                name: name(&def.name()),
                params: def
                    .parameters()
                    .map(|p| self.params(&p, d))
                    .unwrap_or_default(),
                body: def.body().map(|b| Arc::new(self.node(&b, d))),
                singleton,
                loc: self.loc(&def.location()),
            }))
        } else if let Some(c) = n.as_class_node() {
            let Some(path) = const_path(&c.constant_path()) else {
                return Some(Kind::Unsupported("a dynamic class name".into()));
            };
            Kind::Class(
                path.join("::"),
                self.opt(c.superclass(), d),
                c.body().map(|b| Arc::new(self.node(&b, d))),
            )
        } else if let Some(m) = n.as_module_node() {
            let Some(path) = const_path(&m.constant_path()) else {
                return Some(Kind::Unsupported("a dynamic module name".into()));
            };
            Kind::Module(
                path.join("::"),
                m.body().map(|b| Arc::new(self.node(&b, d))),
            )
        } else if let Some(s) = n.as_singleton_class_node() {
            if s.expression().as_self_node().is_none() {
                return Some(Kind::Unsupported("`class << obj` on another object".into()));
            }
            // `class << self; def x; end; end` defines class methods.
            let body = s.body().map(|b| self.node(&b, d));
            let mut defs = Vec::new();
            let mut push = |n: Node| match n.kind {
                Kind::Def(m) => {
                    let mut m = (*m).clone();
                    m.singleton = true;
                    defs.push(Node::new(Kind::Def(Arc::new(m)), n.loc));
                }
                other => defs.push(Node::new(other, n.loc)),
            };
            match body {
                Some(Node {
                    kind: Kind::Seq(items),
                    ..
                }) => items.into_iter().for_each(&mut push),
                Some(other) => push(other),
                None => {}
            }
            Kind::Seq(defs)
        } else if let Some(l) = n.as_lambda_node() {
            Kind::Lambda(Arc::new(self.block(
                l.parameters(),
                l.body(),
                &l.location(),
                d,
            )))
        } else {
            return None;
        })
    }

    fn assignment(&self, n: &P<'_>, d: usize) -> Option<Kind> {
        let op = |t: Target, o: String, v: &P<'_>| Kind::OpAssign(Box::new(t), o, self.boxed(v, d));
        Some(if let Some(a) = n.as_local_variable_operator_write_node() {
            op(
                Target::Local(name(&a.name())),
                name(&a.binary_operator()),
                &a.value(),
            )
        } else if let Some(a) = n.as_local_variable_or_write_node() {
            op(Target::Local(name(&a.name())), "||".into(), &a.value())
        } else if let Some(a) = n.as_local_variable_and_write_node() {
            op(Target::Local(name(&a.name())), "&&".into(), &a.value())
        } else if let Some(a) = n.as_instance_variable_operator_write_node() {
            op(
                Target::Ivar(name(&a.name())),
                name(&a.binary_operator()),
                &a.value(),
            )
        } else if let Some(a) = n.as_instance_variable_or_write_node() {
            op(Target::Ivar(name(&a.name())), "||".into(), &a.value())
        } else if let Some(a) = n.as_constant_or_write_node() {
            op(Target::Const(name(&a.name())), "||".into(), &a.value())
        } else if let Some(a) = n.as_index_operator_write_node() {
            let Some(r) = a.receiver() else {
                return Some(Kind::Unsupported(
                    "index assignment without receiver".into(),
                ));
            };
            op(
                Target::Index(self.node(&r, d), self.args(a.arguments(), d)),
                name(&a.binary_operator()),
                &a.value(),
            )
        } else if let Some(a) = n.as_index_or_write_node() {
            let Some(r) = a.receiver() else {
                return Some(Kind::Unsupported(
                    "index assignment without receiver".into(),
                ));
            };
            op(
                Target::Index(self.node(&r, d), self.args(a.arguments(), d)),
                "||".into(),
                &a.value(),
            )
        } else if let Some(a) = n.as_call_operator_write_node() {
            let Some(r) = a.receiver() else {
                return Some(Kind::Unsupported(
                    "attribute assignment without receiver".into(),
                ));
            };
            op(
                Target::Attr(self.node(&r, d), name(&a.read_name())),
                name(&a.binary_operator()),
                &a.value(),
            )
        } else if let Some(a) = n.as_call_or_write_node() {
            let Some(r) = a.receiver() else {
                return Some(Kind::Unsupported(
                    "attribute assignment without receiver".into(),
                ));
            };
            op(
                Target::Attr(self.node(&r, d), name(&a.read_name())),
                "||".into(),
                &a.value(),
            )
        } else if let Some(m) = n.as_multi_write_node() {
            let mut names = Vec::new();
            for l in m.lefts().iter() {
                match l.as_local_variable_target_node() {
                    Some(t) => names.push(name(&t.name())),
                    None => {
                        return Some(Kind::Unsupported(
                            "multiple assignment to non-locals".into(),
                        ));
                    }
                }
            }
            if let Some(rest) = m.rest() {
                match rest
                    .as_splat_node()
                    .and_then(|s| s.expression())
                    .and_then(|e| e.as_local_variable_target_node())
                {
                    Some(t) => names.push(format!("*{}", name(&t.name()))),
                    None if rest.as_implicit_rest_node().is_some() => {}
                    None => return Some(Kind::Unsupported("a complex splat target".into())),
                }
            }
            if m.rights().iter().next().is_some() {
                return Some(Kind::Unsupported("targets after a splat".into()));
            }
            Kind::MultiAssign(names, self.boxed(&m.value(), d))
        } else if let Some(m) = n.as_match_write_node() {
            let call = self.call(&m.call(), d);
            let loc = self.loc(&m.call().location());
            let names = m
                .targets()
                .iter()
                .filter_map(|t| t.as_local_variable_target_node())
                .map(|t| name(&t.name()))
                .collect();
            Kind::MatchWrite(Box::new(Node::new(call, loc)), names)
        } else {
            return None;
        })
    }
}

/// The text of parts that are all literal (heredocs, adjacent literals).
fn literal_only(parts: &[Part]) -> Option<String> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Lit(s) => out.push_str(s),
            Part::Code(_) => return None,
        }
    }
    Some(out)
}

/// Local names a `for` binds.
fn targets(n: &P<'_>) -> Option<Vec<String>> {
    if let Some(t) = n.as_local_variable_target_node() {
        return Some(vec![name(&t.name())]);
    }
    let m = n.as_multi_target_node()?;
    m.lefts()
        .iter()
        .map(|l| l.as_local_variable_target_node().map(|t| name(&t.name())))
        .collect()
}

/// `A::B::C` as segments, when every part is a plain constant.
fn const_path(n: &P<'_>) -> Option<Vec<String>> {
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

fn integer(i: &ruby_prism::Integer<'_>) -> Option<i64> {
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
fn unsupported_name(n: &P<'_>) -> String {
    let dbg = format!("{n:?}");
    let kind = dbg
        .split([' ', '{', '('])
        .next()
        .unwrap_or("node")
        .to_string();
    let snippet: String = text(n.location().as_slice()).chars().take(40).collect();
    format!("{} (`{}`)", kind.trim_end_matches("Node"), snippet.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

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
