package sqltx

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
)

const agentColumns = `a.id, a.email, a.name, a.avatar, a.password_hash, a.integrations, a.created_at, a.updated_at`

func (t *Tx) CreateAgent(a *parley.Agent) error {
	ids := a.Integrations
	if ids == nil {
		ids = []string{}
	}
	integrations, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("store: encoding agent integrations: %w", err)
	}
	_, err = t.exec(`INSERT INTO agents (id, email, name, avatar, password_hash, integrations, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.Email, a.Name, a.Avatar, a.PasswordHash, string(integrations),
		ms(a.CreatedAt), ms(a.UpdatedAt))
	return t.wrap("create agent", err, "agent")
}

func (t *Tx) Agent(id string) (*parley.Agent, error) {
	a, err := scanAgent(t.queryRow(`SELECT `+agentColumns+` FROM agents a WHERE a.id = ?`, id))
	return a, t.wrap("read agent", err, "agent")
}

func (t *Tx) AgentByEmail(email string) (*parley.Agent, error) {
	a, err := scanAgent(t.queryRow(`SELECT `+agentColumns+` FROM agents a WHERE a.email = ?`, email))
	return a, t.wrap("read agent", err, "agent")
}

func (t *Tx) Agents() ([]*parley.Agent, error) {
	rows, err := t.query(`SELECT ` + agentColumns + ` FROM agents a ORDER BY a.name, a.email`)
	if err != nil {
		return nil, t.wrap("list agents", err, "agent")
	}
	return collect(rows, scanAgent, t, "list agents")
}

func (t *Tx) AgentByToken(hash []byte) (*parley.Agent, error) {
	a, err := scanAgent(t.queryRow(`SELECT `+agentColumns+` FROM agent_tokens k JOIN agents a ON a.id = k.agent_id
		WHERE k.hash = ?`, hash))
	return a, t.wrap("read agent by token", err, "agent")
}

func (t *Tx) AgentByLogin(hash []byte, now time.Time) (*parley.Agent, error) {
	a, err := scanAgent(t.queryRow(`SELECT `+agentColumns+` FROM agent_logins l JOIN agents a ON a.id = l.agent_id
		WHERE l.hash = ? AND l.expires_at > ?`, hash, ms(now)))
	return a, t.wrap("read agent by login", err, "login")
}

func scanAgent(r scanner) (*parley.Agent, error) {
	var a parley.Agent
	var integrations string
	var created, updated int64
	if err := r.Scan(&a.ID, &a.Email, &a.Name, &a.Avatar, &a.PasswordHash, &integrations, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(integrations), &a.Integrations); err != nil {
		return nil, fmt.Errorf("decoding integrations of agent %s: %w", a.ID, err)
	}
	if len(a.Integrations) == 0 {
		a.Integrations = nil
	}
	a.CreatedAt, a.UpdatedAt = fromMS(created), fromMS(updated)
	return &a, nil
}

func (t *Tx) CreateAgentToken(k *parley.AgentToken) error {
	_, err := t.exec(`INSERT INTO agent_tokens (id, agent_id, hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.AgentID, k.Hash, k.Prefix, ms(k.CreatedAt))
	return t.wrap("create agent token", err, "agent token")
}

func (t *Tx) DeleteAgentToken(agentID, tokenID string) error {
	res, err := t.exec(`DELETE FROM agent_tokens WHERE id = ? AND agent_id = ?`, tokenID, agentID)
	if err != nil {
		return t.wrap("delete agent token", err, "agent token")
	}
	return t.affected(res, "agent token")
}

func (t *Tx) AgentTokens(agentID string) ([]*parley.AgentToken, error) {
	rows, err := t.query(`SELECT id, agent_id, hash, prefix, created_at FROM agent_tokens
		WHERE agent_id = ? ORDER BY created_at, id`, agentID)
	if err != nil {
		return nil, t.wrap("list agent tokens", err, "agent token")
	}
	return collect(rows, func(r scanner) (*parley.AgentToken, error) {
		var k parley.AgentToken
		var created int64
		err := r.Scan(&k.ID, &k.AgentID, &k.Hash, &k.Prefix, &created)
		k.CreatedAt = fromMS(created)
		return &k, err
	}, t, "list agent tokens")
}

func (t *Tx) CreateAgentLogin(l *parley.AgentLogin) error {
	_, err := t.exec(`INSERT INTO agent_logins (hash, agent_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		l.Hash, l.AgentID, ms(l.CreatedAt), ms(l.ExpiresAt))
	return t.wrap("create agent login", err, "login")
}

func (t *Tx) DeleteAgentLogin(hash []byte) error {
	_, err := t.exec(`DELETE FROM agent_logins WHERE hash = ?`, hash)
	return t.wrap("delete agent login", err, "login")
}

func (t *Tx) DeleteExpiredAgentLogins(now time.Time, limit int) (int, error) {
	res, err := t.exec(`DELETE FROM agent_logins WHERE hash IN (SELECT hash FROM agent_logins
		WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`, ms(now), limit)
	if err != nil {
		return 0, t.wrap("delete expired agent logins", err, "login")
	}
	n, err := res.RowsAffected()
	return int(n), err
}
