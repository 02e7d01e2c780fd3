-- +goose Up
-- The deliveries table is a queue: every claim and every attempt rewrites rows and
-- leaves dead versions in its indexes, which claims would walk. Vacuum and analyze
-- it after 2 % of its rows changed rather than PostgreSQL's default 20 %.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE rate_limits SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- +goose Down
ALTER TABLE deliveries RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
ALTER TABLE rate_limits RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
