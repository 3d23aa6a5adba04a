-- drift_reports: for a container scan, the controls whose status differs
-- from the newest image scan of the same digest with the same profile
-- name and version (the collector compares the two verified reports when
-- the second of them is stored, in either order). One row per container
-- scan; a later image scan of the digest replaces it.
--
-- controls is the JSON list of drifted controls (id, title, both sides'
-- status and message); it quotes report messages, so it is kept as the
-- reports are ('plain', or 'age' when reports are encrypted at rest).
-- drifted is its length, readable without decrypting.
CREATE TABLE drift_reports (
    container_scan_id    TEXT PRIMARY KEY NOT NULL REFERENCES scan_results (scan_id) ON DELETE CASCADE,
    image_scan_id        TEXT NOT NULL REFERENCES scan_results (scan_id) ON DELETE CASCADE,
    image_finished_at_ms BIGINT NOT NULL,
    profile_name         TEXT NOT NULL,
    profile_version      TEXT NOT NULL,
    drifted              BIGINT NOT NULL,
    controls             BYTEA NOT NULL,
    controls_encoding    TEXT NOT NULL,
    computed_at_ms       BIGINT NOT NULL
);
CREATE INDEX drift_reports_image ON drift_reports (image_scan_id);

-- A stored scan's partners: the other kind's results of one digest and
-- profile version, newest first.
CREATE INDEX scan_results_digest_profile
    ON scan_results (image_digest, profile_name, profile_version, finished_at_ms);
