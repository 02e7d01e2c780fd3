-- +goose Up
-- An attempt is only ever read with its delivery (attempts_delivery): the unique
-- index on its id, updated by every attempt recorded, is never read. Attempt
-- ids are ULIDs made by one process (ids.New), unique without it. SQLite
-- cannot drop a column's UNIQUE constraint, so the table is made anew.
CREATE TABLE attempts_new (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL,
    delivery_seq    INTEGER NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
    org_id          TEXT NOT NULL,
    number          INTEGER NOT NULL,
    url             TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    status_code     INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    duration_us     INTEGER NOT NULL,
    error           TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
INSERT INTO attempts_new (seq, id, delivery_seq, org_id, number, url, request_headers, status_code,
    response_body, duration_us, error, created_at)
SELECT seq, id, delivery_seq, org_id, number, url, request_headers, status_code,
    response_body, duration_us, error, created_at FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE INDEX attempts_delivery ON attempts (delivery_seq);

-- +goose Down
CREATE TABLE attempts_old (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    delivery_seq    INTEGER NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
    org_id          TEXT NOT NULL,
    number          INTEGER NOT NULL,
    url             TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    status_code     INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    duration_us     INTEGER NOT NULL,
    error           TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
INSERT INTO attempts_old (seq, id, delivery_seq, org_id, number, url, request_headers, status_code,
    response_body, duration_us, error, created_at)
SELECT seq, id, delivery_seq, org_id, number, url, request_headers, status_code,
    response_body, duration_us, error, created_at FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_old RENAME TO attempts;
CREATE INDEX attempts_delivery ON attempts (delivery_seq);
