// Package admin holds the operator's operations: configuring integrations and their keys (and,
// as parley grows, agents and deliveries). The CLI and the admin REST API both call it, so
// there is one way to do each thing and both surfaces validate the same.
//
// It must never be reachable by an integrator's or an agent's credentials.
package admin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain/worker"
	"github.com/parleyhq/parley/internal/store"
)

// Service performs operator operations on a store.
type Service struct {
	store store.Store
	now   func() time.Time
}

// New returns a Service.
func New(s store.Store, clock func() time.Time) *Service {
	if clock == nil {
		clock = time.Now
	}
	return &Service{store: s, now: clock}
}

// IntegrationSpec is what an operator sets on an integration. On update, nil fields keep their
// value.
type IntegrationSpec struct {
	Name             *string                `json:"name"`
	WebhookURL       *string                `json:"webhook_url"`
	WebhookSecret    *string                `json:"webhook_secret"`
	AllowedIPs       *[]string              `json:"allowed_ips"`
	SubscribedEvents *[]string              `json:"subscribed_events"`
	SessionTimeout   *int                   `json:"session_timeout"`
	DeskID           *string                `json:"desk_id"`
	Brain            *json.RawMessage       `json:"brain"`
	Delivery         *parley.DeliveryPolicy `json:"delivery"`
	RateLimit        *int                   `json:"rate_limit"`
}

func (sp *IntegrationSpec) apply(in *parley.Integration) {
	set(&in.Name, sp.Name)
	set(&in.WebhookURL, sp.WebhookURL)
	set(&in.WebhookSecret, sp.WebhookSecret)
	set(&in.AllowedIPs, sp.AllowedIPs)
	set(&in.SubscribedEvents, sp.SubscribedEvents)
	set(&in.SessionTimeout, sp.SessionTimeout)
	set(&in.DeskID, sp.DeskID)
	set(&in.Brain, sp.Brain)
	set(&in.Delivery, sp.Delivery)
	set(&in.RateLimit, sp.RateLimit)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Service) check(in *parley.Integration) error {
	if err := in.Normalize(); err != nil {
		return err
	}
	var obj map[string]any
	if err := json.Unmarshal(in.Brain, &obj); err != nil {
		return parley.Errorf(parley.EInvalid, "brain must be a JSON object")
	}
	// The worker's own parser, so nothing is stored that the brain worker could not run.
	return worker.CheckConfig(in.Brain)
}

// CreateIntegration creates an integration with its first API key, returned in clear: it is
// shown this once.
func (s *Service) CreateIntegration(ctx context.Context, spec IntegrationSpec) (*parley.Integration, string, error) {
	now := s.now().Truncate(time.Millisecond)
	in := &parley.Integration{ID: parley.NewID(), CreatedAt: now, UpdatedAt: now}
	spec.apply(in)
	if err := s.check(in); err != nil {
		return nil, "", err
	}
	plain, key := parley.NewAPIKey(in.ID, now)
	err := s.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateIntegration(in); err != nil {
			return err
		}
		return tx.CreateAPIKey(key)
	})
	if err != nil {
		return nil, "", err
	}
	return in, plain, nil
}

// UpdateIntegration changes the fields spec sets.
func (s *Service) UpdateIntegration(ctx context.Context, id string, spec IntegrationSpec) (*parley.Integration, error) {
	var in *parley.Integration
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		if in, err = tx.Integration(id); err != nil {
			return err
		}
		spec.apply(in)
		if err := s.check(in); err != nil {
			return err
		}
		in.UpdatedAt = s.now().Truncate(time.Millisecond)
		return tx.UpdateIntegration(in)
	})
	return in, err
}

// AddKey adds an API key to an integration and returns it in clear, shown this once. Old keys
// keep working, so a key can be rotated without downtime.
func (s *Service) AddKey(ctx context.Context, integrationID string) (*parley.APIKey, string, error) {
	plain, key := parley.NewAPIKey(integrationID, s.now().Truncate(time.Millisecond))
	err := s.store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Integration(integrationID); err != nil {
			return err
		}
		return tx.CreateAPIKey(key)
	})
	if err != nil {
		return nil, "", err
	}
	return key, plain, nil
}

// RevokeKey removes one of an integration's API keys: calls that carry it are refused from then
// on, by a server in another process once its cache of keys expires (a second by default). The
// last key may go too: the integration then refuses every call until a key is added.
func (s *Service) RevokeKey(ctx context.Context, integrationID, keyID string) error {
	return s.store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Integration(integrationID); err != nil {
			return err
		}
		return tx.DeleteAPIKey(integrationID, keyID)
	})
}

// Integration returns one integration with its keys.
func (s *Service) Integration(ctx context.Context, id string) (*IntegrationView, error) {
	var v *IntegrationView
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		in, err := tx.Integration(id)
		if err != nil {
			return err
		}
		keys, err := tx.APIKeys(id)
		v = View(in, keys)
		return err
	})
	return v, err
}

// Integrations lists every integration.
func (s *Service) Integrations(ctx context.Context) ([]*IntegrationView, error) {
	var out []*IntegrationView
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		ins, err := tx.Integrations()
		if err != nil {
			return err
		}
		for _, in := range ins {
			keys, err := tx.APIKeys(in.ID)
			if err != nil {
				return err
			}
			out = append(out, View(in, keys))
		}
		return nil
	})
	return out, err
}

// IntegrationView is how an integration is shown to an operator: everything but the webhook
// secret, which is only said to be set.
type IntegrationView struct {
	*parley.Integration
	WebhookSecretSet bool      `json:"webhook_secret_set"`
	Keys             []KeyView `json:"keys"`
	CreatedAt        int64     `json:"created_at"`
	UpdatedAt        int64     `json:"updated_at"`
	APIKey           string    `json:"api_key,omitempty"` // only right after it was made
}

// KeyView is how an API key is shown: never the key itself, which is not stored.
type KeyView struct {
	ID        string `json:"id"`
	Prefix    string `json:"prefix"`
	CreatedAt int64  `json:"created_at"`
}

// View returns the operator's view of an integration.
func View(in *parley.Integration, keys []*parley.APIKey) *IntegrationView {
	v := &IntegrationView{Integration: in, WebhookSecretSet: in.WebhookSecret != "", Keys: []KeyView{},
		CreatedAt: in.CreatedAt.UnixMilli(), UpdatedAt: in.UpdatedAt.UnixMilli()}
	for _, k := range keys {
		v.Keys = append(v.Keys, KeyView{ID: k.ID, Prefix: k.Prefix, CreatedAt: k.CreatedAt.UnixMilli()})
	}
	return v
}
