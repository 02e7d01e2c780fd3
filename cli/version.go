package cli

import (
	"fmt"

	"github.com/hookd/hookd/app"
)

type versionCmd struct{}

// Run prints the version.
func (versionCmd) Run(rc runContext) error {
	_, err := fmt.Fprintln(rc.stdout, "hookd", app.Version)
	return err
}
