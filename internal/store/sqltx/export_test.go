package sqltx

import "time"

// ExecShaped lets tests run a statement the session cache does not know.
func (t *Tx) ExecShaped(q string, args ...any) error {
	_, err := t.execShaped(q, args...)
	return err
}

// SetExclusiveWait sets how long an exclusive migration waits for other processes to stop,
// and returns a function that puts it back.
func SetExclusiveWait(d time.Duration) (restore func()) {
	old := exclusiveWait
	exclusiveWait = d
	return func() { exclusiveWait = old }
}

// JobQueries are the queries that find waiting brain jobs, with as many placeholders for
// partitions as asked.
func JobQueries(partitions int) []string {
	return []string{pendingJobsQuery, pendingSessionsQuery(jobsFrom, jobsSession, jobsPartition, waitingJobs, partitions)}
}

// MessageQueries are the queries that read a session's messages.
func MessageQueries() []string { return []string{messagesQuery, recentMessagesQuery} }

// SessionQueries are the queries that read a session with its last message's state.
func SessionQueries() []string { return []string{sessionSelect, stateSelect} }
