// Package config is parley's one configuration struct. Every setting has a default that works on
// one laptop, an environment variable PARLEY_<NAME> and a flag --<name>; an optional file of
// PARLEY_<NAME>=value lines (--config or PARLEY_CONFIG) sets them too. Precedence: flag, then
// environment, then file, then default. The result is validated once and passed explicitly.
package config

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/parleyhq/parley"
)

// Config is every setting of parley.
type Config struct {
	Addr            string
	DatabaseURL     string
	AdminToken      string
	LogLevel        string
	LogFormat       string
	TrustedProxies  []string
	BodyLimit       int64
	ShutdownTimeout time.Duration
	AutoMigrate     bool

	DatabaseMaxConns  int           // PostgreSQL connections this process opens at most
	NodeID            string        // this process among those sharing a database; random by default
	DeliveryInFlight  int           // webhook deliveries in flight at once, all integrations together
	BrainInFlight     int           // brain calls in flight at once; 0 runs no brain worker (for measurements and tests)
	DeliveredRetained time.Duration // how long delivered webhook events are kept
	ExpiryInterval    time.Duration // how often sessions past their timeout are looked for
	// StreamHeartbeat is how often an agent's idle live stream gets a comment, so proxies keep
	// it open, and how often the stream checks its credential is still good.
	StreamHeartbeat time.Duration
	// PublicURL is the base URL clients reach this server at, for the URLs it hands out (file
	// uploads and downloads). Empty means http:// and the address it listens on.
	PublicURL string
	Files     Files
	// PprofAddr serves net/http/pprof for profiling under load; empty (the default) serves
	// nothing. Only a loopback address is accepted: profiles show internals.
	PprofAddr string
}

// Default returns the defaults: SQLite in the working directory, loopback only.
func Default() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DatabaseURL:     "sqlite://./parley.db",
		LogLevel:        "info",
		LogFormat:       "text",
		BodyLimit:       1 << 20,
		ShutdownTimeout: 30 * time.Second,
		AutoMigrate:     true,

		DatabaseMaxConns:  32,
		DeliveryInFlight:  1024,
		BrainInFlight:     1024,
		DeliveredRetained: 7 * 24 * time.Hour,
		ExpiryInterval:    500 * time.Millisecond,
		StreamHeartbeat:   15 * time.Second,
		Files:             DefaultFiles(),
	}
}

// Bind registers every setting as a flag of fs, with c's values as defaults.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "address to listen on (PARLEY_ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "sqlite://PATH or postgres://... (PARLEY_DATABASE_URL)")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "bearer token of the admin API; empty closes it (PARLEY_ADMIN_TOKEN)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (PARLEY_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json (PARLEY_LOG_FORMAT)")
	fs.Func("trusted-proxies", "comma-separated IPs or CIDRs whose X-Forwarded-For is believed (PARLEY_TRUSTED_PROXIES)", func(s string) error {
		c.TrustedProxies = splitList(s)
		return nil
	})
	fs.Int64Var(&c.BodyLimit, "body-limit", c.BodyLimit, "largest JSON request body in bytes (PARLEY_BODY_LIMIT)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown waits for in-flight work (PARLEY_SHUTDOWN_TIMEOUT)")
	fs.BoolVar(&c.AutoMigrate, "auto-migrate", c.AutoMigrate, "migrate the database schema at start (PARLEY_AUTO_MIGRATE)")
	fs.IntVar(&c.DatabaseMaxConns, "database-max-conns", c.DatabaseMaxConns, "PostgreSQL connections this process opens at most (PARLEY_DATABASE_MAX_CONNS)")
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "this process's name among those sharing a database; random by default (PARLEY_NODE_ID)")
	fs.IntVar(&c.DeliveryInFlight, "delivery-in-flight", c.DeliveryInFlight, "webhook deliveries in flight at once, all integrations together (PARLEY_DELIVERY_IN_FLIGHT)")
	fs.IntVar(&c.BrainInFlight, "brain-in-flight", c.BrainInFlight, "brain replies being worked on at once; 0 runs no brain worker, and this process's sessions wait unanswered (PARLEY_BRAIN_IN_FLIGHT)")
	fs.DurationVar(&c.DeliveredRetained, "delivered-retained", c.DeliveredRetained, "how long delivered webhook events are kept (PARLEY_DELIVERED_RETAINED)")
	fs.DurationVar(&c.ExpiryInterval, "expiry-interval", c.ExpiryInterval, "how often sessions past their timeout are looked for (PARLEY_EXPIRY_INTERVAL)")
	fs.DurationVar(&c.StreamHeartbeat, "stream-heartbeat", c.StreamHeartbeat, "how often an idle agent stream is pinged, and its token or login checked again (PARLEY_STREAM_HEARTBEAT)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL clients reach this server at, for the file URLs it hands out; default: http://ADDR (PARLEY_PUBLIC_URL)")
	c.Files.bind(fs)
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "loopback address to serve /debug/pprof on; empty turns it off (PARLEY_PPROF_ADDR)")
	fs.String("config", "", "file of PARLEY_<NAME>=value lines (PARLEY_CONFIG)")
}

