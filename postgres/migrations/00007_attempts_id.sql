-- +goose Up
-- An attempt is only ever read with its delivery (attempts_delivery): the unique
-- index on its id, updated by every attempt recorded, is never read. Attempt
-- ids are ULIDs (ids.New), unique without it.
ALTER TABLE attempts DROP CONSTRAINT attempts_id_key;

-- +goose Down
ALTER TABLE attempts ADD CONSTRAINT attempts_id_key UNIQUE (id);
