package parley

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Agent is a person who answers users in parley's console (SPEC §4). An agent belongs to one
// parley deployment and may be limited to some of its integrations.
type Agent struct {
	ID     string
	Email  string // lower case; unique in the deployment; the login name
	Name   string
	Avatar string // an http(s) URL, or empty
	// PasswordHash is the encoded hash of the console password (see package agents); empty
	// when the agent logs in only with API tokens.
	PasswordHash string
	// Integrations lists the integrations whose conversations the agent may see and act on;
	// empty means all of them.
	Integrations []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Ref returns how the agent is named in messages and webhook events.
func (a *Agent) Ref() *AgentRef {
	return &AgentRef{ID: a.ID, Name: a.Name, Avatar: a.Avatar}
}

// CanAccess reports whether the agent may see and act on conversations of the integration.
func (a *Agent) CanAccess(integrationID string) bool {
	return len(a.Integrations) == 0 || slices.Contains(a.Integrations, integrationID)
}

// Limits on an agent's fields.
const (
	MinPasswordBytes = 8
	MaxPasswordBytes = 1024
)

// Normalize checks an agent's fields as an operator set them and puts them in their stored
// form (a lower-case email, canonical integration IDs, sorted and without repeats).
func (a *Agent) Normalize() error {
	addr, err := mail.ParseAddress(a.Email)
	if err != nil || addr.Address != strings.TrimSpace(a.Email) || len(a.Email) > 254 {
		return Errorf(EInvalid, "email must be an address such as ann@example.com")
	}
	a.Email = strings.ToLower(addr.Address)
	a.Name = strings.TrimSpace(a.Name)
	if a.Name == "" || len(a.Name) > 255 {
		return Errorf(EInvalid, "name is required, at most 255 bytes")
	}
	if a.Avatar != "" {
		u, err := url.Parse(a.Avatar)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(a.Avatar) > maxFieldBytes {
			return Errorf(EInvalid, "avatar must be an http or https URL")
		}
	}
	ids := make([]string, 0, len(a.Integrations))
	for _, s := range a.Integrations {
		id, ok := ParseID(s)
		if !ok {
			return Errorf(EInvalid, "integrations: %q is not an integration ID", s)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	a.Integrations = slices.Compact(ids)
	return nil
}

// CheckPassword refuses a password too short to resist guessing or too long to hash cheaply.
func CheckPassword(p string) error {
	if len(p) < MinPasswordBytes || len(p) > MaxPasswordBytes {
		return Errorf(EInvalid, "password must be %d to %d bytes long", MinPasswordBytes, MaxPasswordBytes)
	}
	return nil
}

// AgentToken is an API token of an agent, for the agent REST API. Only a hash of the token is
// stored; the token itself is shown once, when it is made.
type AgentToken struct {
	ID        string
	AgentID   string
	Hash      []byte
	Prefix    string // the first characters, so an operator can tell tokens apart
	CreatedAt time.Time
}

// AgentTokenPrefix marks agent tokens, so a leaked one is easy to recognise in logs and scanners
// (and cannot be mistaken for an integration's API key).
const AgentTokenPrefix = "prla_"

// NewAgentToken makes a new token for an agent and returns it in clear (to show once) and its
// stored form.
func NewAgentToken(agentID string, now time.Time) (string, *AgentToken) {
	plain := AgentTokenPrefix + randomString()
	return plain, &AgentToken{ID: NewID(), AgentID: agentID, Hash: HashSecret(plain),
		Prefix: plain[:len(AgentTokenPrefix)+6], CreatedAt: now}
}

// AgentLogin is a console login: the cookie's value is a random secret shown only to the
// browser; the store keeps its hash, so a copy of the database holds no usable login.
type AgentLogin struct {
	Hash      []byte
	AgentID   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// NewAgentLogin makes a login for an agent, valid until expires, and returns the cookie value in
// clear and its stored form.
func NewAgentLogin(agentID string, now, expires time.Time) (string, *AgentLogin) {
	plain := randomString()
	return plain, &AgentLogin{Hash: HashSecret(plain), AgentID: agentID, CreatedAt: now, ExpiresAt: expires}
}

// HashSecret returns the stored form of a random secret (an agent token or a login cookie). A
// secret of 256 random bits needs no slow hash: there is nothing to brute-force.
func HashSecret(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// randomString returns 256 random bits, base64url-encoded.
func randomString() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
