-- +goose Up
-- Facts about the database itself, such as the master key check.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- +goose Down
DROP TABLE meta;
