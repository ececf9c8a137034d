package sqltx

import (
	"time"
)

func (t *Tx) Heartbeat(node string, startedAt, now time.Time) error {
	_, err := t.exec(`INSERT INTO nodes (id, started_at, heartbeat_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, node, ms(startedAt), ms(now))
	return t.wrap("heartbeat", err, "node")
}

func (t *Tx) LiveNodes(since time.Time) (int, error) {
	var n int
	err := t.queryRow(`SELECT COUNT(*) FROM nodes WHERE heartbeat_at >= ?`, ms(since)).Scan(&n)
	return n, t.wrap("live nodes", err, "node")
}

func (t *Tx) ForgetLeases() error {
	_, err := t.exec(`UPDATE partitions SET owner = '', lease_until = 0 WHERE owner <> ''`)
	return t.wrap("forget leases", err, "partition")
}

func (t *Tx) DeleteNodes(before time.Time) error {
	_, err := t.exec(`DELETE FROM nodes WHERE heartbeat_at < ?`, ms(before))
	return t.wrap("delete nodes", err, "node")
}

func (t *Tx) AcquirePartitions(node string, n int, now, until time.Time) ([]int, error) {
	if n <= 0 {
		return nil, nil
	}
	// The condition is repeated outside the subquery: when two nodes race for a row,
	// PostgreSQL re-checks it on the row the winner wrote, and the loser skips it.
	rows, err := t.query(`UPDATE partitions SET owner = ?, lease_until = ?
		WHERE id IN (SELECT id FROM partitions WHERE owner = '' OR lease_until < ? ORDER BY id LIMIT ?)
		AND (owner = '' OR lease_until < ?) RETURNING id`, node, ms(until), ms(now), n, ms(now))
	if err != nil {
		return nil, t.wrap("acquire partitions", err, "partition")
	}
	return collect(rows, scanInt, t, "acquire partitions")
}

func (t *Tx) RenewPartitions(node string, partitions []int, until time.Time) ([]int, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	args := []any{ms(until), node}
	for _, p := range partitions {
		args = append(args, p)
	}
	rows, err := t.queryShaped(`UPDATE partitions SET lease_until = ? WHERE owner = ?
		AND id IN (`+in(len(partitions))+`) RETURNING id`, args...)
	if err != nil {
		return nil, t.wrap("renew partitions", err, "partition")
	}
	return collect(rows, scanInt, t, "renew partitions")
}

func (t *Tx) ReleasePartitions(node string, partitions []int) error {
	if len(partitions) == 0 {
		return nil
	}
	args := []any{node}
	for _, p := range partitions {
		args = append(args, p)
	}
	_, err := t.execShaped(`UPDATE partitions SET owner = '', lease_until = 0
		WHERE owner = ? AND id IN (`+in(len(partitions))+`)`, args...)
	return t.wrap("release partitions", err, "partition")
}

func scanInt(r scanner) (int, error) {
	var n int
	err := r.Scan(&n)
	return n, err
}
