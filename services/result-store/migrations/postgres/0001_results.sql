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
    passed             BIGINT,
    failed             BIGINT,
    not_reviewed       BIGINT,
    not_applicable     BIGINT,
    errored            BIGINT,
    compliance_percent DOUBLE PRECISION,
    failed_critical    BIGINT,
    failed_high        BIGINT,
    failed_medium      BIGINT,
    failed_low         BIGINT,
    threshold_passed   BOOLEAN,
    started_at_ms      BIGINT NOT NULL,
    finished_at_ms     BIGINT NOT NULL,
    persisted_at_ms    BIGINT NOT NULL,
    signer_key_id      TEXT NOT NULL,
    statement          TEXT NOT NULL,
    envelope           BYTEA NOT NULL,
    report_sha256      TEXT,
    report_size        BIGINT
);
CREATE INDEX scan_results_newest ON scan_results (finished_at_ms DESC, scan_id DESC);
CREATE INDEX scan_results_target ON scan_results (cluster, namespace, pod);
CREATE INDEX scan_results_digest ON scan_results (image_digest);

CREATE TABLE scan_reports (
    scan_id    TEXT PRIMARY KEY NOT NULL REFERENCES scan_results (scan_id) ON DELETE CASCADE,
    media_type TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    body       BYTEA NOT NULL
);
