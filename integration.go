package parley

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Session timeout bounds, in seconds (SPEC §1).
const (
	DefaultSessionTimeout = 86400
	MinSessionTimeout     = 60
	MaxSessionTimeout     = 1_296_000
)

// Integration is one connected channel: the business's front end talks to its inbound API and its
// webhook_url receives the events of its sessions.
type Integration struct {
	ID               string          `json:"id"`
	Name             string          `json:"name"`
	WebhookURL       string          `json:"webhook_url"`
	WebhookSecret    string          `json:"-"` // needed in clear to sign; never shown back
	AllowedIPs       []string        `json:"allowed_ips"`
	SubscribedEvents []string        `json:"subscribed_events"`
	SessionTimeout   int             `json:"session_timeout"`
	DeskID           string          `json:"desk_id"`
	Brain            json.RawMessage `json:"brain"` // brain configuration (SPEC §6); {} = the demo dialog
	Delivery         DeliveryPolicy  `json:"delivery"`
	RateLimit        int             `json:"rate_limit"` // inbound requests per second; 0 = no limit
	CreatedAt        time.Time       `json:"-"`
	UpdatedAt        time.Time       `json:"-"`
}

// DeliveryPolicy says how webhooks of an integration are retried (SPEC §3). Zero fields take the
// defaults, so an integration stores only what its operator changed.
type DeliveryPolicy struct {
	TimeoutMS       int   `json:"timeout_ms,omitempty"`         // per attempt
	RetryDelaysMS   []int `json:"retry_delays_ms"`              // one entry per retry; null = default, [] = none
	MaxRetryAfterMS int   `json:"max_retry_after_ms,omitempty"` // cap on a receiver's Retry-After
	MaxConcurrency  int   `json:"max_concurrency,omitempty"`    // deliveries in flight at once
}

// Delivery defaults (SPEC §3).
var (
	DefaultDeliveryTimeout = 30 * time.Second
	DefaultRetryDelays     = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}
	DefaultMaxRetryAfter   = 30 * time.Second
	DefaultMaxConcurrency  = 64
)

// Timeout returns the per-attempt timeout.
func (p DeliveryPolicy) Timeout() time.Duration {
	if p.TimeoutMS > 0 {
		return time.Duration(p.TimeoutMS) * time.Millisecond
	}
	return DefaultDeliveryTimeout
}

// RetryDelays returns the wait before each retry; its length is the number of retries.
func (p DeliveryPolicy) RetryDelays() []time.Duration {
	if p.RetryDelaysMS == nil {
		return DefaultRetryDelays
	}
	d := make([]time.Duration, len(p.RetryDelaysMS))
	for i, ms := range p.RetryDelaysMS {
		d[i] = time.Duration(ms) * time.Millisecond
	}
	return d
}

// MaxRetryAfter returns the longest Retry-After a receiver may ask for.
func (p DeliveryPolicy) MaxRetryAfter() time.Duration {
	if p.MaxRetryAfterMS > 0 {
		return time.Duration(p.MaxRetryAfterMS) * time.Millisecond
	}
	return DefaultMaxRetryAfter
}

// Concurrency returns how many deliveries of the integration may be in flight at once.
func (p DeliveryPolicy) Concurrency() int {
	if p.MaxConcurrency > 0 {
		return p.MaxConcurrency
	}
	return DefaultMaxConcurrency
}

func (p DeliveryPolicy) validate() error {
	switch {
	case p.TimeoutMS < 0 || p.TimeoutMS > 300_000:
		return Errorf(EInvalid, "delivery.timeout_ms must be between 1 and 300000")
	case len(p.RetryDelaysMS) > 20:
		return Errorf(EInvalid, "delivery.retry_delays_ms may hold at most 20 retries")
	case p.MaxRetryAfterMS < 0 || p.MaxRetryAfterMS > 3_600_000:
		return Errorf(EInvalid, "delivery.max_retry_after_ms must be between 1 and 3600000")
	case p.MaxConcurrency < 0 || p.MaxConcurrency > 4096:
		return Errorf(EInvalid, "delivery.max_concurrency must be between 1 and 4096")
	}
	for _, ms := range p.RetryDelaysMS {
		if ms < 0 || ms > 3_600_000 {
			return Errorf(EInvalid, "delivery.retry_delays_ms entries must be between 0 and 3600000")
		}
	}
	return nil
}

