//! The owned syntax tree the interpreter walks: the subset of Ruby that
//! InSpec profiles use, lowered from ruby-prism's tree by `parse.rs`.
//!
//! Anything prism accepts but this tree does not model becomes
//! [`Kind::Unsupported`] with the construct's name, so a profile that uses
//! it still loads; the control that reaches it reports an error naming the
//! construct and its `file:line`, and never passes.

use std::sync::Arc;

/// Where a node starts (1-based line and column) and its byte span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Loc {
    /// Index of the source file in the profile's file table.
    pub file: u32,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (bytes).
    pub col: u32,
    /// Byte offset of the start.
    pub start: u32,
    /// Byte offset one past the end.
    pub end: u32,
}

/// A node and its location.
#[derive(Debug, Clone)]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Where it is.
    pub loc: Loc,
}

/// A part of an interpolated string, symbol or regex.
#[derive(Debug, Clone)]
pub enum Part {
    /// Literal text.
    Lit(String),
    /// `#{...}`.
    Code(Node),
}

/// Regex options written after the closing slash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegexFlags {
    /// `i`
    pub ignore_case: bool,
    /// `x`
    pub extended: bool,
    /// `m` (Ruby's dot-matches-newline)
    pub multi_line: bool,
}

/// An argument at a call site.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A positional argument.
    Pos(Node),
    /// `*list`
    Splat(Node),
    /// `key: value` or `'key' => value` (collected into a trailing hash).
    Pair(Node, Node),
    /// `**hash`
    DoubleSplat(Node),
    /// `&block` or `&:sym`
    Block(Node),
}

/// A block, lambda or method parameter.
#[derive(Debug, Clone)]
pub enum Param {
    /// A plain name.
    Name(String),
    /// `(a, b)` destructuring.
    Destructure(Vec<Param>),
}

/// A parameter list.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Required positional parameters (before optionals).
    pub required: Vec<Param>,
    /// `name = default`
    pub optional: Vec<(String, Node)>,
    /// `*rest`
    pub rest: Option<String>,
    /// Required positional parameters after the rest.
    pub post: Vec<Param>,
    /// `key:` and `key: default`
    pub keywords: Vec<(String, Option<Node>)>,
    /// `**opts`
    pub keyword_rest: Option<String>,
    /// `&blk`
    pub block: Option<String>,
    /// `_1`, `_2` numbered parameters in use (their count).
    pub numbered: u8,
}

impl Params {
    /// Number of positional names a block auto-splats an array over.
    pub fn positional_count(&self) -> usize {
        self.required.len() + self.optional.len() + self.post.len() + usize::from(self.numbered)
    }
}

/// A block, `do ... end` or `{ ... }`, or a lambda body.
#[derive(Debug, Clone)]
pub struct Block {
    /// Its parameters.
    pub params: Params,
    /// Its body, if any.
    pub body: Option<Arc<Node>>,
    /// Where it starts.
    pub loc: Loc,
}

/// One `rescue` clause.
#[derive(Debug, Clone)]
pub struct Rescue {
    /// Exception classes it catches (empty: StandardError).
    pub classes: Vec<Node>,
    /// `=> e`
    pub var: Option<String>,
    /// Its body.
    pub body: Option<Box<Node>>,
}

/// A method definition.
#[derive(Debug, Clone)]
pub struct MethodDef {
    /// Its name.
    pub name: String,
    /// Its parameters.
    pub params: Params,
    /// Its body.
    pub body: Option<Arc<Node>>,
    /// `def self.x`
    pub singleton: bool,
    /// Where it is defined.
    pub loc: Loc,
}

