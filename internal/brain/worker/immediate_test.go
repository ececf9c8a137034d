package worker_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain/worker"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// TestImmediateBrainDropsJobOfHandedOverConversation drives Worker.Run by hand on a real SQLite
// store, so a job can be made to meet a conversation that humans took after the job was
// recorded: the dialog (asked inside the write transaction once its integration is cached) must
// not answer it, and the job must go.
func TestImmediateBrainDropsJobOfHandedOverConversation(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	engine := chat.New(nil)
	in := &parley.Integration{ID: parley.NewID(), WebhookURL: "http://127.0.0.1:9/hook", SessionTimeout: 3600}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	var sid string
	update := func(fn func(tx store.Tx) error) {
		t.Helper()
		if err := st.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx store.Tx) error {
		if err := tx.CreateIntegration(in); err != nil {
			return err
		}
		s, err := engine.CreateSession(tx, in, chat.NewSession{})
		if err == nil {
			sid = s.ID
		}
		return err
	})
	send := func(text string) {
		t.Helper()
		update(func(tx store.Tx) error {
			_, err := engine.PostUserMessage(tx, in, sid, chat.UserMessage{Text: text})
			return err
		})
	}
	pending := func() []*parley.BrainJob {
		t.Helper()
		var jobs []*parley.BrainJob
		if err := st.View(ctx, func(tx store.ReadTx) (err error) { jobs, err = tx.PendingJobs(sid); return err }); err != nil {
			t.Fatal(err)
		}
		return jobs
	}
	history := func() []*parley.Message {
		t.Helper()
		var ms []*parley.Message
		if err := st.View(ctx, func(tx store.ReadTx) (err error) { ms, err = tx.Messages(sid, 0, 100); return err }); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	w := worker.New(st, engine, clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.NewRegistry(), worker.Options{})

	// The first job of an integration reads it, and answers through a read transaction.
	send("hello")
	jobs := pending()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs after one message", len(jobs))
	}
	if again := w.Run(ctx, jobs[0]); !again.IsZero() {
		t.Fatalf("first job not finished: try again at %v", again)
	}
	if ms := history(); len(ms) != 2 || ms[1].Author != parley.AuthorBrain {
		t.Fatalf("after the first job the history is %d messages, want the user's and the brain's", len(ms))
	}

	// The integration is known now: the next job takes the immediate path. Humans take the
	// conversation between the message and its job.
	send("again")
	jobs = pending()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs after the second message", len(jobs))
	}
	update(func(tx store.Tx) error { return engine.Handover(tx, in, sid) })
	if again := w.Run(ctx, jobs[0]); !again.IsZero() {
		t.Fatalf("job of a handed-over conversation not finished: try again at %v", again)
	}
	if jobs := pending(); len(jobs) != 0 {
		t.Fatalf("%d jobs left after the worker met a handed-over conversation", len(jobs))
	}
	if ms := history(); len(ms) != 3 || ms[2].Author != parley.AuthorUser {
		t.Fatalf("the brain answered a conversation humans hold: %d messages, last by %s", len(ms), ms[len(ms)-1].Author)
	}
}
