-- +goose Up
-- The same schema as the SQLite store's, in PostgreSQL's dialect: times are Unix
-- microseconds (BIGINT), a FIFO endpoint's parked deliveries have next_attempt_at
-- 2^62, and the deliveries table is the queue.
CREATE TABLE organizations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    monthly_quota BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    org_id     TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE endpoints (
    seq                     BIGSERIAL UNIQUE,
    id                      TEXT PRIMARY KEY,
    org_id                  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                     TEXT NOT NULL,
    events                  TEXT NOT NULL,
    description             TEXT NOT NULL DEFAULT '',
    enabled                 BOOLEAN NOT NULL,
    disabled_reason         TEXT NOT NULL DEFAULT '',
    headers                 TEXT NOT NULL DEFAULT '{}',
    signature_scheme        TEXT NOT NULL,
    signature_header        TEXT NOT NULL DEFAULT '',
    payload                 TEXT NOT NULL,
    retry_max_attempts      INTEGER NOT NULL DEFAULT 0,
    retry_initial_us        BIGINT NOT NULL DEFAULT 0,
    retry_max_us            BIGINT NOT NULL DEFAULT 0,
    rate_limit              DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_in_flight           INTEGER NOT NULL DEFAULT 0,
    ordering                TEXT NOT NULL,
    secret                  BYTEA NOT NULL,
    previous_secret         BYTEA,
    previous_secret_expires BIGINT NOT NULL DEFAULT 0,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX endpoints_org ON endpoints (org_id, seq);

CREATE TABLE events (
    seq             BIGSERIAL PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    data            BYTEA NOT NULL,
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL,
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX events_idempotency ON events (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_id ON events (id);
CREATE INDEX events_org_seq ON events (org_id, seq);

CREATE TABLE deliveries (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    org_id           TEXT NOT NULL,
    event_seq        BIGINT NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    cycle_attempts   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease            TEXT,
    lease_until      BIGINT,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- Claims go endpoint by endpoint: which endpoints have pending work, each one's
-- due deliveries oldest first, its FIFO head, and what it has in flight.
CREATE INDEX deliveries_endpoint_pending ON deliveries (endpoint_id, seq) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (endpoint_id) WHERE lease IS NOT NULL;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, seq);
CREATE INDEX deliveries_event ON deliveries (event_seq);
CREATE INDEX deliveries_org ON deliveries (org_id, seq);

CREATE TABLE attempts (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    delivery_seq    BIGINT NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
    org_id          TEXT NOT NULL,
    number          INTEGER NOT NULL,
    url             TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    status_code     INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    duration_us     BIGINT NOT NULL,
    error           TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_seq);

CREATE TABLE partners (
    id                      TEXT PRIMARY KEY,
    org_id                  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    api_key_hash            TEXT NOT NULL UNIQUE,
    secret                  BYTEA NOT NULL,
    previous_secret         BYTEA,
    previous_secret_expires BIGINT NOT NULL DEFAULT 0,
    ip_allowlist            TEXT NOT NULL DEFAULT '[]',
    rate_per_second         DOUBLE PRECISION NOT NULL,
    rate_burst              INTEGER NOT NULL,
    enabled                 BOOLEAN NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX partners_org ON partners (org_id);

-- Append-only: the store has no statement that updates or deletes a record.
CREATE TABLE audit_log (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    org_id     TEXT NOT NULL DEFAULT '',
    time       BIGINT NOT NULL,
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

-- Token buckets, one row per key, shared by every instance.
CREATE TABLE rate_limits (
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Facts about the database itself, such as the master key check.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- +goose Down
DROP TABLE meta;
DROP TABLE rate_limits;
DROP TABLE audit_log;
DROP TABLE partners;
DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE endpoints;
DROP TABLE api_keys;
DROP TABLE organizations;
