-- +goose Up
CREATE TABLE partners (
    id                      TEXT PRIMARY KEY,
    org_id                  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    api_key_hash            TEXT NOT NULL UNIQUE,
    secret                  BLOB NOT NULL,
    previous_secret         BLOB,
    previous_secret_expires INTEGER NOT NULL DEFAULT 0,
    ip_allowlist            TEXT NOT NULL DEFAULT '[]',
    rate_per_second         REAL NOT NULL,
    rate_burst              INTEGER NOT NULL,
    enabled                 INTEGER NOT NULL,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX partners_org ON partners (org_id);

-- Append-only: the store has no statement that updates or deletes a record.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    org_id     TEXT NOT NULL DEFAULT '',
    time       INTEGER NOT NULL,
    actor_type TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    result     TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    client_ip  TEXT NOT NULL DEFAULT '',
    status     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX audit_org_seq ON audit_log (org_id, seq);

-- Token buckets, one row per key, shared by every process using the database.
CREATE TABLE rate_limits (
    key        TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE rate_limits;
DROP TABLE audit_log;
DROP TABLE partners;
