// Package agents is who an agent is: it checks an agent's console password or API token, and
// starts, finds and ends console logins. What an agent may do to a conversation is decided
// elsewhere (package chat).
//
// It must never keep a secret in clear: passwords are stored as argon2id hashes, tokens and
// login cookies as SHA-256 hashes of 256 random bits.
package agents

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Defaults of a Service.
const (
	// DefaultLoginTTL is how long a console login lasts: a working week, after which the agent
	// logs in again.
	DefaultLoginTTL = 7 * 24 * time.Hour
	// MaxFailures failed logins for one email, or MaxAddressFailures from one client address
	// (an office behind one NAT is many agents), within FailureWindow block further attempts
	// until the window ends.
	MaxFailures        = 10
	MaxAddressFailures = 50
	FailureWindow      = 15 * time.Minute
)

// Service authenticates agents.
type Service struct {
	store    store.Store
	now      func() time.Time
	loginTTL time.Duration
	// hashing bounds the password hashes computed at once: each takes 19 MiB, and a burst of
	// logins must not take the process's memory.
	hashing   chan struct{}
	byEmail   *limiter
	byAddress *limiter

	dummyOnce sync.Once
	dummy     string
}

// New returns a Service reading time from clock (nil: the real clock).
func New(st store.Store, clock func() time.Time) *Service {
	if clock == nil {
		clock = time.Now
	}
	return &Service{store: st, now: clock, loginTTL: DefaultLoginTTL,
		hashing: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		byEmail: newLimiter(MaxFailures, FailureWindow), byAddress: newLimiter(MaxAddressFailures, FailureWindow)}
}

var errBadToken = parley.Errorf(parley.EUnauthorized, "missing or invalid agent token")

// ByToken returns the agent an API token belongs to.
func (s *Service) ByToken(ctx context.Context, token string) (*parley.Agent, error) {
	if !strings.HasPrefix(token, parley.AgentTokenPrefix) {
		return nil, errBadToken
	}
	return s.lookup(ctx, errBadToken, func(tx store.ReadTx) (*parley.Agent, error) {
		return tx.AgentByToken(parley.HashSecret(token))
	})
}

var errNoLogin = parley.Errorf(parley.EUnauthorized, "not logged in, or the login has expired")

// ByLogin returns the agent of a console login, by the value of its cookie.
func (s *Service) ByLogin(ctx context.Context, cookie string) (*parley.Agent, error) {
	if cookie == "" {
		return nil, errNoLogin
	}
	return s.lookup(ctx, errNoLogin, func(tx store.ReadTx) (*parley.Agent, error) {
		return tx.AgentByLogin(parley.HashSecret(cookie), s.now())
	})
}

func (s *Service) lookup(ctx context.Context, unauthorized error, fn func(store.ReadTx) (*parley.Agent, error)) (*parley.Agent, error) {
	var a *parley.Agent
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		a, err = fn(tx)
		return err
	})
	if parley.IsCode(err, parley.ENotFound) {
		return nil, unauthorized
	}
	return a, err
}

var errBadLogin = parley.Errorf(parley.EUnauthorized, "wrong email or password")

// Login checks an agent's email and password and starts a console login. It returns the value
// of the login's cookie, a new random secret: a login never reuses a value the browser brought,
// which is what defeats session fixation. Failed attempts are counted per email and per client
// address; too many within FailureWindow are refused with rate-limited before any check.
func (s *Service) Login(ctx context.Context, email, password, clientIP string) (string, *parley.Agent, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	now := s.now()
	for _, wait := range []time.Duration{s.byEmail.blocked(email, now), s.byAddress.blocked(clientIP, now)} {
		if wait > 0 {
			return "", nil, parley.Errorf(parley.ERateLimited, "too many failed logins; try again in %d minutes",
				int(wait.Round(time.Minute)/time.Minute)+1)
		}
	}
	var a *parley.Agent
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		a, err = tx.AgentByEmail(email)
		return err
	})
	if err != nil && !parley.IsCode(err, parley.ENotFound) {
		return "", nil, err
	}
	hash := s.dummyHash() // an unknown email costs the same time as a wrong password
	if a != nil && a.PasswordHash != "" {
		hash = a.PasswordHash
	}
	if err := s.acquire(ctx); err != nil {
		return "", nil, err
	}
	ok := VerifyPassword(hash, password)
	<-s.hashing
	if !ok || a == nil || a.PasswordHash == "" {
		s.byEmail.fail(email, now)
		s.byAddress.fail(clientIP, now)
		return "", nil, errBadLogin
	}
	plain, login := parley.NewAgentLogin(a.ID, now.Truncate(time.Millisecond), now.Add(s.loginTTL))
	err = s.store.Update(ctx, func(tx store.Tx) error {
		// Expired logins go here, a few at a time, rather than in a sweeper of their own.
		if _, err := tx.DeleteExpiredAgentLogins(now, 20); err != nil {
			return err
		}
		return tx.CreateAgentLogin(login)
	})
	if err != nil {
		return "", nil, err
	}
	return plain, a, nil
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) dummyHash() string {
	s.dummyOnce.Do(func() { s.dummy = HashPassword("not the password of anyone") })
	return s.dummy
}

// Logout ends a console login, by the value of its cookie. Ending one that does not exist is
// not an error.
func (s *Service) Logout(ctx context.Context, cookie string) error {
	if cookie == "" {
		return nil
	}
	return s.store.Update(ctx, func(tx store.Tx) error { return tx.DeleteAgentLogin(parley.HashSecret(cookie)) })
}

// CSRFToken returns the token a console page must send back with every change it asks for. It
// is derived from the login cookie, which scripts cannot read (HttpOnly): only a page parley
// served to the cookie's holder knows it, and it changes with every login.
func CSRFToken(cookie string) string {
	h := sha256.Sum256([]byte("parley console csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// limiter counts failures per key in fixed windows.
type limiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	n     int
	start time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, keys: map[string]*failures{}}
}

// blocked returns how long key is still blocked, 0 when it is not.
func (l *limiter) blocked(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	if f == nil || f.n < l.max {
		return 0
	}
	if end := f.start.Add(l.window); now.Before(end) {
		return end.Sub(now)
	}
	delete(l.keys, key)
	return 0
}

func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	if f == nil || !now.Before(f.start.Add(l.window)) {
		if len(l.keys) >= 100_000 {
			l.prune(now) // keys are attacker-chosen: the map must not grow without bound
		}
		f = &failures{start: now}
		l.keys[key] = f
	}
	f.n++
}

func (l *limiter) prune(now time.Time) {
	for k, f := range l.keys {
		if !now.Before(f.start.Add(l.window)) {
			delete(l.keys, k)
		}
	}
	if len(l.keys) >= 100_000 {
		clear(l.keys) // every window is live: forgetting them beats running out of memory
	}
}
