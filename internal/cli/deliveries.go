package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/store"
)

func deliveries(ctx context.Context, env *Env, args []string) error {
	return sub(ctx, env, "deliveries", args, map[string]command{
		"list":   {"list webhook deliveries with their attempts", deliveriesList},
		"replay": {"send failed deliveries of an integration again", deliveriesReplay},
	})
}

func deliveriesList(ctx context.Context, env *Env, args []string) error {
	fs, cfg := flags(env, "deliveries list")
	integ := fs.String("integration", "", "only this integration's events")
	status := fs.String("status", "", "only events in this state: failed, pending or delivered")
	event := fs.String("event", "", "only this event (with its body)")
	limit := fs.Int("limit", 100, "at most this many, newest first")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(env, fs, cfg, args); err != nil {
		return err
	}
	f := store.EventFilter{State: *status, Limit: *limit}
	var err error
	if *integ != "" {
		if f.IntegrationID, err = checkID("--integration", "an integration", *integ); err != nil {
			return err
		}
	}
	if *event != "" {
		if f.EventID, err = checkID("--event", "an event", *event); err != nil {
			return err
		}
	}
	return withAdmin(ctx, env, cfg, func(adm *admin.Service) error {
		list, err := adm.Deliveries(ctx, f)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, list)
		}
		fmt.Fprintf(env.Stdout, "%-36s  %-26s  %-9s  %-8s  %s\n", "EVENT", "TYPE", "STATUS", "ATTEMPTS", "LAST ERROR")
		for _, d := range list {
			fmt.Fprintf(env.Stdout, "%-36s  %-26s  %-9s  %-8d  %s\n", d.ID, d.EventType, d.State, d.Attempts, d.LastError)
			for _, a := range d.AttemptLog {
				fmt.Fprintf(env.Stdout, "    attempt at %s  status %d  %dms  %s\n",
					time.UnixMilli(a.At).UTC().Format(time.RFC3339Nano), a.Status, a.DurationMS, a.Error)
			}
		}
		return nil
	})
}

func deliveriesReplay(ctx context.Context, env *Env, args []string) error {
	fs, cfg := flags(env, "deliveries replay")
	integ := fs.String("integration", "", "the integration whose failed events are sent again (required)")
	event := fs.String("event", "", "only this event")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(env, fs, cfg, args); err != nil {
		return err
	}
	iid, err := checkID("--integration", "an integration", *integ)
	if err != nil {
		return err
	}
	var eid string
	if *event != "" {
		if eid, err = checkID("--event", "an event", *event); err != nil {
			return err
		}
	}
	return withAdmin(ctx, env, cfg, func(adm *admin.Service) error {
		list, err := adm.Replay(ctx, iid, eid)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, list)
		}
		fmt.Fprintf(env.Stdout, "%d failed events are pending again; a running server sends them within seconds\n", len(list))
		return nil
	})
}
