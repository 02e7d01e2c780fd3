package cli

import (
	"fmt"

	"github.com/hookd/hookd/postgres"
)

type migrateCmd struct {
	DatabaseURL string `name:"database-url" required:"" env:"HOOKD_DATABASE_URL" help:"PostgreSQL URL (postgres://user:pass@host:5432/db)."`
}

// Run applies every pending migration. Instances starting at the same time, or a
// migrate run beside them, apply each migration once (they take turns on a lock).
func (c *migrateCmd) Run(rc runContext) error {
	if err := postgres.Migrate(rc.ctx, c.DatabaseURL); err != nil {
		return err
	}
	fmt.Fprintln(rc.stdout, "postgres schema is up to date")
	return nil
}
