-- What the dashboard reads, indexed so pages stay fast with many results.
--
-- workload_latest: the newest result of each workload (cluster, namespace,
-- pod, container and profile, joined by '/' in that order; the first four
-- are DNS-1123 names without '/', so the key splits one way only), kept by
-- every insert, so "the fleet now" is one indexed join, not a scan of
-- every result ever stored.
CREATE TABLE workload_latest (
    workload_key   TEXT PRIMARY KEY NOT NULL,
    scan_id        TEXT NOT NULL REFERENCES scan_results (scan_id) ON DELETE CASCADE,
    finished_at_ms BIGINT NOT NULL
);
CREATE INDEX workload_latest_scan ON workload_latest (scan_id);
CREATE INDEX workload_latest_finished ON workload_latest (finished_at_ms);

INSERT INTO workload_latest (workload_key, scan_id, finished_at_ms)
SELECT workload_key, scan_id, finished_at_ms FROM (
    SELECT cluster || '/' || namespace || '/' || pod || '/' || container || '/' || profile_name
               AS workload_key,
           scan_id, finished_at_ms,
           ROW_NUMBER() OVER (
               PARTITION BY cluster, namespace, pod, container, profile_name
               ORDER BY finished_at_ms DESC, scan_id DESC) AS rn
    FROM scan_results
) newest WHERE rn = 1;

-- control_outcomes: each control's status and severity in a result, read
-- from the verified report when it was stored (ids, statuses and
-- severities only: titles, messages and code stay in the report, which may
-- be encrypted at rest). Results stored before this migration have none.
CREATE TABLE control_outcomes (
    scan_id    TEXT NOT NULL REFERENCES scan_results (scan_id) ON DELETE CASCADE,
    control_id TEXT NOT NULL,
    severity   TEXT NOT NULL,
    status     TEXT NOT NULL,
    PRIMARY KEY (scan_id, control_id)
);
CREATE INDEX control_outcomes_by_control ON control_outcomes (control_id, status);

-- The trend reads completed results by time; the overview filters the
-- newest results by namespace.
CREATE INDEX scan_results_namespace_finished ON scan_results (namespace, finished_at_ms);
