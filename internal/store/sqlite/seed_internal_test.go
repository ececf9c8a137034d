package sqlite

import (
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
)

// SeedSession stores an integration and one of its sessions, for tests in this directory
// (exported so the external tests can use it too).
func SeedSession(t testing.TB, s store.Store, engine *chat.Engine) (*parley.Integration, string) {
	t.Helper()
	in := &parley.Integration{ID: parley.NewID(), WebhookURL: "http://127.0.0.1:9/hook", SessionTimeout: 3600}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	var id string
	err := s.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.CreateIntegration(in); err != nil {
			return err
		}
		sess, err := engine.CreateSession(tx, in, chat.NewSession{})
		if err == nil {
			id = sess.ID
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return in, id
}
