-- +goose Up
-- A claim takes an endpoint's due deliveries ORDER BY next_attempt_at, seq: with
-- seq in the index the scan stops after the claim's share, instead of sorting
-- every due delivery of the endpoint (all of them tie on next_attempt_at when
-- published together).
CREATE INDEX deliveries_endpoint_due_seq ON deliveries (endpoint_id, next_attempt_at, seq) WHERE status = 'pending';
DROP INDEX deliveries_endpoint_due;

-- +goose Down
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
DROP INDEX deliveries_endpoint_due_seq;
