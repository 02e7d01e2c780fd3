-- +goose Up
-- An audit record may stand for several failed attempts alike (a flood summed
-- per kind and client); every earlier record stands for one.
ALTER TABLE audit_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE audit_log DROP COLUMN count;
