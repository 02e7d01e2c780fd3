-- +goose Up
CREATE TABLE organizations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    monthly_quota INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    org_id     TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id                      TEXT PRIMARY KEY,
    org_id                  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                     TEXT NOT NULL,
    events                  TEXT NOT NULL,
    description             TEXT NOT NULL DEFAULT '',
    enabled                 INTEGER NOT NULL,
    disabled_reason         TEXT NOT NULL DEFAULT '',
    headers                 TEXT NOT NULL DEFAULT '{}',
    signature_scheme        TEXT NOT NULL,
    signature_header        TEXT NOT NULL DEFAULT '',
    payload                 TEXT NOT NULL,
    retry_max_attempts      INTEGER NOT NULL DEFAULT 0,
    retry_initial_us        INTEGER NOT NULL DEFAULT 0,
    retry_max_us            INTEGER NOT NULL DEFAULT 0,
    rate_limit              REAL NOT NULL DEFAULT 0,
    max_in_flight           INTEGER NOT NULL DEFAULT 0,
    ordering                TEXT NOT NULL,
    secret                  BLOB NOT NULL,
    previous_secret         BLOB,
    previous_secret_expires INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX endpoints_org ON endpoints (org_id);

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    data            BLOB NOT NULL,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX events_idempotency ON events (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_id ON events (id);
CREATE INDEX events_org_seq ON events (org_id, seq);

CREATE TABLE deliveries (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    org_id           TEXT NOT NULL,
    event_seq        INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    cycle_attempts   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease            TEXT,
    lease_until      INTEGER,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- The queue: only pending deliveries, in due order.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
-- FIFO heads: an endpoint's pending deliveries in publish order.
CREATE INDEX deliveries_endpoint_pending ON deliveries (endpoint_id, seq) WHERE status = 'pending';
-- Deliveries in flight, per endpoint (few at any time).
CREATE INDEX deliveries_leased ON deliveries (endpoint_id) WHERE lease IS NOT NULL;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, seq);
CREATE INDEX deliveries_event ON deliveries (event_seq);
CREATE INDEX deliveries_org ON deliveries (org_id, seq);

CREATE TABLE attempts (
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
CREATE INDEX attempts_delivery ON attempts (delivery_seq);

-- +goose Down
DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE endpoints;
DROP TABLE api_keys;
DROP TABLE organizations;
