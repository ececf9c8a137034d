package worker_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain/worker"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// fixture is a real SQLite store with one integration (the demo dialog) and one session, and
// a worker driven by hand through Worker.Run, so a test chooses which job it is given.
type fixture struct {
	t      *testing.T
	st     *sqlite.Store
	engine *chat.Engine
	in     *parley.Integration
	sid    string
	w      *worker.Worker
	heard  []*parley.BrainJob // jobs as watchers heard of them, carrying their messages
}

func newFixture(t *testing.T) *fixture {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "parley.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, engine: chat.New(nil),
		in: &parley.Integration{ID: parley.NewID(), WebhookURL: "http://127.0.0.1:9/hook", SessionTimeout: 3600}}
	if err := f.in.Normalize(); err != nil {
		t.Fatal(err)
	}
	st.Watch(func(c *store.Change) { f.heard = append(f.heard, c.Jobs...) })
	f.update(func(tx store.Tx) error {
		if err := tx.CreateIntegration(f.in); err != nil {
			return err
		}
		s, err := f.engine.CreateSession(tx, f.in, chat.NewSession{})
		if err == nil {
			f.sid = s.ID
		}
		return err
	})
	f.w = worker.New(st, f.engine, clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.NewRegistry(), worker.Options{})
	return f
}

func (f *fixture) update(fn func(tx store.Tx) error) {
	f.t.Helper()
	if err := f.st.Update(context.Background(), fn); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) send(text string) {
	f.t.Helper()
	f.update(func(tx store.Tx) error {
		_, err := f.engine.PostUserMessage(tx, f.in, f.sid, chat.UserMessage{Text: text})
		return err
	})
}

// pending reads the session's jobs from the database, as a process that did not store them does.
func (f *fixture) pending() []*parley.BrainJob {
	f.t.Helper()
	var jobs []*parley.BrainJob
	if err := f.st.View(context.Background(), func(tx store.ReadTx) (err error) { jobs, err = tx.PendingJobs(f.sid); return err }); err != nil {
		f.t.Fatal(err)
	}
	return jobs
}

func (f *fixture) history() []*parley.Message {
	f.t.Helper()
	var ms []*parley.Message
	if err := f.st.View(context.Background(), func(tx store.ReadTx) (err error) { ms, err = tx.Messages(f.sid, 0, 100); return err }); err != nil {
		f.t.Fatal(err)
	}
	return ms
}

// run answers one job and requires it finished.
func (f *fixture) run(job *parley.BrainJob) {
	f.t.Helper()
	if again := f.w.Run(context.Background(), job); !again.IsZero() {
		f.t.Fatalf("job %d not finished: try again at %v", job.SessionSeq, again)
	}
}

// TestImmediateBrainDropsJobOfHandedOverConversation gives the worker a job whose conversation
// humans took after the job was recorded: the dialog (asked inside the write transaction once
// its integration is cached) must not answer it, and the job must go.
func TestImmediateBrainDropsJobOfHandedOverConversation(t *testing.T) {
	f := newFixture(t)

	// The first job of an integration reads it, and answers through a read transaction.
	f.send("hello")
	jobs := f.pending()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs after one message", len(jobs))
	}
	f.run(jobs[0])
	if ms := f.history(); len(ms) != 2 || ms[1].Author != parley.AuthorBrain {
		t.Fatalf("after the first job the history is %d messages, want the user's and the brain's", len(ms))
	}

	// The integration is known now: the next job takes the immediate path. Humans take the
	// conversation between the message and its job.
	f.send("again")
	jobs = f.pending()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs after the second message", len(jobs))
	}
	f.update(func(tx store.Tx) error { return f.engine.Handover(tx, f.in, f.sid) })
	f.run(jobs[0])
	if jobs := f.pending(); len(jobs) != 0 {
		t.Fatalf("%d jobs left after the worker met a handed-over conversation", len(jobs))
	}
	if ms := f.history(); len(ms) != 3 || ms[2].Author != parley.AuthorUser {
		t.Fatalf("the brain answered a conversation humans hold: %d messages, last by %s", len(ms), ms[len(ms)-1].Author)
	}
}

// TestJobMessageFromMemoryOrDatabase answers jobs as this process heard of them (carrying their
// message) and as another process reads them (without): on both paths, general and immediate,
// the brain must answer the message's own words. The demo dialog shows media for "photo".
func TestJobMessageFromMemoryOrDatabase(t *testing.T) {
	f := newFixture(t)
	for i, c := range []struct {
		text     string
		carried  bool   // the job as the watchers heard of it, with its message
		wantType string // a response type the answer must hold
	}{
		{"Can I see a photo of the team?", false, `"type":"image"`}, // first job: general path
		{"Can I see a photo of the team?", true, `"type":"image"`},  // immediate, message from memory
		{"Can I see a photo of the team?", false, `"type":"image"`}, // immediate, message read back
		{"blorp", true, `"type":"text"`},
		{"photo " + strings.Repeat("x", 3000), true, `"type":"image"`}, // too large to carry: read back
	} {
		f.heard = nil
		f.send(c.text)
		job := f.pending()[0]
		if c.carried {
			if len(f.heard) != 1 {
				t.Fatalf("case %d: the watchers heard %d jobs, want one", i, len(f.heard))
			}
			job = f.heard[0]
			small := len(c.text) <= 2048
			if m := job.Message; (m != nil) != small || (m != nil && m.Text != c.text) {
				t.Fatalf("case %d: the job heard of carries %v, want its message only if small (%v)", i, m, small)
			}
		} else if job.Message != nil {
			t.Fatalf("case %d: a job read from the database carries a message", i)
		}
		f.run(job)
		ms := f.history()
		last := ms[len(ms)-1]
		if last.Author != parley.AuthorBrain || !strings.Contains(string(last.Responses), c.wantType) {
			t.Fatalf("case %d (%q): the brain answered %s", i, c.text, last.Responses)
		}
		if c.wantType == `"type":"text"` && strings.Contains(string(last.Responses), `"type":"image"`) {
			t.Fatalf("case %d (%q): the brain answered another message's words: %s", i, c.text, last.Responses)
		}
	}
}
