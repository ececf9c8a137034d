package sqltx

// ExecShaped lets tests run a statement the session cache does not know.
func (t *Tx) ExecShaped(q string, args ...any) error {
	_, err := t.execShaped(q, args...)
	return err
}