// Load fills fs's settings from the config file, the environment and args, in that order of
// increasing precedence, and returns the arguments left after the flags.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	path := getenv("PARLEY_CONFIG")
	for i, a := range args {
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "config="); ok && strings.HasPrefix(a, "-") {
			path = v
		} else if (a == "--config" || a == "-config") && i+1 < len(args) {
			path = args[i+1]
		}
	}
	if path != "" {
		if err := loadFile(fs, path); err != nil {
			return nil, err
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(EnvName(f.Name)); v != "" && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", EnvName(f.Name), e)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// EnvName returns the environment variable of a flag: addr -> PARLEY_ADDR.
func EnvName(flagName string) string {
	return "PARLEY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func loadFile(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(strings.TrimSpace(k), "PARLEY_"), "_", "-"))
		if !ok || fs.Lookup(name) == nil {
			return fmt.Errorf("%s:%d: unknown setting %q", path, n, strings.TrimSpace(k))
		}
		if err := fs.Set(name, strings.Trim(strings.TrimSpace(v), `"`)); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return sc.Err()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks every setting once, so the rest of parley can trust them.
func (c *Config) Validate() error {
	if _, err := c.Level(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log-format must be text or json, not %q", c.LogFormat)
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return fmt.Errorf("database-url must start with sqlite:, postgres:// or postgresql://")
	}
	if _, err := c.Proxies(); err != nil {
		return err
	}
	if c.BodyLimit < 1024 {
		return fmt.Errorf("body-limit must be at least 1024 bytes")
	}
	if c.DatabaseMaxConns < 1 {
		return fmt.Errorf("database-max-conns must be at least 1")
	}
	if c.BrainInFlight < 0 {
		return fmt.Errorf("brain-in-flight must be 0 or more")
	}
	if c.DeliveryInFlight < 1 {
		return fmt.Errorf("delivery-in-flight must be at least 1")
	}
	if c.ExpiryInterval <= 0 || c.ExpiryInterval > time.Second {
		return fmt.Errorf("expiry-interval must be between 1ns and 1s (session:expired is due within 2s of the deadline)")
	}
	if c.StreamHeartbeat < time.Second || c.StreamHeartbeat > 5*time.Minute {
		return fmt.Errorf("stream-heartbeat must be between 1s and 5m (each beat reads the store once per stream)")
	}
	if c.PprofAddr != "" && !loopback(c.PprofAddr) {
		return fmt.Errorf("pprof-addr must be a loopback address such as 127.0.0.1:6060, not %q", c.PprofAddr)
	}
	if c.PublicURL != "" {
		if err := checkBaseURL(c.PublicURL); err != nil {
			return fmt.Errorf("public-url: %v", err)
		}
	}
	return c.Files.validate()
}

// loopback reports whether hostport names a loopback host.
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Level returns the log level.
func (c *Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("log-level must be debug, info, warn or error, not %q", c.LogLevel)
	}
	return l, nil
}

// Proxies returns the trusted proxies as ranges.
func (c *Config) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		p, err := parley.ParseIPRange(s)
		if err != nil {
			return nil, fmt.Errorf("trusted-proxies: %q is not an IP address or CIDR range", s)
		}
		out = append(out, p)
	}
	return out, nil
}

// Logger returns the logger the settings describe, writing to w.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level, _ := c.Level()
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
