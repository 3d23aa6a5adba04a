-- How a report body is kept: 'plain' (the HDF bytes) or 'age' (encrypted
-- to the collector's own recipients when it runs with require_encryption,
-- so the database files hold no plaintext report).
ALTER TABLE scan_reports ADD COLUMN body_encoding TEXT NOT NULL DEFAULT 'plain';
