package httpapi

import (
	"context"
	"crypto/subtle"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// authenticator checks inbound calls against their integration (SPEC §1). Integrations and key
// hashes are cached for a short time so a busy integration costs no read per request; a change
// made through this process is seen at once, one made by another process (the CLI) within ttl.
type authenticator struct {
	store          store.Store
	ttl            time.Duration
	trustedProxies []netip.Prefix

	mu    sync.Mutex
	cache map[string]*authEntry
	// forgets counts forget calls. A load that began before one may hold what was forgotten (a
	// key revoked while it read), so it answers its own request but is not cached.
	forgets uint64
}

// afterLoad, when set (by tests), runs after entry has read an integration, before it caches it.
var afterLoad func(id string)

type authEntry struct {
	in      *parley.Integration
	keys    [][]byte
	loaded  time.Time
	limiter *limiter
}

func newAuthenticator(s store.Store, ttl time.Duration, trusted []netip.Prefix) *authenticator {
	return &authenticator{store: s, ttl: ttl, trustedProxies: trusted, cache: map[string]*authEntry{}}
}

var errUnauthorized = parley.Errorf(parley.EUnauthorized, "missing or invalid credentials")

// authenticate returns the integration the request may act for. A malformed or unknown
// integration ID, a missing or wrong key, another integration's key and a caller outside the
// allowlist all get the same unauthorized: the answer must not tell which.
func (a *authenticator) authenticate(r *http.Request) (*authEntry, error) {
	id, ok := parley.ParseID(r.PathValue("integration_id"))
	if !ok {
		return nil, errUnauthorized
	}
	e, err := a.entry(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !e.in.AllowsIP(a.clientIP(r)) {
		return nil, errUnauthorized
	}
	key, ok := apiKey(r.Header.Get("Authorization"))
	if !ok {
		return nil, errUnauthorized
	}
	hash := parley.HashAPIKey(key)
	match := 0
	for _, k := range e.keys {
		match |= subtle.ConstantTimeCompare(hash, k) // no early exit: every key is compared
	}
	if match != 1 {
		return nil, errUnauthorized
	}
	return e, nil
}

// apiKey returns the key of an "Authorization: apikey <KEY>" header.
func apiKey(h string) (string, bool) {
	scheme, key, ok := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	return key, ok && strings.EqualFold(scheme, "apikey") && key != ""
}

func (a *authenticator) entry(ctx context.Context, id string) (*authEntry, error) {
	now := time.Now()
	a.mu.Lock()
	e, forgets := a.cache[id], a.forgets
	a.mu.Unlock()
	if e != nil && now.Sub(e.loaded) < a.ttl {
		return e, nil
	}
	fresh := &authEntry{loaded: now}
	err := a.store.View(ctx, func(tx store.ReadTx) error {
		in, err := tx.Integration(id)
		if err != nil {
			return err
		}
		keys, err := tx.APIKeys(id)
		if err != nil {
			return err
		}
		fresh.in = in
		for _, k := range keys {
			fresh.keys = append(fresh.keys, k.Hash)
		}
		return nil
	})
	if parley.IsCode(err, parley.ENotFound) {
		a.forget(id)
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, err
	}
	if afterLoad != nil {
		afterLoad(id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if e != nil && e.limiter != nil && e.in.RateLimit == fresh.in.RateLimit {
		fresh.limiter = e.limiter // keep the bucket's state across reloads
	} else if fresh.in.RateLimit > 0 {
		fresh.limiter = newLimiter(fresh.in.RateLimit)
	}
	if a.forgets == forgets {
		a.cache[id] = fresh
	}
	return fresh, nil
}

// forget drops an integration from the cache, so the next request reads it again.
func (a *authenticator) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.cache, id)
	a.forgets++
}

// clientIP is the TCP peer, unless the peer is a trusted proxy: then the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (the left part is whatever the client
// claimed and cannot be believed).
func (a *authenticator) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !a.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed chain is not believed at all
		}
		ip = ip.Unmap()
		if !a.trusted(ip) {
			return ip
		}
	}
	return peer
}

func (a *authenticator) trusted(ip netip.Addr) bool {
	for _, p := range a.trustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

// limiter is a token bucket: rate tokens a second, bursts up to rate.
type limiter struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newLimiter(rate int) *limiter {
	return &limiter{rate: float64(rate), tokens: float64(rate), last: time.Now()}
}

// allow takes a token, or returns how long until one is available.
func (l *limiter) allow(now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = math.Min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true, 0
	}
	return false, time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
}
