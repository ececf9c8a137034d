package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

func newFile(sess *parley.Session, at time.Time) *parley.File {
	return &parley.File{ID: parley.NewID(), IntegrationID: sess.IntegrationID, SessionID: sess.ID,
		Filename: "résumé.pdf", ContentType: "application/pdf", State: parley.FilePending, CreatedAt: at}
}

// tryUpdate runs fn in an Update and returns its error.
func tryUpdate(t *testing.T, s store.Store, fn func(tx store.Tx) error) error {
	t.Helper()
	return s.Update(t.Context(), fn)
}

func testFileLifecycle(t *testing.T, s store.Store) {
	in := createIntegration(t, s)
	sess, other := createSession(t, s, in), createSession(t, s, in)
	f := newFile(sess, now)
	if err := tryUpdate(t, s, func(tx store.Tx) error { return tx.CreateFile(f) }); err != nil {
		t.Fatal(err)
	}

	// One upload: the first claim wins, a second is a conflict.
	claim := func(tx store.Tx) error {
		return tx.SetFileState(f.ID, parley.FilePending, parley.FileUploading, 0, now)
	}
	if err := tryUpdate(t, s, claim); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := tryUpdate(t, s, claim); !parley.IsCode(err, parley.EConflict) {
		t.Fatalf("second claim: err = %v, want conflict", err)
	}
	err := tryUpdate(t, s, func(tx store.Tx) error {
		return tx.SetFileState(parley.NewID(), parley.FilePending, parley.FileUploading, 0, now)
	})
	if !parley.IsCode(err, parley.ENotFound) {
		t.Fatalf("claim of a missing file: err = %v, want not found", err)
	}

	// Not ready yet: no message can reference it.
	var n int
	err = tryUpdate(t, s, func(tx store.Tx) (err error) {
		n, err = tx.ReferenceFiles(sess.ID, []string{f.ID}, now)
		return err
	})
	if err != nil || n != 0 {
		t.Fatalf("reference of an uploading file: n = %d, err = %v", n, err)
	}

	done := now.Add(time.Second)
	err = tryUpdate(t, s, func(tx store.Tx) error {
		return tx.SetFileState(f.ID, parley.FileUploading, parley.FileReady, 1234, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	var got *parley.File
	var listed []*parley.File
	err = s.View(t.Context(), func(tx store.ReadTx) (err error) {
		if got, err = tx.File(f.ID); err != nil {
			return err
		}
		listed, err = tx.Files([]string{f.ID, parley.NewID()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != parley.FileReady || got.Size != 1234 || !got.UploadedAt.Equal(done) || got.Filename != "résumé.pdf" ||
		got.SessionID != sess.ID || got.IntegrationID != in.ID || !got.CreatedAt.Equal(now) || !got.ReferencedAt.IsZero() {
		t.Errorf("file = %+v", got)
	}
	if len(listed) != 1 || listed[0].ID != f.ID {
		t.Errorf("Files = %v, want only %s", listed, f.ID)
	}

	// Another session's message cannot reference it; its own can, and the first time counts.
	for _, tc := range []struct {
		session string
		at      time.Time
		want    int
	}{{other.ID, done, 0}, {sess.ID, done, 1}, {sess.ID, done.Add(time.Hour), 1}} {
		err = tryUpdate(t, s, func(tx store.Tx) (err error) {
			n, err = tx.ReferenceFiles(tc.session, []string{f.ID}, tc.at)
			return err
		})
		if err != nil || n != tc.want {
			t.Errorf("ReferenceFiles(%s) = %d, %v; want %d", tc.session, n, err, tc.want)
		}
	}
	s.View(t.Context(), func(tx store.ReadTx) (err error) { got, err = tx.File(f.ID); return err })
	if !got.ReferencedAt.Equal(done) {
		t.Errorf("referenced at %v, want %v", got.ReferencedAt, done)
	}
}

func testFileRetention(t *testing.T, s store.Store) {
	in := createIntegration(t, s)
	sess := createSession(t, s, in)
	old, young, used := newFile(sess, now), newFile(sess, now.Add(time.Hour)), newFile(sess, now)
	used.State = parley.FileReady
	err := tryUpdate(t, s, func(tx store.Tx) error {
		for _, f := range []*parley.File{old, young, used} {
			if err := tx.CreateFile(f); err != nil {
				return err
			}
		}
		_, err := tx.ReferenceFiles(sess.ID, []string{used.ID}, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sweep := func() []string {
		t.Helper()
		var ids []string
		err := tryUpdate(t, s, func(tx store.Tx) error {
			fs, err := tx.FilesToDelete(now.Add(time.Minute), 10)
			for _, f := range fs {
				ids = append(ids, f.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if ids := sweep(); !slices.Equal(ids, []string{old.ID}) {
		t.Fatalf("first sweep chose %v, want only %s", ids, old.ID)
	}
	// Marked and not yet deleted (a crash between the two): the next sweep finds it again.
	if ids := sweep(); !slices.Equal(ids, []string{old.ID}) {
		t.Fatalf("second sweep chose %v, want %s again", ids, old.ID)
	}
	// A file marked for deletion can be neither referenced nor claimed.
	var n int
	err = tryUpdate(t, s, func(tx store.Tx) (err error) {
		n, err = tx.ReferenceFiles(sess.ID, []string{old.ID}, now)
		return err
	})
	if err != nil || n != 0 {
		t.Errorf("reference of a deleting file: n = %d, err = %v", n, err)
	}
	err = tryUpdate(t, s, func(tx store.Tx) error {
		return tx.SetFileState(old.ID, parley.FilePending, parley.FileUploading, 0, now)
	})
	if !parley.IsCode(err, parley.EConflict) {
		t.Errorf("claim of a deleting file: err = %v, want conflict", err)
	}
	if err := tryUpdate(t, s, func(tx store.Tx) error { return tx.DeleteFile(old.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := tryUpdate(t, s, func(tx store.Tx) error { return tx.DeleteFile(young.ID) }); !parley.IsCode(err, parley.ENotFound) {
		t.Errorf("DeleteFile of a file not marked: err = %v, want not found", err)
	}
	if ids := sweep(); len(ids) != 0 {
		t.Errorf("third sweep chose %v, want none", ids)
	}
	err = s.View(t.Context(), func(tx store.ReadTx) error {
		_, err := tx.File(old.ID)
		return err
	})
	if !parley.IsCode(err, parley.ENotFound) {
		t.Errorf("deleted file: err = %v, want not found", err)
	}
}

func testSigningKey(t *testing.T, s store.Store) {
	var first, second []byte
	err := tryUpdate(t, s, func(tx store.Tx) (err error) {
		first, err = tx.SigningKey("test", []byte("one"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = tryUpdate(t, s, func(tx store.Tx) (err error) {
		second, err = tx.SigningKey("test", []byte("two"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, []byte("one")) || !bytes.Equal(second, first) {
		t.Errorf("keys %q and %q, want the first candidate both times", first, second)
	}
}
