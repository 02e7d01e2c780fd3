package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/hookd/hookd/storetest"
)

// TestMigrateAttemptsWithoutIDIndex: migration 7 makes the attempts table anew
// without the unique index on id, keeping every attempt and the index by
// delivery; its down migration restores the index, keeping them again.
func TestMigrateAttemptsWithoutIDIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO organizations (id, name, created_at) VALUES ('org_1', 'o', 1)`,
		`INSERT INTO endpoints (id, org_id, url, events, enabled, signature_scheme, payload, ordering, secret, created_at, updated_at)
			VALUES ('ep_1', 'org_1', 'https://example.com', '["*"]', 1, 'standard-webhooks', 'envelope', 'unordered', x'00', 1, 1)`,
		`INSERT INTO events (seq, org_id, id, type, data, created_at) VALUES (1, 'org_1', 'evt_1', 'a.b', '{}', 1)`,
		`INSERT INTO deliveries (seq, id, org_id, event_seq, endpoint_id, status, next_attempt_at, created_at, updated_at)
			VALUES (1, 'dlv_1', 'org_1', 1, 'ep_1', 'pending', 1, 1, 1), (2, 'dlv_2', 'org_1', 1, 'ep_1', 'pending', 1, 1, 1)`,
		`INSERT INTO attempts (seq, id, delivery_seq, org_id, number, url, request_headers, status_code, response_body, duration_us, error, created_at)
			VALUES (1, 'att_1', 1, 'org_1', 1, 'https://example.com', '{"A":"b"}', 500, 'no', 7, 'HTTP 500', 2),
			       (2, 'att_2', 1, 'org_1', 2, 'https://example.com', '{}', 200, 'ok', 8, '', 3),
			       (3, 'att_3', 2, 'org_1', 1, 'https://example.com', '{}', 200, 'ok', 9, '', 4)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := attemptRows(t, db)
	for _, step := range []struct {
		name    string
		migrate func() error
		indexes []string
	}{
		{"up", func() error { _, err := p.UpTo(ctx, 7); return err }, []string{"attempts_delivery"}},
		{"down", func() error { _, err := p.DownTo(ctx, 6); return err }, []string{"attempts_delivery", "sqlite_autoindex_attempts_1"}},
		{"up again", func() error { _, err := p.UpTo(ctx, 7); return err }, []string{"attempts_delivery"}},
	} {
		if err := step.migrate(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := attemptRows(t, db); !slices.Equal(got, want) {
			t.Errorf("%s: attempts %q, want %q", step.name, got, want)
		}
		indexes := storetest.Strings(t, db, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'attempts' ORDER BY name`)
		if !slices.Equal(indexes, step.indexes) {
			t.Errorf("%s: attempts indexes %q, want %q", step.name, indexes, step.indexes)
		}
		// The attempts still follow their delivery out.
		var fk int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_list('attempts') WHERE "table" = 'deliveries' AND on_delete = 'CASCADE'`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("%s: attempts' foreign keys to deliveries with cascade = %d, %v; want 1", step.name, fk, err)
		}
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM deliveries WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	if got := attemptRows(t, db); len(got) != 1 {
		t.Errorf("after deleting a delivery: attempts %q, want only the other delivery's", got)
	}
}

// attemptRows returns every attempt row, all its columns, in seq order.
func attemptRows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return storetest.Strings(t, db, `SELECT seq || '|' || id || '|' || delivery_seq || '|' || org_id || '|' || number || '|' || url || '|' ||
		request_headers || '|' || status_code || '|' || response_body || '|' || duration_us || '|' || error || '|' || created_at
		FROM attempts ORDER BY seq`)
}
