package storetest

import (
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// fullIntegration sets every field of an integration to something other than its default.
func fullIntegration() *parley.Integration {
	return &parley.Integration{
		ID:               parley.NewID(),
		Name:             "Support — ünïcode 🎧",
		WebhookURL:       "https://hooks.example.com/parley?x=1&y=2",
		WebhookSecret:    "whsec_🔑\"quoted\"\\",
		AllowedIPs:       []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"},
		SubscribedEvents: []string{parley.EventBrainSend, parley.EventSessionClosed},
		SessionTimeout:   3600,
		DeskID:           "desk-42",
		Brain:            json.RawMessage(`{"type": "webhook", "url": "https://brain.example/x", "n": 12345678901234567890}`),
		Delivery:         parley.DeliveryPolicy{TimeoutMS: 5000, RetryDelaysMS: []int{100, 0, 2000}, MaxRetryAfterMS: 60000, MaxConcurrency: 8},
		RateLimit:        50,
		CreatedAt:        now,
		UpdatedAt:        now.Add(1500 * time.Millisecond),
	}
}

func testIntegrationRoundTrip(t *testing.T, h Harness) {
	s := h.Open(t)
	tests := []struct {
		name string
		in   *parley.Integration
	}{
		{"every field", fullIntegration()},
		{"defaults", newIntegration()},
		{"nil lists", &parley.Integration{ID: parley.NewID(), WebhookURL: "http://x", SessionTimeout: 60,
			DeskID: "d", Brain: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			update(t, s, func(tx store.Tx) error { return tx.CreateIntegration(tc.in) })
			got := read(t, s, func(tx store.ReadTx) (*parley.Integration, error) { return tx.Integration(tc.in.ID) })
			equal(t, "integration", got, tc.in)
		})
	}
}

func testIntegrations(t *testing.T, h Harness) {
	s := h.Open(t)
	got := read(t, s, func(tx store.ReadTx) ([]*parley.Integration, error) { return tx.Integrations() })
	if len(got) != 0 {
		t.Errorf("a new store lists %d integrations", len(got))
	}
	// Listed by created_at, then id: c and a share an instant.
	a, b, c := fullIntegration(), newIntegration(), newIntegration()
	a.ID, c.ID = "00000000-0000-7000-8000-00000000000a", "00000000-0000-7000-8000-000000000001"
	a.CreatedAt, b.CreatedAt, c.CreatedAt = now, now.Add(-time.Second), now
	update(t, s, func(tx store.Tx) error {
		for _, in := range []*parley.Integration{a, b, c} {
			if err := tx.CreateIntegration(in); err != nil {
				return err
			}
		}
		return nil
	})
	got = read(t, s, func(tx store.ReadTx) ([]*parley.Integration, error) { return tx.Integrations() })
	equal(t, "integrations", got, []*parley.Integration{b, c, a})
}

func testUpdateIntegration(t *testing.T, h Harness) {
	s := h.Open(t)
	in := createIntegration(t, s)
	other := createIntegration(t, s)

	changed := fullIntegration()
	changed.ID = in.ID
	changed.CreatedAt = now.Add(time.Hour) // not written: created_at never changes
	changed.UpdatedAt = now.Add(2 * time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.UpdateIntegration(changed) })

	want := *changed
	want.CreatedAt = in.CreatedAt
	got := read(t, s, func(tx store.ReadTx) (*parley.Integration, error) { return tx.Integration(in.ID) })
	equal(t, "updated integration", got, &want)
	got = read(t, s, func(tx store.ReadTx) (*parley.Integration, error) { return tx.Integration(other.ID) })
	equal(t, "other integration", got, other)
}

func newAPIKey(integrationID string, at time.Time) *parley.APIKey {
	hash := make([]byte, 32)
	rand.Read(hash)
	return &parley.APIKey{ID: parley.NewID(), IntegrationID: integrationID, Hash: hash, Prefix: "prl_abcdef", CreatedAt: at}
}

func testAPIKeys(t *testing.T, h Harness) {
	s := h.Open(t)
	in, other := createIntegration(t, s), createIntegration(t, s)
	got := read(t, s, func(tx store.ReadTx) ([]*parley.APIKey, error) { return tx.APIKeys(in.ID) })
	if len(got) != 0 {
		t.Errorf("a new integration has %d keys", len(got))
	}

	k1, k2, k3 := newAPIKey(in.ID, now.Add(time.Second)), newAPIKey(in.ID, now), newAPIKey(other.ID, now)
	_, made := parley.NewAPIKey(in.ID, now.Add(2*time.Second)) // the real thing: a SHA-256 hash
	update(t, s, func(tx store.Tx) error {
		for _, k := range []*parley.APIKey{k1, k2, k3, made} {
			if err := tx.CreateAPIKey(k); err != nil {
				return err
			}
		}
		return nil
	})
	got = read(t, s, func(tx store.ReadTx) ([]*parley.APIKey, error) { return tx.APIKeys(in.ID) })
	equal(t, "keys, oldest first", got, []*parley.APIKey{k2, k1, made})
	got = read(t, s, func(tx store.ReadTx) ([]*parley.APIKey, error) { return tx.APIKeys(parley.NewID()) })
	if len(got) != 0 {
		t.Errorf("an unknown integration has %d keys", len(got))
	}

	// Revoking: only the integration's own keys, by their ID; anything else is not found and
	// removes nothing.
	update(t, s, func(tx store.Tx) error { return tx.DeleteAPIKey(in.ID, k1.ID) })
	for what, id := range map[string][2]string{
		"the key again":              {in.ID, k1.ID},
		"another integration's key":  {in.ID, k3.ID},
		"a key through another's ID": {other.ID, k2.ID},
		"an unknown key":             {in.ID, parley.NewID()},
		"a malformed key ID":         {in.ID, "prl_abcdef"},
	} {
		err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteAPIKey(id[0], id[1]) })
		wantCode(t, "DeleteAPIKey of "+what, err, parley.ENotFound)
	}
	got = read(t, s, func(tx store.ReadTx) ([]*parley.APIKey, error) { return tx.APIKeys(in.ID) })
	equal(t, "keys after one was deleted", got, []*parley.APIKey{k2, made})
	got = read(t, s, func(tx store.ReadTx) ([]*parley.APIKey, error) { return tx.APIKeys(other.ID) })
	equal(t, "the other integration's keys", got, []*parley.APIKey{k3})
}
