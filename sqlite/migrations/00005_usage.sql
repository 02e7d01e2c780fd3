-- +goose Up
-- SPEC §8: accepted events per organization and calendar month (UTC), with the
-- thresholds already announced that month.
ALTER TABLE organizations ADD COLUMN allow_overage INTEGER NOT NULL DEFAULT 0;
CREATE TABLE usage (
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period       TEXT NOT NULL,
    events       INTEGER NOT NULL DEFAULT 0,
    notified_90  INTEGER NOT NULL DEFAULT 0,
    notified_100 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, period)
) WITHOUT ROWID;
-- When an endpoint's current run of failed attempts began (0 = its last attempt
-- succeeded): hookd disables it once the run lasts the configured window.
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE endpoints DROP COLUMN failing_since;
DROP TABLE usage;
ALTER TABLE organizations DROP COLUMN allow_overage;
