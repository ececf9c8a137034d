package cli

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/internal/brain/dialog"
)

func dialogCmd(ctx context.Context, env *Env, args []string) error {
	return sub(ctx, env, "dialog", args, map[string]command{
		"check": {"validate a dialog file: parley dialog check FILE", dialogCheck},
		"demo":  {"print the bundled demo dialog (a starting point for your own)", dialogDemo},
	})
}

// dialogCheck loads a dialog file as the server would and reports the first problem with its
// line, so an operator can check an edit before the server picks it up.
func dialogCheck(ctx context.Context, env *Env, args []string) error {
	if len(args) != 1 {
		fmt.Fprintln(env.Stderr, "usage: parley dialog check FILE")
		return errUsage
	}
	d, err := dialog.LoadFile(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%s)\n", args[0], d.Summary())
	return nil
}

func dialogDemo(ctx context.Context, env *Env, args []string) error {
	_, err := env.Stdout.Write(dialog.DemoSource())
	return err
}
