-- +goose Up
-- An organization without a quota counts its usage in one of several rows (a
-- shard per transaction), so that its concurrent publishes do not wait for each
-- other's commits on one row; the usage is their sum. An organization with a
-- quota counts in shard 0, whose lock makes the quota and thresholds exact.
ALTER TABLE usage ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE usage DROP CONSTRAINT usage_pkey;
ALTER TABLE usage ADD PRIMARY KEY (org_id, period, shard);

-- +goose Down
DELETE FROM usage WHERE shard <> 0;
ALTER TABLE usage DROP CONSTRAINT usage_pkey;
ALTER TABLE usage ADD PRIMARY KEY (org_id, period);
ALTER TABLE usage DROP COLUMN shard;
