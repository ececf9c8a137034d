package sqltx

import (
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/parleyhq/parley"
)

const integrationColumns = `id, name, webhook_url, webhook_secret, allowed_ips, subscribed_events,
	session_timeout, desk_id, brain, delivery, rate_limit, created_at, updated_at`

func (t *Tx) CreateIntegration(in *parley.Integration) error {
	args, err := integrationArgs(in)
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO integrations (`+integrationColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return t.wrap("create integration", err, "integration")
}

func (t *Tx) UpdateIntegration(in *parley.Integration) error {
	args, err := integrationArgs(in)
	if err != nil {
		return err
	}
	// Same order as integrationArgs, id moved last and created_at left out.
	res, err := t.exec(`UPDATE integrations SET name = ?, webhook_url = ?, webhook_secret = ?,
		allowed_ips = ?, subscribed_events = ?, session_timeout = ?, desk_id = ?, brain = ?,
		delivery = ?, rate_limit = ?, updated_at = ? WHERE id = ?`,
		append(args[1:11], args[12], args[0])...)
	if err != nil {
		return t.wrap("update integration", err, "integration")
	}
	return t.affected(res, "integration")
}

func integrationArgs(in *parley.Integration) ([]any, error) {
	ips, err1 := json.Marshal(in.AllowedIPs)
	events, err2 := json.Marshal(in.SubscribedEvents)
	delivery, err3 := json.Marshal(in.Delivery)
	if err := firstErr(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("store: encoding integration: %w", err)
	}
	return []any{in.ID, in.Name, in.WebhookURL, in.WebhookSecret, string(ips), string(events),
		in.SessionTimeout, in.DeskID, string(in.Brain), string(delivery), in.RateLimit,
		ms(in.CreatedAt), ms(in.UpdatedAt)}, nil
}

func (t *Tx) Integration(id string) (*parley.Integration, error) {
	in, err := scanIntegration(t.queryRow(`SELECT `+integrationColumns+` FROM integrations WHERE id = ?`, id))
	return in, t.wrap("read integration", err, "integration")
}

func (t *Tx) Integrations() ([]*parley.Integration, error) {
	rows, err := t.query(`SELECT ` + integrationColumns + ` FROM integrations ORDER BY created_at, id`)
	if err != nil {
		return nil, t.wrap("list integrations", err, "integration")
	}
	return collect(rows, scanIntegration, t, "list integrations")
}

func scanIntegration(r scanner) (*parley.Integration, error) {
	var in parley.Integration
	var ips, events, brain, delivery string
	var created, updated int64
	err := r.Scan(&in.ID, &in.Name, &in.WebhookURL, &in.WebhookSecret, &ips, &events,
		&in.SessionTimeout, &in.DeskID, &brain, &delivery, &in.RateLimit, &created, &updated)
	if err != nil {
		return nil, err
	}
	err = firstErr(json.Unmarshal([]byte(ips), &in.AllowedIPs), json.Unmarshal([]byte(events), &in.SubscribedEvents),
		json.Unmarshal([]byte(delivery), &in.Delivery))
	if err != nil {
		return nil, fmt.Errorf("decoding integration %s: %w", in.ID, err)
	}
	in.Brain = json.RawMessage(brain)
	in.CreatedAt, in.UpdatedAt = fromMS(created), fromMS(updated)
	return &in, nil
}

func (t *Tx) CreateAPIKey(k *parley.APIKey) error {
	_, err := t.exec(`INSERT INTO api_keys (id, integration_id, hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.IntegrationID, k.Hash, k.Prefix, ms(k.CreatedAt))
	return t.wrap("create api key", err, "api key")
}

func (t *Tx) DeleteAPIKey(integrationID, keyID string) error {
	res, err := t.exec(`DELETE FROM api_keys WHERE id = ? AND integration_id = ?`, keyID, integrationID)
	if err != nil {
		return t.wrap("delete api key", err, "api key")
	}
	return t.affected(res, "api key")
}

func (t *Tx) APIKeys(integrationID string) ([]*parley.APIKey, error) {
	rows, err := t.query(`SELECT id, integration_id, hash, prefix, created_at FROM api_keys
		WHERE integration_id = ? ORDER BY created_at, id`, integrationID)
	if err != nil {
		return nil, t.wrap("list api keys", err, "api key")
	}
	return collect(rows, func(r scanner) (*parley.APIKey, error) {
		var k parley.APIKey
		var created int64
		err := r.Scan(&k.ID, &k.IntegrationID, &k.Hash, &k.Prefix, &created)
		k.CreatedAt = fromMS(created)
		return &k, err
	}, t, "list api keys")
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error), t *Tx, op string) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, t.wrap(op, err, "row")
		}
		out = append(out, v)
	}
	return out, t.wrap(op, rows.Err(), "row")
}

// affected turns "no row changed" into not found.
func (t *Tx) affected(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: rows affected: %w", err)
	}
	if n == 0 {
		return parley.Errorf(parley.ENotFound, "%s not found", what)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
