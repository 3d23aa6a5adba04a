//! The InSpec front end: profiles written in InSpec's Ruby DSL, compiled
//! into the same fact plan and result model as the YAML profiles.

pub mod ast;
pub mod parse;
