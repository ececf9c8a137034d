package httpapi

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// TestAuthCacheForgetDuringLoad checks a load of an integration's keys that a forget (a key
// revoked through this server) overtook answers its own request but is not cached: otherwise
// the revoked key would be accepted until the cache expired.
func TestAuthCacheForgetDuringLoad(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "parley.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	in := &parley.Integration{ID: parley.NewID(), Name: "auth", WebhookURL: "http://127.0.0.1:9/hook", CreatedAt: now, UpdatedAt: now}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	_, key := parley.NewAPIKey(in.ID, now)
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.CreateIntegration(in); err != nil {
			return err
		}
		return tx.CreateAPIKey(key)
	}); err != nil {
		t.Fatal(err)
	}
	a := newAuthenticator(st, time.Minute, nil)
	cached := func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.cache[in.ID] != nil
	}

	afterLoad = func(id string) { a.forget(id) } // the revocation's forget lands mid-load
	t.Cleanup(func() { afterLoad = nil })
	e, err := a.entry(t.Context(), in.ID)
	if err != nil || len(e.keys) != 1 {
		t.Fatalf("entry: %v, %v", e, err)
	}
	if cached() {
		t.Error("a load overtaken by a forget was cached")
	}
	afterLoad = nil
	if _, err := a.entry(t.Context(), in.ID); err != nil || !cached() {
		t.Errorf("a load nothing overtook was not cached (%v)", err)
	}
}
