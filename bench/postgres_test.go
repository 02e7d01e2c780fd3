package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/pgtest"
)

// TestPostgresInfo: a bench on PostgreSQL records the server's settings that
// shape its numbers, as the server reports them.
func TestPostgresInfo(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	info, err := postgresInfo(t.Context(), url)
	if err != nil {
		t.Fatalf("postgresInfo: %v", err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	for name, got := range map[string]string{"autovacuum": info.Autovacuum, "synchronous_commit": info.SynchronousCommit,
		"server_version": info.Version} {
		var want string
		if err := conn.QueryRow(t.Context(), "SHOW "+name).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got != want || got == "" {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// TestTableWarnsWithoutAutovacuum: the table says which PostgreSQL settings the
// numbers were measured with, and warns when autovacuum was off.
func TestTableWarnsWithoutAutovacuum(t *testing.T) {
	t.Parallel()
	for _, autovacuum := range []string{"on", "off"} {
		s := &Summary{Hookd: HookdInfo{Store: "postgres", Postgres: &PostgresInfo{Version: "15.19",
			Autovacuum: autovacuum, SynchronousCommit: "on"}}}
		var b bytes.Buffer
		s.writeTable(&b)
		if !strings.Contains(b.String(), "PostgreSQL 15.19: autovacuum "+autovacuum+", synchronous_commit on") {
			t.Errorf("autovacuum %s: the table does not give the settings:\n%s", autovacuum, b.String())
		}
		if warned := strings.Contains(b.String(), "warning: autovacuum is off"); warned != (autovacuum == "off") {
			t.Errorf("autovacuum %s: warned = %v:\n%s", autovacuum, warned, b.String())
		}
	}
}
