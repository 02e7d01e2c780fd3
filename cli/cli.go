// Package cli is hookd's command line: it parses flags and their HOOKD_*
// environment equivalents into an app.Config and runs the subcommand.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/alecthomas/kong"
)

// command line: one field per subcommand.
type commandLine struct {
	Serve   serveCmd   `cmd:"" help:"Run the hookd server (API and delivery engine)."`
	Migrate migrateCmd `cmd:"" help:"Apply the PostgreSQL schema migrations and exit (serve also applies them at start)."`
	Version versionCmd `cmd:"" help:"Print the version."`
	Bench   benchCmds  `embed:""`
}

// exit is panicked by kong's exit hook (after --help, or a usage error) and
// recovered by Run, so that parsing never ends the process itself.
type exit struct{ code int }

// Run parses args (without the program name) and runs the chosen subcommand until
// ctx is cancelled or it fails. It writes to stdout and stderr, never exits.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cl commandLine
	parser, err := kong.New(&cl,
		kong.Name("hookd"),
		kong.Description("hookd is a webhook gateway: it sends signed webhooks for your application and receives them from partners."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exit{code}) }),
		kong.UsageOnError(),
	)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(exit)
			if !ok {
				panic(r)
			}
			if e.code != 0 {
				err = fmt.Errorf("invalid command line")
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		var pe *kong.ParseError
		if errors.As(err, &pe) {
			fmt.Fprintln(stderr, "hookd:", err)
			return fmt.Errorf("invalid command line")
		}
		return err
	}
	return kctx.Run(runContext{ctx: ctx, stdout: stdout, stderr: stderr})
}

// runContext is what every subcommand's Run receives.
type runContext struct {
	ctx            context.Context
	stdout, stderr io.Writer
}
