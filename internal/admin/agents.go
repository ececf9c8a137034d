package admin

import (
	"context"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/agents"
	"github.com/parleyhq/parley/internal/store"
)

// AgentSpec is what an operator sets on a new agent.
type AgentSpec struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Avatar   string `json:"avatar"`
	Password string `json:"password"` // for the console; empty: the agent uses API tokens only
	// Token asks for an API token for the agent REST API, shown once.
	Token bool `json:"token"`
	// Integrations limits the agent to these integrations; empty: all of them.
	Integrations []string `json:"integrations"`
}

// AgentView is how an agent is shown to an operator: never a password hash or token.
type AgentView struct {
	ID           string      `json:"id"`
	Email        string      `json:"email"`
	Name         string      `json:"name"`
	Avatar       string      `json:"avatar,omitempty"`
	HasPassword  bool        `json:"has_password"`
	Integrations []string    `json:"integrations"` // [] = all
	Tokens       []TokenView `json:"tokens"`
	CreatedAt    int64       `json:"created_at"`
	Token        string      `json:"token,omitempty"` // only right after it was made
}

// TokenView is how an agent's API token is shown: its prefix, never the token.
type TokenView struct {
	ID        string `json:"id"`
	Prefix    string `json:"prefix"`
	CreatedAt int64  `json:"created_at"`
}

func agentView(a *parley.Agent, tokens []*parley.AgentToken) *AgentView {
	v := &AgentView{ID: a.ID, Email: a.Email, Name: a.Name, Avatar: a.Avatar, HasPassword: a.PasswordHash != "",
		Integrations: a.Integrations, Tokens: []TokenView{}, CreatedAt: a.CreatedAt.UnixMilli()}
	if v.Integrations == nil {
		v.Integrations = []string{}
	}
	for _, k := range tokens {
		v.Tokens = append(v.Tokens, TokenView{ID: k.ID, Prefix: k.Prefix, CreatedAt: k.CreatedAt.UnixMilli()})
	}
	return v
}

// CreateAgent creates an agent, with a password, an API token or both. The token is returned in
// the view, shown this once.
func (s *Service) CreateAgent(ctx context.Context, spec AgentSpec) (*AgentView, error) {
	now := s.now().Truncate(time.Millisecond)
	a := &parley.Agent{ID: parley.NewID(), Email: spec.Email, Name: spec.Name, Avatar: spec.Avatar,
		Integrations: spec.Integrations, CreatedAt: now, UpdatedAt: now}
	if err := a.Normalize(); err != nil {
		return nil, err
	}
	switch {
	case spec.Password == "" && !spec.Token:
		return nil, parley.Errorf(parley.EInvalid, "give the agent a password, a token or both, or they cannot sign in")
	case spec.Password != "":
		if err := parley.CheckPassword(spec.Password); err != nil {
			return nil, err
		}
		a.PasswordHash = agents.HashPassword(spec.Password) // outside the transaction: it is slow
	}
	var plain string
	var tokens []*parley.AgentToken
	if spec.Token {
		var k *parley.AgentToken
		plain, k = parley.NewAgentToken(a.ID, now)
		tokens = append(tokens, k)
	}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		for _, id := range a.Integrations {
			if _, err := tx.Integration(id); parley.IsCode(err, parley.ENotFound) {
				return parley.Errorf(parley.EInvalid, "integrations: no integration %s", id)
			} else if err != nil {
				return err
			}
		}
		if err := tx.CreateAgent(a); parley.IsCode(err, parley.EConflict) {
			return parley.Errorf(parley.EConflict, "an agent with email %s already exists", a.Email)
		} else if err != nil {
			return err
		}
		for _, k := range tokens {
			if err := tx.CreateAgentToken(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v := agentView(a, tokens)
	v.Token = plain
	return v, nil
}

// AddAgentToken adds an API token to an agent and returns it in clear, shown this once. Older
// tokens keep working.
func (s *Service) AddAgentToken(ctx context.Context, agentID string) (*TokenView, string, error) {
	plain, k := parley.NewAgentToken(agentID, s.now().Truncate(time.Millisecond))
	err := s.store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Agent(agentID); err != nil {
			return err
		}
		return tx.CreateAgentToken(k)
	})
	if err != nil {
		return nil, "", err
	}
	return &TokenView{ID: k.ID, Prefix: k.Prefix, CreatedAt: k.CreatedAt.UnixMilli()}, plain, nil
}

// RevokeAgentToken removes one of an agent's API tokens: the agent API refuses it from the next
// call, and a stream it opened ends at its next heartbeat; a console login is not a token.
func (s *Service) RevokeAgentToken(ctx context.Context, agentID, tokenID string) error {
	return s.store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Agent(agentID); err != nil {
			return err
		}
		return tx.DeleteAgentToken(agentID, tokenID)
	})
}

// Agents lists every agent.
func (s *Service) Agents(ctx context.Context) ([]*AgentView, error) {
	out := []*AgentView{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		list, err := tx.Agents()
		if err != nil {
			return err
		}
		for _, a := range list {
			tokens, err := tx.AgentTokens(a.ID)
			if err != nil {
				return err
			}
			out = append(out, agentView(a, tokens))
		}
		return nil
	})
	return out, err
}

// AgentByEmail returns one agent, by email.
func (s *Service) AgentByEmail(ctx context.Context, email string) (*AgentView, error) {
	var v *AgentView
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		a, err := tx.AgentByEmail(strings.ToLower(strings.TrimSpace(email)))
		if err != nil {
			return err
		}
		tokens, err := tx.AgentTokens(a.ID)
		v = agentView(a, tokens)
		return err
	})
	return v, err
}
