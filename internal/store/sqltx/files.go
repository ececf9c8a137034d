package sqltx

import (
	"time"

	"github.com/parleyhq/parley"
)

const fileColumns = `id, integration_id, session_id, filename, content_type, size, state, created_at,
	uploaded_at, referenced_at`

func (t *Tx) CreateFile(f *parley.File) error {
	_, err := t.exec(`INSERT INTO files (`+fileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.IntegrationID, f.SessionID, f.Filename, f.ContentType, f.Size, f.State, ms(f.CreatedAt),
		ms(f.UploadedAt), ms(f.ReferencedAt))
	return t.wrap("create file", err, "file")
}

func (t *Tx) File(id string) (*parley.File, error) {
	f, err := scanFile(t.queryRow(`SELECT `+fileColumns+` FROM files WHERE id = ?`, id))
	return f, t.wrap("read file", err, "file")
}

func (t *Tx) Files(ids []string) ([]*parley.File, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// Not prepared: the statement's shape depends on how many IDs there are.
	rows, err := t.queryShaped(`SELECT `+fileColumns+` FROM files WHERE id IN (`+in(len(ids))+`)`, args...)
	if err != nil {
		return nil, t.wrap("list files", err, "file")
	}
	return collect(rows, scanFile, t, "list files")
}

func scanFile(r scanner) (*parley.File, error) {
	var f parley.File
	var created, uploaded, referenced int64
	err := r.Scan(&f.ID, &f.IntegrationID, &f.SessionID, &f.Filename, &f.ContentType, &f.Size, &f.State,
		&created, &uploaded, &referenced)
	if err != nil {
		return nil, err
	}
	f.CreatedAt, f.UploadedAt, f.ReferencedAt = fromMS(created), fromMS(uploaded), fromMS(referenced)
	return &f, nil
}

func (t *Tx) SetFileState(id, from, to string, size int64, at time.Time) error {
	q := `UPDATE files SET state = ?, size = ? WHERE id = ? AND state = ?`
	args := []any{to, size, id, from}
	if to == parley.FileReady {
		q = `UPDATE files SET state = ?, size = ?, uploaded_at = ? WHERE id = ? AND state = ?`
		args = []any{to, size, ms(at), id, from}
	}
	res, err := t.exec(q, args...)
	if err != nil {
		return t.wrap("set file state", err, "file")
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return t.wrap("set file state", err, "file")
	}
	// Nothing changed: tell a file in another state from no file at all.
	var state string
	if err := t.queryRow(`SELECT state FROM files WHERE id = ?`, id).Scan(&state); err != nil {
		return t.wrap("set file state", err, "file")
	}
	return parley.Errorf(parley.EConflict, "file is %s, not %s", state, from)
}

func (t *Tx) ReferenceFiles(sessionID string, ids []string, at time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := []any{ms(at), sessionID, parley.FileReady}
	for _, id := range ids {
		args = append(args, id)
	}
	// On PostgreSQL a row the retention sweep is marking waits for it, and the state test is
	// then made again on the row as the sweep left it: a file is never both referenced and
	// deleted.
	res, err := t.execShaped(`UPDATE files SET referenced_at = CASE WHEN referenced_at = 0
		THEN ? ELSE referenced_at END WHERE session_id = ? AND state = ? AND id IN (`+in(len(ids))+`)`, args...)
	if err != nil {
		return 0, t.wrap("reference files", err, "file")
	}
	n, err := res.RowsAffected()
	return int(n), t.wrap("reference files", err, "file")
}

func (t *Tx) FilesToDelete(before time.Time, limit int) ([]*parley.File, error) {
	// The outer test of referenced_at is made again on the row as it is when locked: a message
	// that referenced the file meanwhile keeps it.
	_, err := t.exec(`UPDATE files SET state = ? WHERE referenced_at = 0 AND id IN (SELECT id FROM files
		WHERE referenced_at = 0 AND created_at < ? AND state <> ? ORDER BY created_at LIMIT ?`+
		t.d.ForUpdate+t.d.SkipLocked+`)`, parley.FileDeleting, ms(before), parley.FileDeleting, limit)
	if err != nil {
		return nil, t.wrap("mark files for deletion", err, "file")
	}
	rows, err := t.query(`SELECT `+fileColumns+` FROM files WHERE referenced_at = 0 AND state = ?
		ORDER BY created_at LIMIT ?`, parley.FileDeleting, limit)
	if err != nil {
		return nil, t.wrap("files to delete", err, "file")
	}
	return collect(rows, scanFile, t, "files to delete")
}

func (t *Tx) DeleteFile(id string) error {
	res, err := t.exec(`DELETE FROM files WHERE id = ? AND state = ?`, id, parley.FileDeleting)
	if err != nil {
		return t.wrap("delete file", err, "file")
	}
	return t.affected(res, "file")
}

func (t *Tx) SigningKey(name string, candidate []byte) ([]byte, error) {
	_, err := t.exec(`INSERT INTO signing_keys (name, secret, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, name, candidate, time.Now().UnixMilli())
	if err != nil {
		return nil, t.wrap("store signing key", err, "signing key")
	}
	var secret []byte
	err = t.queryRow(`SELECT secret FROM signing_keys WHERE name = ?`, name).Scan(&secret)
	return secret, t.wrap("read signing key", err, "signing key")
}
