package admin

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// DeliveryView is how an outbox event is shown to an operator: its delivery state and every
// attempt.
type DeliveryView struct {
	ID            string           `json:"event_id"`
	IntegrationID string           `json:"integration_id"`
	SessionID     string           `json:"session_id"`
	SessionSeq    int64            `json:"session_seq"`
	EventType     string           `json:"event_type"`
	State         string           `json:"status"`
	Attempts      int              `json:"attempts"`
	NextAttemptAt *int64           `json:"next_attempt_at"`
	LastError     string           `json:"last_error,omitempty"`
	CreatedAt     int64            `json:"created_at"`
	FinishedAt    *int64           `json:"finished_at"`
	AttemptLog    []parley.Attempt `json:"attempt_log"`
	Body          json.RawMessage  `json:"body,omitempty"`
}

func deliveryView(e *parley.Event, withBody bool) DeliveryView {
	v := DeliveryView{ID: e.ID, IntegrationID: e.IntegrationID, SessionID: e.SessionID, SessionSeq: e.SessionSeq,
		EventType: e.Type, State: e.State, Attempts: e.Attempts, LastError: e.LastError,
		CreatedAt: e.CreatedAt.UnixMilli(), AttemptLog: e.AttemptLog}
	if v.AttemptLog == nil {
		v.AttemptLog = []parley.Attempt{}
	}
	if e.State == parley.DeliveryPending {
		t := e.NextAttemptAt.UnixMilli()
		v.NextAttemptAt = &t
	}
	if !e.FinishedAt.IsZero() {
		t := e.FinishedAt.UnixMilli()
		v.FinishedAt = &t
	}
	if withBody {
		v.Body = json.RawMessage(e.Body)
	}
	return v
}

// Deliveries lists outbox events, newest first.
func (s *Service) Deliveries(ctx context.Context, f store.EventFilter) ([]DeliveryView, error) {
	switch f.State {
	case "", parley.DeliveryPending, parley.DeliveryDone, parley.DeliveryFailed:
	default:
		return nil, parley.Errorf(parley.EInvalid, "status must be pending, delivered or failed")
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	out := []DeliveryView{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		events, err := tx.Events(f)
		for _, e := range events {
			out = append(out, deliveryView(e, f.EventID != ""))
		}
		return err
	})
	return out, err
}

// Replay makes failed events of an integration pending again (all of them, or the one named):
// they are sent again with the same body and request_id, in their order. It returns them.
func (s *Service) Replay(ctx context.Context, integrationID, eventID string) ([]DeliveryView, error) {
	out := []DeliveryView{}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Integration(integrationID); err != nil {
			return err
		}
		events, err := tx.ReplayEvents(integrationID, eventID, s.now())
		if err != nil {
			return err
		}
		if eventID != "" && len(events) == 0 {
			return parley.Errorf(parley.ENotFound, "no failed event %s in this integration", eventID)
		}
		for _, e := range events {
			out = append(out, deliveryView(e, false))
		}
		return nil
	})
	return out, err
}
