-- +goose Up
-- Claims go endpoint by endpoint: each one's due deliveries, oldest first.
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
-- The global due order is no longer walked.
DROP INDEX deliveries_due;

-- +goose Down
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
DROP INDEX deliveries_endpoint_due;
