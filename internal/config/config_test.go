package config_test

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/config"
)

// load runs config.Load as a command does, with a file (written when not empty), an
// environment and flags.
func load(t *testing.T, file string, env map[string]string, args ...string) (config.Config, []string, error) {
	t.Helper()
	cfg := config.Default()
	fs := flag.NewFlagSet("parley", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.Bind(fs)
	if file != "" {
		path := filepath.Join(t.TempDir(), "parley.conf")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if env == nil {
			env = map[string]string{}
		}
		if _, ok := env["PARLEY_CONFIG"]; !ok {
			env["PARLEY_CONFIG"] = path
		} else {
			args = append([]string{"--config", path}, args...)
		}
	}
	rest, err := config.Load(fs, args, func(k string) string { return env[k] })
	return cfg, rest, err
}

func TestDefaultsAreValid(t *testing.T) {
	cfg := config.Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.BodyLimit != 1<<20 || cfg.AdminToken != "" || !cfg.AutoMigrate ||
		!strings.HasPrefix(cfg.DatabaseURL, "sqlite:") || cfg.ShutdownTimeout != 30*time.Second {
		t.Errorf("defaults = %+v", cfg)
	}
}

// TestPrecedence sets each kind of setting in every combination of file, environment and
// flag: the flag wins over the environment, which wins over the file, which wins over the
// default.
func TestPrecedence(t *testing.T) {
	type layer struct{ file, env, flag string }
	for _, s := range []struct {
		name    string // flag name
		values  layer
		def     string
		current func(config.Config) string
	}{
		{"addr", layer{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}, "127.0.0.1:8080", func(c config.Config) string { return c.Addr }},
		{"body-limit", layer{"2000", "3000", "4000"}, "1048576", func(c config.Config) string { return itoa(c.BodyLimit) }},
		{"shutdown-timeout", layer{"1s", "2s", "3s"}, "30s", func(c config.Config) string { return c.ShutdownTimeout.String() }},
		{"auto-migrate", layer{"false", "true", "false"}, "true", func(c config.Config) string { return boolStr(c.AutoMigrate) }},
		{"trusted-proxies", layer{"10.0.0.1", "10.0.0.2,10.0.0.3", "::1"}, "", func(c config.Config) string { return strings.Join(c.TrustedProxies, ",") }},
		{"log-level", layer{"debug", "warn", "error"}, "info", func(c config.Config) string { return c.LogLevel }},
	} {
		for mask := range 8 {
			inFile, inEnv, inFlag := mask&1 != 0, mask&2 != 0, mask&4 != 0
			t.Run(s.name+"/"+[]string{"-", "f"}[mask&1]+[]string{"-", "e"}[mask>>1&1]+[]string{"-", "F"}[mask>>2&1], func(t *testing.T) {
				file, env, args := "", map[string]string{}, []string{}
				want := s.def
				if inFile {
					file = "# a comment\n\n" + config.EnvName(s.name) + "=" + s.values.file + "\n"
					want = s.values.file
				}
				if inEnv {
					env[config.EnvName(s.name)] = s.values.env
					want = s.values.env
				}
				if inFlag {
					args = []string{"--" + s.name + "=" + s.values.flag}
					want = s.values.flag
				}
				cfg, _, err := load(t, file, env, args...)
				if err != nil {
					t.Fatal(err)
				}
				if got := s.current(cfg); got != want {
					t.Errorf("%s = %q, want %q", s.name, got, want)
				}
				if err := cfg.Validate(); err != nil {
					t.Errorf("validate: %v", err)
				}
			})
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// TestConfigFile checks the file's syntax (comments, quotes, with or without the PARLEY_
// prefix), that --config on the command line beats PARLEY_CONFIG, and that arguments after
// the flags are returned.
func TestConfigFile(t *testing.T) {
	cfg, rest, err := load(t, "# parley\n  PARLEY_ADDR = \"127.0.0.1:9\"  \nadmin_token=s3cret\nLOG_FORMAT=json\n\n", nil, "--log-level", "debug", "extra", "args")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9" || cfg.AdminToken != "s3cret" || cfg.LogFormat != "json" || cfg.LogLevel != "debug" {
		t.Errorf("cfg = %+v", cfg)
	}
	if !slices.Equal(rest, []string{"extra", "args"}) {
		t.Errorf("rest = %v", rest)
	}
	// --config names another file than PARLEY_CONFIG: the flag wins.
	envFile := filepath.Join(t.TempDir(), "env.conf")
	os.WriteFile(envFile, []byte("PARLEY_ADDR=127.0.0.1:1\n"), 0o600)
	cfg, _, err = load(t, "PARLEY_ADDR=127.0.0.1:2\n", map[string]string{"PARLEY_CONFIG": envFile})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:2" {
		t.Errorf("--config did not win over PARLEY_CONFIG: addr %s", cfg.Addr)
	}
}

// TestBadConfig checks bad values are refused, by Load or by Validate, with a message that
// names the setting (and the file's line).
func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string
		env   map[string]string
		args  []string
		words []string // the error names these
	}{
		{"env not a number", "", map[string]string{"PARLEY_BODY_LIMIT": "big"}, nil, []string{"PARLEY_BODY_LIMIT"}},
		{"env not a duration", "", map[string]string{"PARLEY_SHUTDOWN_TIMEOUT": "30"}, nil, []string{"PARLEY_SHUTDOWN_TIMEOUT"}},
		{"env not a boolean", "", map[string]string{"PARLEY_AUTO_MIGRATE": "maybe"}, nil, []string{"PARLEY_AUTO_MIGRATE"}},
		{"flag not a number", "", nil, []string{"--body-limit=big"}, []string{"body-limit"}},
		{"unknown flag", "", nil, []string{"--no-such-setting=1"}, []string{"no-such-setting"}},
		{"file unknown setting", "PARLEY_ADDR=x:1\nPARLEY_COLOUR=blue\n", nil, nil, []string{"parley.conf:2", "PARLEY_COLOUR"}},
		{"file line without =", "PARLEY_ADDR\n", nil, nil, []string{"parley.conf:1"}},
		{"file bad value", "\n\nPARLEY_BODY_LIMIT=lots\n", nil, nil, []string{"parley.conf:3"}},
		{"missing file", "", map[string]string{"PARLEY_CONFIG": "/nonexistent/parley.conf"}, nil, []string{"config file"}},
		{"log level", "", map[string]string{"PARLEY_LOG_LEVEL": "loud"}, nil, []string{"log-level"}},
		{"log format", "", nil, []string{"--log-format=xml"}, []string{"log-format"}},
		{"database url", "", nil, []string{"--database-url=mysql://localhost/parley"}, []string{"database-url"}},
		{"body limit too small", "", nil, []string{"--body-limit=100"}, []string{"body-limit"}},
		{"trusted proxy", "", map[string]string{"PARLEY_TRUSTED_PROXIES": "10.0.0.0/8,nope"}, nil, []string{"trusted-proxies", "nope"}},
		{"trusted proxy range", "", nil, []string{"--trusted-proxies=10.0.0.0/33"}, []string{"trusted-proxies"}},
		{"stream heartbeat too short", "", nil, []string{"--stream-heartbeat=500ms"}, []string{"stream-heartbeat"}},
		{"stream heartbeat too long", "", map[string]string{"PARLEY_STREAM_HEARTBEAT": "1h"}, nil, []string{"stream-heartbeat"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := load(t, tc.file, tc.env, tc.args...)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}