/// The node kinds the interpreter evaluates.
#[derive(Debug, Clone)]
pub enum Kind {
    /// `nil`
    Nil,
    /// `true`
    True,
    /// `false`
    False,
    /// `self`
    SelfRef,
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal (unescaped).
    Str(String),
    /// An interpolated string.
    Interp(Vec<Part>),
    /// A symbol literal.
    Sym(String),
    /// An interpolated symbol.
    DSym(Vec<Part>),
    /// A regex literal (possibly interpolated).
    Regex(Vec<Part>, RegexFlags),
    /// `[a, *b]` (splats appear as `Kind::Splat` elements).
    Array(Vec<Node>),
    /// `{k => v, **h}`: `None` key marks a double splat.
    Hash(Vec<(Option<Node>, Node)>),
    /// `*x` inside an array literal.
    Splat(Box<Node>),
    /// `a..b`, `a...b`
    Range(Option<Box<Node>>, Option<Box<Node>>, bool),
    /// A local variable read.
    Local(String),
    /// A local variable write.
    SetLocal(String, Box<Node>),
    /// `@x`
    Ivar(String),
    /// `@x = v`
    SetIvar(String, Box<Node>),
    /// `A::B::C` (a leading `None` scope is the current one).
    Const(Vec<String>),
    /// `A = v`
    SetConst(String, Box<Node>),
    /// `a, b = value` (the targets are local names; `*rest` marked by a star prefix).
    MultiAssign(Vec<String>, Box<Node>),
    /// `target op= value`, `||=`, `&&=` on a local, ivar, index or attribute.
    OpAssign(Box<Target>, String, Box<Node>),
    /// A method call.
    Call(Box<Call>),
    /// `&&` / `and`
    And(Box<Node>, Box<Node>),
    /// `||` / `or`
    Or(Box<Node>, Box<Node>),
    /// `!x` / `not x`
    Not(Box<Node>),
    /// `defined?(x)`
    Defined(Box<Node>),
    /// `if`/`unless`/ternary/modifiers, normalised to if.
    If(Box<Node>, Option<Box<Node>>, Option<Box<Node>>),
    /// `case subject when ... else ... end`.
    Case(
        Option<Box<Node>>,
        Vec<(Vec<Node>, Option<Node>)>,
        Option<Box<Node>>,
    ),
    /// `while`/`until` (true for until).
    While(Box<Node>, Option<Box<Node>>, bool),
    /// `for x in list`.
    For(Vec<String>, Box<Node>, Option<Box<Node>>),
    /// `begin ... rescue ... else ... ensure ... end`.
    Begin(Box<BeginBlock>),
    /// Statements in order; the last one's value is the result.
    Seq(Vec<Node>),
    /// `def`
    Def(Arc<MethodDef>),
    /// `class Name < Super ... end`
    Class(String, Option<Box<Node>>, Option<Arc<Node>>),
    /// `module Name ... end`
    Module(String, Option<Arc<Node>>),
    /// `return`
    Return(Option<Box<Node>>),
    /// `next`
    Next(Option<Box<Node>>),
    /// `break`
    Break(Option<Box<Node>>),
    /// `yield args`
    Yield(Vec<Arg>),
    /// `super` (None: implicit arguments).
    Super(Option<Vec<Arg>>),
    /// `-> (x) { ... }` / `lambda { }` as a literal.
    Lambda(Arc<Block>),
    /// `/(?<name>..)/ =~ s`: the match, then locals set from named captures.
    MatchWrite(Box<Node>, Vec<String>),
    /// `$1`, `$2`: groups of the last match in this scope.
    NthRef(u32),
    /// Something this interpreter does not run, named for the error.
    Unsupported(String),
}

/// A method call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Receiver (`None`: self or a function-style call).
    pub recv: Option<Node>,
    /// Method name.
    pub name: String,
    /// Arguments.
    pub args: Vec<Arg>,
    /// Literal block.
    pub block: Option<Arc<Block>>,
    /// `&.`
    pub safe_nav: bool,
    /// Written without receiver, arguments or parentheses: could be a local.
    pub vcall: bool,
}

/// The left side of an operator assignment.
#[derive(Debug, Clone)]
pub enum Target {
    /// A local.
    Local(String),
    /// An instance variable.
    Ivar(String),
    /// A constant.
    Const(String),
    /// `recv[args]`
    Index(Node, Vec<Arg>),
    /// `recv.name`
    Attr(Node, String),
}

/// The parts of a `begin` block.
#[derive(Debug, Clone)]
pub struct BeginBlock {
    /// The protected body.
    pub body: Option<Node>,
    /// Rescue clauses in order.
    pub rescues: Vec<Rescue>,
    /// `else`
    pub else_body: Option<Node>,
    /// `ensure`
    pub ensure: Option<Node>,
}

impl Node {
    /// A node of `kind` at `loc`.
    pub fn new(kind: Kind, loc: Loc) -> Self {
        Self { kind, loc }
    }

