package worker

import (
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/dialog"
	"github.com/parleyhq/parley/internal/brain/llm"
	"github.com/parleyhq/parley/internal/brain/moveo"
)

// brains keeps each integration's brain built, rebuilding it when the integration's
// configuration changes, or its dialog file does. A dialog file that no longer loads is refused
// with an error in the log, and the version loaded before keeps serving.
type brains struct {
	log    *slog.Logger
	client *http.Client

	mu           sync.Mutex
	entries      map[string]*entry // by integration ID
	integrations map[string]loaded // by ID
}

// loaded is an integration as read at a time.
type loaded struct {
	in *parley.Integration
	at time.Time
}

// integrationTTL is how long an integration read is used before it is read again: an
// operator's change reaches the brain within about this long (as it reaches the dispatcher).
const integrationTTL = 2 * time.Second

// integration returns the integration if it was read less than integrationTTL ago, else nil.
func (b *brains) integration(id string) *parley.Integration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.integrations[id]; ok && time.Since(l.at) < integrationTTL {
		return l.in
	}
	return nil
}

// remember keeps an integration just read.
func (b *brains) remember(in *parley.Integration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.integrations[in.ID] = loaded{in: in, at: time.Now()}
}

type entry struct {
	raw     string // the configuration it was built from
	cfg     *Config
	brain   brain.Brain // nil when the configuration never loaded: only the fallback is sent
	file    fileStamp   // the dialog file it was loaded from
	checked time.Time   // when the file was last looked at
}

// fileStamp tells a changed file from the one loaded.
type fileStamp struct {
	mod  time.Time
	size int64
}

// fileCheckInterval is how often a dialog file is looked at for changes; an edit is live
// within about this long.
const fileCheckInterval = time.Second

func newBrains(log *slog.Logger, client *http.Client) *brains {
	return &brains{log: log, client: client, entries: map[string]*entry{}, integrations: map[string]loaded{}}
}

// get returns the integration's brain and configuration. The brain is nil when the
// configuration cannot be used at all (the caller sends the fallback).
func (b *brains) get(in *parley.Integration) (brain.Brain, *Config) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now() // how fresh a cache is, in real time whatever clock the domain reads
	e := b.entries[in.ID]
	if e != nil && e.raw == string(in.Brain) {
		if e.cfg.Kind != KindDialog || e.cfg.File == "" || now.Sub(e.checked) < fileCheckInterval {
			return e.brain, e.cfg
		}
		e.checked = now
		// Unchanged, or still missing (reported once when it went): nothing to do.
		if st, err := stamp(e.cfg.File); (err == nil && st == e.file) || (err != nil && e.file == fileStamp{}) {
			return e.brain, e.cfg
		}
		b.reloadDialog(in, e)
		return e.brain, e.cfg
	}
	e = b.build(in)
	b.entries[in.ID] = e
	return e.brain, e.cfg
}

func (b *brains) build(in *parley.Integration) *entry {
	// A configuration that does not parse keeps the defaults (for the fallback) and no brain.
	e := &entry{raw: string(in.Brain), cfg: &Config{Kind: KindDialog}, checked: time.Now()}
	// The file is not loaded here but by reloadDialog, which keeps the previous version when a
	// new one fails.
	cfg, err := ParseConfig(in.Brain)
	if err != nil {
		b.log.Error("brain: the integration's brain configuration is unusable; sending the fallback", "integration_id", in.ID, "err", err)
		return e
	}
	e.cfg = cfg
	switch cfg.Kind {
	case KindDialog:
		if cfg.File == "" {
			e.brain = dialog.Demo() // shared and never changed: it calls no webhook
			return e
		}
		b.reloadDialog(in, e)
	case KindHTTP:
		e.brain = &moveo.Bot{Client: b.client, Endpoint: moveo.Endpoint{URL: cfg.URL, Token: cfg.Token,
			Timeout: cfg.Timeout(), BrainID: cfg.BrainID, Lang: cfg.Lang}}
	case KindLLM:
		l, err := llm.New(*cfg.LLM, b.client)
		if err != nil {
			b.log.Error("brain: the integration's llm brain cannot start; sending the fallback", "integration_id", in.ID, "err", err)
			return e
		}
		e.brain = l
	}
	return e
}

// reloadDialog loads e's dialog file again; on failure the previous version stays.
func (b *brains) reloadDialog(in *parley.Integration, e *entry) {
	st, err := stamp(e.cfg.File)
	if err == nil {
		var d *dialog.Dialog
		if d, err = dialog.LoadFile(e.cfg.File); err == nil {
			if e.brain != nil {
				b.log.Info("brain: dialog file reloaded", "integration_id", in.ID, "file", e.cfg.File, "dialogs", d.Summary())
			}
			e.brain, e.file = b.withClient(d), st
			return
		}
	}
	e.file = st // not again until it changes
	if e.brain != nil {
		b.log.Error("brain: the dialog file does not load; the previous version keeps serving", "integration_id", in.ID, "err", err)
	} else {
		b.log.Error("brain: the dialog file does not load; sending the fallback", "integration_id", in.ID, "err", err)
	}
}

// withClient gives a dialog loaded for one integration the worker's HTTP client and logger,
// for its webhook actions.
func (b *brains) withClient(d *dialog.Dialog) *dialog.Dialog {
	if d.HTTP == nil {
		d.HTTP = b.client
	}
	if d.Log == nil {
		d.Log = b.log
	}
	return d
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}
