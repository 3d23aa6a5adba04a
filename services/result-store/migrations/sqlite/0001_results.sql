-- One row per scan id: the collector's upsert key. Times are Unix
-- milliseconds so SQLite and PostgreSQL sort and filter them the same way.
CREATE TABLE scan_results (
    scan_id            TEXT PRIMARY KEY NOT NULL,
    cluster            TEXT NOT NULL,
    namespace          TEXT NOT NULL,
    pod                TEXT NOT NULL,
    container          TEXT NOT NULL,
    image              TEXT NOT NULL,
    image_digest       TEXT NOT NULL,
    profile_name       TEXT NOT NULL,
    profile_version    TEXT NOT NULL,
    profile_sha256     TEXT NOT NULL,
    approach           TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    failure            TEXT,
    passed             INTEGER,
    failed             INTEGER,
    not_reviewed       INTEGER,
    not_applicable     INTEGER,
    errored            INTEGER,
    compliance_percent REAL,
    failed_critical    INTEGER,
    failed_high        INTEGER,
    failed_medium      INTEGER,
    failed_low         INTEGER,
    threshold_passed   INTEGER,
    started_at_ms      INTEGER NOT NULL,
    finished_at_ms     INTEGER NOT NULL,
    persisted_at_ms    INTEGER NOT NULL,
    signer_key_id      TEXT NOT NULL,
    statement          TEXT NOT NULL,
    envelope           BLOB NOT NULL,
    report_sha256      TEXT,
    report_size        INTEGER
);
CREATE INDEX scan_results_newest ON scan_results (finished_at_ms DESC, scan_id DESC);
CREATE INDEX scan_results_target ON scan_results (cluster, namespace, pod);
CREATE INDEX scan_results_digest ON scan_results (image_digest);

CREATE TABLE scan_reports (
    scan_id    TEXT PRIMARY KEY NOT NULL REFERENCES scan_results (scan_id) ON DELETE CASCADE,
    media_type TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    body       BLOB NOT NULL
);