    /// Calls every direct child node, for walks over the whole tree.
    pub fn for_each_child(&self, f: &mut dyn FnMut(&Node)) {
        match &self.kind {
            Kind::Interp(p) | Kind::DSym(p) | Kind::Regex(p, _) => {
                for part in p {
                    if let Part::Code(n) = part {
                        f(n);
                    }
                }
            }
            Kind::Array(items) | Kind::Seq(items) => items.iter().for_each(&mut *f),
            Kind::Hash(pairs) => {
                for (k, v) in pairs {
                    opt(k.as_ref(), f);
                    f(v);
                }
            }
            Kind::Splat(n)
            | Kind::SetLocal(_, n)
            | Kind::SetIvar(_, n)
            | Kind::SetConst(_, n)
            | Kind::MultiAssign(_, n)
            | Kind::Not(n)
            | Kind::MatchWrite(n, _)
            | Kind::Defined(n) => f(n),
            Kind::Range(a, b, _) => {
                opt(a.as_deref(), f);
                opt(b.as_deref(), f);
            }
            Kind::OpAssign(t, _, v) => {
                match t.as_ref() {
                    Target::Index(r, a) => {
                        f(r);
                        args(a, f);
                    }
                    Target::Attr(r, _) => f(r),
                    _ => {}
                }
                f(v);
            }
            Kind::Call(c) => {
                opt(c.recv.as_ref(), f);
                args(&c.args, f);
                if let Some(b) = &c.block {
                    block(b, f);
                }
            }
            Kind::And(a, b) | Kind::Or(a, b) => {
                f(a);
                f(b);
            }
            Kind::Yield(a) | Kind::Super(Some(a)) => args(a, f),
            Kind::Lambda(b) => block(b, f),
            _ => self.flow_children(f),
        }
    }

    /// The children of control-flow and definition nodes.
    fn flow_children(&self, f: &mut dyn FnMut(&Node)) {
        match &self.kind {
            Kind::If(c, t, e) => {
                f(c);
                opt(t.as_deref(), f);
                opt(e.as_deref(), f);
            }
            Kind::Case(s, whens, e) => {
                opt(s.as_deref(), f);
                for (conds, body) in whens {
                    conds.iter().for_each(&mut *f);
                    opt(body.as_ref(), f);
                }
                opt(e.as_deref(), f);
            }
            Kind::While(c, b, _) | Kind::For(_, c, b) => {
                f(c);
                opt(b.as_deref(), f);
            }
            Kind::Begin(b) => {
                opt(b.body.as_ref(), f);
                for r in &b.rescues {
                    r.classes.iter().for_each(&mut *f);
                    opt(r.body.as_deref(), f);
                }
                opt(b.else_body.as_ref(), f);
                opt(b.ensure.as_ref(), f);
            }
            Kind::Def(d) => opt(d.body.as_deref(), f),
            Kind::Class(_, s, b) => {
                opt(s.as_deref(), f);
                opt(b.as_deref(), f);
            }
            Kind::Module(_, b) => opt(b.as_deref(), f),
            Kind::Return(v) | Kind::Next(v) | Kind::Break(v) => opt(v.as_deref(), f),
            _ => {}
        }
    }

    /// Every `Unsupported` node under (and including) this one, in source order.
    pub fn unsupported(&self, out: &mut Vec<(String, Loc)>) {
        if let Kind::Unsupported(what) = &self.kind {
            out.push((what.clone(), self.loc));
        }
        self.for_each_child(&mut |n| n.unsupported(out));
    }
}

fn opt(n: Option<&Node>, f: &mut dyn FnMut(&Node)) {
    if let Some(n) = n {
        f(n);
    }
}

fn args(a: &[Arg], f: &mut dyn FnMut(&Node)) {
    for arg in a {
        match arg {
            Arg::Pos(n) | Arg::Splat(n) | Arg::DoubleSplat(n) | Arg::Block(n) => f(n),
            Arg::Pair(k, v) => {
                f(k);
                f(v);
            }
        }
    }
}

fn block(b: &Block, f: &mut dyn FnMut(&Node)) {
    for (_, d) in &b.params.optional {
        f(d);
    }
    opt(b.body.as_deref(), f);
}
