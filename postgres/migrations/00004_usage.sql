-- +goose Up
-- SPEC §8: accepted events per organization and calendar month (UTC), with the
-- thresholds already announced that month.
ALTER TABLE organizations ADD COLUMN allow_overage BOOLEAN NOT NULL DEFAULT false;
CREATE TABLE usage (
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    period       TEXT NOT NULL,
    events       BIGINT NOT NULL DEFAULT 0,
    notified_90  BOOLEAN NOT NULL DEFAULT false,
    notified_100 BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (org_id, period)
);
-- When an endpoint's current run of failed attempts began (0 = its last attempt
-- succeeded): hookd disables it once the run lasts the configured window.
ALTER TABLE endpoints ADD COLUMN failing_since BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE endpoints DROP COLUMN failing_since;
DROP TABLE usage;
ALTER TABLE organizations DROP COLUMN allow_overage;
