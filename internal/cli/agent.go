package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
)

func agent(ctx context.Context, env *Env, args []string) error {
	return sub(ctx, env, "agent", args, map[string]command{
		"create": {"create a console agent with a password and/or an API token", agentCreate},
		"list":   {"list agents", agentList},
		"token":  {"add an API token to an agent, or --revoke one", agentToken},
	})
}

func agentCreate(ctx context.Context, env *Env, args []string) error {
	fs, cfg := flags(env, "agent create")
	var spec admin.AgentSpec
	fs.StringVar(&spec.Email, "email", "", "the agent's email, their login (required)")
	fs.StringVar(&spec.Name, "name", "", "the agent's name, shown to users (required)")
	fs.StringVar(&spec.Avatar, "avatar", "", "URL of the agent's picture")
	fs.StringVar(&spec.Password, "password", "", "console password (8 bytes or more)")
	passwordFile := fs.String("password-file", "", "read the console password from this file (keeps it out of shell history)")
	fs.BoolVar(&spec.Token, "token", false, "also make an API token for the agent REST API, printed once")
	fs.Func("integrations", "comma-separated IDs of the integrations the agent may work in (default: all)", func(s string) error {
		spec.Integrations = splitIDs(s)
		return nil
	})
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(env, fs, cfg, args); err != nil {
		return err
	}
	if *passwordFile != "" {
		b, err := os.ReadFile(*passwordFile)
		if err != nil {
			return err
		}
		spec.Password = strings.TrimRight(string(b), "\r\n")
	}
	if spec.Email == "" || spec.Name == "" {
		return parley.Errorf(parley.EInvalid, "--email and --name are required")
	}
	return withAdmin(ctx, env, cfg, func(adm *admin.Service) error {
		v, err := adm.CreateAgent(ctx, spec)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, v)
		}
		fmt.Fprintf(env.Stdout, "agent %s <%s> created\nid:    %s\n", v.Name, v.Email, v.ID)
		if v.Token != "" {
			fmt.Fprintf(env.Stdout, "token: %s   (shown once: store it now)\n", v.Token)
		}
		return nil
	})
}

func splitIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func agentList(ctx context.Context, env *Env, args []string) error {
	fs, cfg := flags(env, "agent list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(env, fs, cfg, args); err != nil {
		return err
	}
	return withAdmin(ctx, env, cfg, func(adm *admin.Service) error {
		list, err := adm.Agents(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, list)
		}
		fmt.Fprintf(env.Stdout, "%-36s  %-28s  %-20s  %-8s  %-6s  %s\n", "ID", "EMAIL", "NAME", "PASSWORD", "TOKENS", "INTEGRATIONS")
		for _, v := range list {
			scope := "all"
			if len(v.Integrations) > 0 {
				scope = strings.Join(v.Integrations, ",")
			}
			pw := "no"
			if v.HasPassword {
				pw = "yes"
			}
			fmt.Fprintf(env.Stdout, "%-36s  %-28s  %-20s  %-8s  %-6d  %s\n", v.ID, v.Email, v.Name, pw, len(v.Tokens), scope)
		}
		return nil
	})
}

func agentToken(ctx context.Context, env *Env, args []string) error {
	fs, cfg := flags(env, "agent token")
	email := fs.String("email", "", "the agent's email")
	revoke := fs.String("revoke", "", "revoke the token of this ID (tokens[].id in `agent list --json`) instead of adding one")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(env, fs, cfg, args); err != nil {
		return err
	}
	if *email == "" {
		return parley.Errorf(parley.EInvalid, "--email is required")
	}
	tokenID := ""
	if *revoke != "" {
		var err error
		if tokenID, err = checkID("--revoke", "a token", *revoke); err != nil {
			return err
		}
	}
	return withAdmin(ctx, env, cfg, func(adm *admin.Service) error {
		a, err := adm.AgentByEmail(ctx, *email)
		if parley.IsCode(err, parley.ENotFound) {
			return parley.Errorf(parley.ENotFound, "no agent with email %s", *email)
		}
		if err != nil {
			return err
		}
		if tokenID != "" {
			if err := adm.RevokeAgentToken(ctx, a.ID, tokenID); err != nil {
				return err
			}
			if *asJSON {
				return printJSON(env.Stdout, map[string]any{"id": tokenID, "agent_id": a.ID, "revoked": true})
			}
			fmt.Fprintf(env.Stdout, "token %s revoked\n", tokenID)
			return nil
		}
		k, plain, err := adm.AddAgentToken(ctx, a.ID)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, map[string]any{"id": k.ID, "agent_id": a.ID, "prefix": k.Prefix,
				"token": plain, "created_at": k.CreatedAt})
		}
		fmt.Fprintf(env.Stdout, "token: %s   (shown once: store it now)\n", plain)
		return nil
	})
}
