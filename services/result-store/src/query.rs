//! Filters and keyset paging for result listings.
//!
//! Paging is keyset-based on (finished_at_ms, scan_id), newest first, so a
//! page token stays valid while new results arrive and deep pages cost the
//! same as the first.

use crate::StoreError;

/// Every set field must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultFilter {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Only these namespaces (what a caller may see); an empty set
    /// matches nothing.
    pub namespaces: Option<std::collections::BTreeSet<String>>,
    /// Pod.
    pub pod: Option<String>,
    /// `sha256:` image digest.
    pub image_digest: Option<String>,
    /// Completed (true) or failed (false) scans only.
    pub completed: Option<bool>,
    /// Threshold verdict.
    pub threshold_passed: Option<bool>,
    /// Finished at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Finished before (Unix ms).
    pub until_ms: Option<i64>,
}

/// The position after the last result of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageToken {
    pub(crate) finished_at_ms: i64,
    pub(crate) scan_id: String,
}

impl PageToken {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        hex::encode(format!("v1:{}:{}", self.finished_at_ms, self.scan_id))
    }

    /// Parses a client-supplied token.
    ///
    /// # Errors
    /// [`StoreError::InvalidPageToken`] for anything this store did not issue.
    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let invalid = || StoreError::InvalidPageToken(text.chars().take(64).collect());
        let raw = hex::decode(text).map_err(|_| invalid())?;
        let raw = String::from_utf8(raw).map_err(|_| invalid())?;
        let mut parts = raw.splitn(3, ':');
        if parts.next() != Some("v1") {
            return Err(invalid());
        }
        let finished_at_ms = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        let scan_id = parts.next().filter(|s| !s.is_empty()).ok_or_else(invalid)?;
        Ok(Self {
            finished_at_ms,
            scan_id: scan_id.to_owned(),
        })
    }
}

/// A value bound into a generated query.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// Builds the WHERE clause with `$n` placeholders numbered in order (both
/// SQLite and PostgreSQL accept that form).
pub(crate) fn where_clause(
    filter: &ResultFilter,
    after: Option<&PageToken>,
) -> (String, Vec<Bind>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    let mut push = |sql: &str, bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        clauses.push(sql.replace('?', &format!("${}", binds.len())));
    };
    for (column, value) in [
        ("cluster", &filter.cluster),
        ("namespace", &filter.namespace),
        ("pod", &filter.pod),
        ("image_digest", &filter.image_digest),
    ] {
        if let Some(v) = value {
            push(&format!("{column} = ?"), Bind::Text(v.clone()), &mut binds);
        }
    }
    if let Some(completed) = filter.completed {
        let outcome = if completed { "completed" } else { "failed" };
        push("outcome = ?", Bind::Text(outcome.into()), &mut binds);
    }
    if let Some(passed) = filter.threshold_passed {
        push("threshold_passed = ?", Bind::Bool(passed), &mut binds);
    }
    if let Some(since) = filter.since_ms {
        push("finished_at_ms >= ?", Bind::Int(since), &mut binds);
    }
    if let Some(until) = filter.until_ms {
        push("finished_at_ms < ?", Bind::Int(until), &mut binds);
    }
    if let Some(allowed) = &filter.namespaces {
        if allowed.is_empty() {
            clauses.push("1 = 0".to_owned());
        } else {
            let mut marks = Vec::with_capacity(allowed.len());
            for namespace in allowed {
                binds.push(Bind::Text(namespace.clone()));
                marks.push(format!("${}", binds.len()));
            }
            clauses.push(format!("namespace IN ({})", marks.join(", ")));
        }
    }
    if let Some(token) = after {
        binds.push(Bind::Int(token.finished_at_ms));
        let a = binds.len();
        binds.push(Bind::Int(token.finished_at_ms));
        let b = binds.len();
        binds.push(Bind::Text(token.scan_id.clone()));
        let c = binds.len();
        clauses.push(format!(
            "(finished_at_ms < ${a} OR (finished_at_ms = ${b} AND scan_id < ${c}))"
        ));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_foreign_ones_are_refused() {
        let token = PageToken {
            finished_at_ms: 1_700_000_000_123,
            scan_id: "01JDQ2Z8Y6W5M3N4P7R9S0T1V2".into(),
        };
        assert_eq!(PageToken::decode(&token.encode()).unwrap(), token);
        for bad in [
            "",
            "zz",
            &hex::encode("v2:1:x"),
            &hex::encode("v1:x:y"),
            &hex::encode("v1:1:"),
        ] {
            assert!(matches!(
                PageToken::decode(bad),
                Err(StoreError::InvalidPageToken(_))
            ));
        }
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let filter = ResultFilter {
            namespace: Some("shop".into()),
            completed: Some(true),
            since_ms: Some(5),
            ..Default::default()
        };
        let token = PageToken {
            finished_at_ms: 9,
            scan_id: "x".into(),
        };
        let (sql, binds) = where_clause(&filter, Some(&token));
        assert_eq!(
            sql,
            "WHERE namespace = $1 AND outcome = $2 AND finished_at_ms >= $3 AND \
             (finished_at_ms < $4 OR (finished_at_ms = $5 AND scan_id < $6))"
        );
        assert_eq!(binds.len(), 6);
    }

    #[test]
    fn a_set_of_namespaces_is_an_in_list_and_an_empty_one_matches_nothing() {
        let filter = ResultFilter {
            cluster: Some("c".into()),
            namespaces: Some(["apps".to_owned(), "shop".to_owned()].into()),
            ..Default::default()
        };
        let (sql, binds) = where_clause(&filter, None);
        assert_eq!(sql, "WHERE cluster = $1 AND namespace IN ($2, $3)");
        assert_eq!(binds.len(), 3);
        let none = ResultFilter {
            namespaces: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(where_clause(&none, None).0, "WHERE 1 = 0");
    }
}