// Normalize fills defaults and checks every field, so a stored integration is always valid.
// Unknown event names and malformed IP ranges are refused here, at configuration time.
func (in *Integration) Normalize() error {
	in.Name = strings.TrimSpace(in.Name)
	if len(in.Name) > 200 {
		return Errorf(EInvalid, "name is longer than 200 bytes")
	}
	u, err := url.Parse(in.WebhookURL)
	if in.WebhookURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Errorf(EInvalid, "webhook_url must be an http or https URL")
	}
	if len(in.WebhookSecret) > 1024 {
		return Errorf(EInvalid, "webhook_secret is longer than 1024 bytes")
	}
	if in.AllowedIPs == nil {
		in.AllowedIPs = []string{}
	}
	for _, s := range in.AllowedIPs {
		if _, err := ParseIPRange(s); err != nil {
			return Errorf(EInvalid, "allowed_ips: %q is not an IP address or CIDR range", s)
		}
	}
	if in.SubscribedEvents == nil {
		in.SubscribedEvents = []string{}
	}
	for _, e := range in.SubscribedEvents {
		if !slices.Contains(EventTypes, e) {
			return Errorf(EInvalid, "subscribed_events: unknown event %q (known: %s)", e, strings.Join(EventTypes, ", "))
		}
	}
	if in.SessionTimeout == 0 {
		in.SessionTimeout = DefaultSessionTimeout
	}
	if in.SessionTimeout < MinSessionTimeout || in.SessionTimeout > MaxSessionTimeout {
		return Errorf(EInvalid, "session_timeout must be between %d and %d seconds", MinSessionTimeout, MaxSessionTimeout)
	}
	if in.DeskID == "" {
		in.DeskID = NewID()
	}
	if len(in.DeskID) > 200 {
		return Errorf(EInvalid, "desk_id is longer than 200 bytes")
	}
	if len(in.Brain) == 0 || string(in.Brain) == "null" {
		in.Brain = json.RawMessage(`{}`)
	}
	if in.RateLimit < 0 {
		return Errorf(EInvalid, "rate_limit must not be negative")
	}
	return in.Delivery.validate()
}

// Subscribed reports whether events of the given type are delivered to the integration.
func (in *Integration) Subscribed(eventType string) bool {
	return len(in.SubscribedEvents) == 0 || slices.Contains(in.SubscribedEvents, eventType)
}

// AllowsIP reports whether a caller at addr may use the inbound API. An empty list allows all.
func (in *Integration) AllowsIP(addr netip.Addr) bool {
	if len(in.AllowedIPs) == 0 {
		return true
	}
	addr = addr.Unmap() // an IPv4 peer seen on a dual-stack socket is still the IPv4 address
	for _, s := range in.AllowedIPs {
		if p, err := ParseIPRange(s); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// ParseIPRange parses an IP address or a CIDR range; a single address is a range of one.
func ParseIPRange(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits is how many prefix bits an IPv4-mapped IPv6 range loses when written as IPv4.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// APIKey is one key of an integration. Only a hash of the key is stored; the key itself is shown
// once, when it is made.
type APIKey struct {
	ID            string    `json:"id"`
	IntegrationID string    `json:"integration_id"`
	Hash          []byte    `json:"-"`
	Prefix        string    `json:"prefix"` // the first characters, so an operator can tell keys apart
	CreatedAt     time.Time `json:"-"`
}

// apiKeyPrefix marks parley API keys, so a leaked one is easy to recognise in logs and scanners.
const apiKeyPrefix = "prl_"

// NewAPIKey makes a new key for an integration and returns the key in clear (to show once) and
// its stored form.
func NewAPIKey(integrationID string, now time.Time) (string, *APIKey) {
	var b [32]byte
	rand.Read(b[:])
	plain := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return plain, &APIKey{
		ID:            NewID(),
		IntegrationID: integrationID,
		Hash:          HashAPIKey(plain),
		Prefix:        plain[:len(apiKeyPrefix)+6],
		CreatedAt:     now,
	}
}

// HashAPIKey returns the stored form of a key. A key carries 256 random bits, so a fast hash is
// enough: there is nothing to brute-force that a slow hash would protect.
func HashAPIKey(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}
