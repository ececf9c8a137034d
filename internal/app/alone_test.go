package app_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// A SQLite server restarted after a crash takes over at once the leases the dead process left,
// instead of waiting for them to lapse: here they would run for an hour.
func TestSQLiteServerTakesOverLeasesOfTheDead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	st, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Migrate(t.Context())
	if err == nil {
		err = st.Update(t.Context(), func(tx store.Tx) error {
			_, err := tx.AcquirePartitions("killed-node", 64, time.Now(), time.Now().Add(time.Hour))
			return err
		})
	}
	if err = errors.Join(err, st.Close()); err != nil {
		t.Fatal(err)
	}

	s := apptest.Start(t, apptest.Options{DatabaseURL: "sqlite://" + path})
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Main.Leases.Held()) < 64 {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted server holds %d partitions, want all 64", len(s.Main.Leases.Held()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
