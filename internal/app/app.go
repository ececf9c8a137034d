// Package app wires parley together: it opens the database, builds the domain, the HTTP surface
// and the background services from one Config, runs them, and shuts them down in order. The
// `parley serve` command and the end-to-end tests run the very same Main.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/agents"
	"github.com/parleyhq/parley/internal/brain/worker"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/console"
	"github.com/parleyhq/parley/internal/expiry"
	"github.com/parleyhq/parley/internal/files"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/janitor"
	"github.com/parleyhq/parley/internal/lease"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/openapi"
	"github.com/parleyhq/parley/internal/outbox"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/postgres"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// Database is a store that can also migrate and check its schema.
type Database interface {
	store.Store
	Migrate(ctx context.Context) error
	CheckSchema(ctx context.Context) error
}

// OpenDatabase opens the database a URL names: sqlite:PATH or postgres://... When migrate is
// set the schema is brought up to date; otherwise a schema this binary does not know is refused.
func OpenDatabase(ctx context.Context, dsn string, maxConns int, migrate bool, log *slog.Logger) (Database, error) {
	var db Database
	if path, ok := sqlite.PathFromURL(dsn); ok {
		s, err := sqlite.Open(path, log)
		if err != nil {
			return nil, err
		}
		db = s
	} else {
		s, err := postgres.Open(ctx, dsn, maxConns, log)
		if err != nil {
			return nil, err
		}
		db = s
	}
	check := db.CheckSchema
	if migrate {
		check = db.Migrate
	}
	if err := check(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Service is a background loop: it starts, and stops when asked, finishing its work in hand.
type Service interface {
	Start(ctx context.Context) error
	Stop()
}

// Main is one parley process.
type Main struct {
	Config config.Config
	Log    *slog.Logger
	// Clock is the time every part reads; nil means the real clock. Tests set a fake.
	Clock clock.Clock

	DB         Database
	Chat       *chat.Engine
	Admin      *admin.Service
	API        *httpapi.Server
	Router     *httpapi.Router // the route table, kept so tests can hold the API document to it
	Agents     *agents.Service
	Console    *console.Server
	Metrics    *metrics.Registry
	Files      *files.Service
	Dispatcher *outbox.Dispatcher
	Brain      *worker.Worker
	Leases     *lease.Manager
	Expiry     *expiry.Sweeper

	services []Service
	server   *http.Server
	pprof    *http.Server // nil unless Config.PprofAddr is set
	listener net.Listener
	served   chan error
}

// Run opens the database, starts the background services and starts serving HTTP. It returns
// once the server listens; Close stops everything.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
	if m.Clock == nil {
		m.Clock = clock.Real{}
	}
	db, err := OpenDatabase(ctx, m.Config.DatabaseURL, m.Config.DatabaseMaxConns, m.Config.AutoMigrate, m.Log)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	m.DB = db
	// A server alone on its SQLite file takes over at once the leases a crashed one left.
	if s, ok := db.(*sqlite.Store); ok {
		alone, err := s.ServeAlone(ctx)
		if err != nil {
			m.Close()
			return fmt.Errorf("database: %w", err)
		}
		if !alone {
			m.Log.Info("another parley server uses this SQLite database; sharing its work through leases")
		}
	}
	// Listen before building the rest: the URLs parley hands out need the address it really
	// listens on (the port is chosen by the system with :0).
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		m.Close()
		return err
	}
	m.listener = ln
	m.Metrics = metrics.NewRegistry()
	m.Chat = chat.New(m.Clock.Now)
	m.Admin = admin.New(db, m.Clock.Now)
	if m.Files, err = m.openFiles(ctx); err != nil {
		m.Close()
		return fmt.Errorf("files: %w", err)
	}
	m.Chat.ResolveFilesWith(m.Files.Resolve)
	proxies, _ := m.Config.Proxies() // validated above
	m.API = httpapi.New(httpapi.Config{BodyLimit: m.Config.BodyLimit, TrustedProxies: proxies,
		AdminToken: m.Config.AdminToken, Files: m.Files}, db, m.Chat, m.Admin, m.Log)

	// Background services, in start order; they stop in reverse. The dispatcher watches commits
	// before the leases hand it partitions; leases are given back before it stops.
	m.Dispatcher = outbox.New(db, m.Clock, m.Log, m.Metrics, outbox.Config{
		MaxInFlight: m.Config.DeliveryInFlight, Grace: m.Config.ShutdownTimeout})
	owners := []lease.Owner{m.Dispatcher}
	if m.Config.BrainInFlight > 0 {
		m.Brain = worker.New(db, m.Chat, m.Clock, m.Log, m.Metrics, worker.Options{
			MaxInFlight: m.Config.BrainInFlight, Grace: m.Config.ShutdownTimeout})
		owners = append(owners, m.Brain)
	}
	m.Leases = lease.New(db, lease.Config{Node: m.Config.NodeID}, m.Log, owners...)
	m.Expiry = expiry.New(db, m.Chat, m.Clock, m.Log, m.Metrics, m.Config.ExpiryInterval)
	m.Agents = agents.New(db, m.Clock.Now)
	m.Console = console.New(console.Config{BodyLimit: m.Config.BodyLimit, TrustedProxies: proxies, Files: m.Files,
		Heartbeat: m.Config.StreamHeartbeat},
		db, m.Chat, m.Agents, m.Log)
	m.Metrics.NewGauge("parley_agent_streams", "Agents' live streams open on this process.", func() float64 {
		return float64(m.Console.Hub().Subscribers())
	})
	m.services = []Service{m.Dispatcher}
	if m.Brain != nil {
		m.services = append(m.services, m.Brain)
	}
	m.services = append(m.services, m.Leases, m.Expiry,
		janitor.New(db, m.Clock, m.Log, m.Config.DeliveredRetained, httpapi.IdempotencyWindow),
		m.Files.Sweeper(m.Clock, m.Log), m.Console.Hub())
	for i, s := range m.services {
		if err := s.Start(ctx); err != nil {
			m.services = m.services[:i]
			m.Close()
			return err
		}
	}

	if m.Config.PprofAddr != "" {
		if err := m.startPprof(m.Config.PprofAddr); err != nil {
			m.Close()
			return fmt.Errorf("pprof: %w", err)
		}
	}

	rt := httpapi.NewRouter(m.Log)
	m.API.Register(rt)
	m.Console.Register(rt)
	httpapi.RegisterOps(rt, db.Ping, m.Metrics, m.Log)
	openapi.Register(rt)
	m.Router = rt
	m.server = &http.Server{
		Handler:           httpapi.Observe(rt.Handler(), m.Log, m.Metrics),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	// Live streams never end by themselves: Shutdown ends them first, or it would wait for them.
	m.server.RegisterOnShutdown(m.Console.Hub().CloseSubscriptions)
	m.served = make(chan error, 1)
	go func() { m.served <- m.server.Serve(ln) }()
	m.Log.Info("parley is serving", "addr", m.Addr(), "database", redact(m.Config.DatabaseURL))
	return nil
}

// Addr returns the address the server listens on (the real port when configured with :0).
func (m *Main) Addr() string {
	if m.listener == nil {
		return ""
	}
	return m.listener.Addr().String()
}

// URL returns the server's base URL.
func (m *Main) URL() string { return "http://" + m.Addr() }

// Close shuts down in order: stop accepting and finish in-flight requests, stop the background
// services (they finish or hand back their work), then close the database.
func (m *Main) Close() error {
	var errs []error
	if m.pprof != nil {
		m.pprof.Close() // profiles in progress are of no use once the server stops
		m.pprof = nil
	}
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		err := m.server.Shutdown(ctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		// served is nil when Run failed before serving (the port was taken, say): then there
		// is nothing to wait for.
		if m.served != nil {
			if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, err)
			}
		}
		m.server = nil
	} else if m.listener != nil {
		m.listener.Close() // Run failed before serving
	}
	for i := len(m.services) - 1; i >= 0; i-- {
		m.services[i].Stop()
	}
	m.services = nil
	if m.DB != nil {
		if err := m.DB.Close(); err != nil {
			errs = append(errs, err)
		}
		m.DB = nil
	}
	return errors.Join(errs...)
}

// redact hides a password in a database URL.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
