package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"slices"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/hookd/hookd/internal/pgtest"
	"github.com/hookd/hookd/storetest"
)

// TestMigrateAttemptsWithoutIDIndex: migration 7 drops the unique index on
// attempts' id, keeping every attempt; its down migration restores it.
func TestMigrateAttemptsWithoutIDIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("pgx", pgtest.URL(t)) // registered by pgx/v5/stdlib, which this package imports
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // search_path is per session: one connection keeps it
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO organizations (id, name, created_at) VALUES ('org_1', 'o', 1)`,
		`INSERT INTO endpoints (id, org_id, url, events, enabled, signature_scheme, payload, ordering, secret, created_at, updated_at)
			VALUES ('ep_1', 'org_1', 'https://example.com', '["*"]', true, 'standard-webhooks', 'envelope', 'unordered', '\x00', 1, 1)`,
		`INSERT INTO events (seq, org_id, id, type, data, created_at) VALUES (1, 'org_1', 'evt_1', 'a.b', '{}', 1)`,
		`INSERT INTO deliveries (seq, id, org_id, event_seq, endpoint_id, status, next_attempt_at, created_at, updated_at)
			VALUES (1, 'dlv_1', 'org_1', 1, 'ep_1', 'pending', 1, 1, 1)`,
		`INSERT INTO attempts (seq, id, delivery_seq, org_id, number, url, request_headers, status_code, response_body, duration_us, error, created_at)
			VALUES (1, 'att_1', 1, 'org_1', 1, 'https://example.com', '{"A":"b"}', 500, 'no', 7, 'HTTP 500', 2),
			       (2, 'att_2', 1, 'org_1', 2, 'https://example.com', '{}', 200, 'ok', 8, '', 3)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := pgAttemptRows(t, db)
	for _, step := range []struct {
		name    string
		migrate func() error
		indexes []string
	}{
		{"up", func() error { _, err := p.UpTo(ctx, 7); return err }, []string{"attempts_delivery", "attempts_pkey"}},
		{"down", func() error { _, err := p.DownTo(ctx, 6); return err }, []string{"attempts_delivery", "attempts_id_key", "attempts_pkey"}},
		{"up again", func() error { _, err := p.UpTo(ctx, 7); return err }, []string{"attempts_delivery", "attempts_pkey"}},
	} {
		if err := step.migrate(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := pgAttemptRows(t, db); !slices.Equal(got, want) {
			t.Errorf("%s: attempts %q, want %q", step.name, got, want)
		}
		indexes := storetest.Strings(t, db, `SELECT indexname FROM pg_indexes
			WHERE schemaname = current_schema() AND tablename = 'attempts' ORDER BY indexname`)
		if !slices.Equal(indexes, step.indexes) {
			t.Errorf("%s: attempts indexes %q, want %q", step.name, indexes, step.indexes)
		}
	}
}

// pgAttemptRows returns every attempt row, all its columns, in seq order.
func pgAttemptRows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return storetest.Strings(t, db, `SELECT concat_ws('|', seq, id, delivery_seq, org_id, number, url, request_headers, status_code,
		response_body, duration_us, error, created_at) FROM attempts ORDER BY seq`)
}
