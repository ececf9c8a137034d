package chat

import (
	"encoding/json"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// BrainReply is what the brain answered to one user message (package brain's Reply, encoded).
type BrainReply struct {
	Responses json.RawMessage // output.responses, already encoded
	Context   map[string]any  // merged into the session's context; nil = no change
	Handover  bool
	Resolve   bool
}

// CommitBrainReply records the brain's answer to a job and removes the job: the context change,
// the brain's message with its message:brain_send, then the handover or the resolve the brain
// asked for. It returns the message, or nil when the answer is no longer wanted (the session
// ended, or its conversation moved on: an agent took it, it was handed over or resolved), in
// which case the job is dropped and nothing else changes.
//
// in is the job's integration, as the worker last read it (as the inbound API's is, from its
// cache). A job that is gone (another process answered it) is ENotFound, with nothing written.
func (e *Engine) CommitBrainReply(tx store.Tx, in *parley.Integration, job *parley.BrainJob, r BrainReply) (*parley.Message, error) {
	now := e.Now()
	s, err := tx.LockSession(job.SessionID)
	if err != nil {
		return nil, err
	}
	// The session is locked first, then the job, the order every other writer follows.
	if err := tx.DeleteJob(job.Seq); err != nil {
		return nil, err
	}
	if !e.BrainAnswers(s, job) || s.IntegrationID != in.ID {
		return nil, nil
	}
	if r.Context != nil {
		// A brain that would grow the context past its limit loses that change, not its answer:
		// refusing the commit would leave the user with no reply at all.
		if err := mergeContext(tx, s, r.Context); err != nil && !parley.IsCode(err, parley.EInvalid) {
			return nil, err
		}
	}
	if len(r.Responses) == 0 {
		r.Responses = json.RawMessage(`[]`)
	}
	m := &parley.Message{ID: parley.NewID(), SessionID: s.ID, ConversationID: s.ConversationID,
		Author: parley.AuthorBrain, Responses: r.Responses, CreatedAt: now}
	if err := tx.InsertMessage(m); err != nil {
		return nil, err
	}
	f := parley.EventFields{MessageID: m.ID, Output: &parley.Output{Responses: r.Responses}}
	if err := emit(tx, in, s, parley.EventBrainSend, now, f); err != nil {
		return nil, err
	}
	switch {
	case r.Handover:
		err = handover(tx, in, s, now)
	case r.Resolve:
		var later bool
		if later, err = laterJobs(tx, s); err == nil && !later {
			err = resolve(tx, in, s, ClosedBy{By: "brain"}, now)
		}
	}
	if err != nil {
		return nil, err
	}
	return m, tx.UpdateSession(s)
}

// laterJobs reports whether messages of the session's current conversation still wait for the
// brain. The user said more after the message whose answer resolves the conversation ("bye",
// then "wait, one more thing"): resolving would leave those unanswered in a closed
// conversation, so the conversation stays open for them.
func laterJobs(tx store.Tx, s *parley.Session) (bool, error) {
	jobs, err := tx.PendingJobs(s.ID)
	for _, j := range jobs {
		if j.ConversationID == s.ConversationID {
			return true, err
		}
	}
	return false, err
}

// BrainAnswers reports whether the brain still answers a job's message in session s: the
// session is active and the message's conversation is its current one, open and handled by
// the brain. Once an agent or a handover takes the conversation, the brain falls silent.
func (e *Engine) BrainAnswers(s *parley.Session, job *parley.BrainJob) bool {
	c := s.Conversation
	return s.ActiveAt(e.Now()) && c != nil && c.ID == job.ConversationID &&
		c.Status == parley.ConversationOpen && c.HandledBy == parley.HandledByBrain
}

// DropBrainJob removes a job the brain will not answer (BrainAnswers said no). A job already
// gone is not an error.
func (e *Engine) DropBrainJob(tx store.Tx, job *parley.BrainJob) error {
	if _, err := tx.LockSession(job.SessionID); err != nil && !parley.IsCode(err, parley.ENotFound) {
		return err
	}
	if err := tx.DeleteJob(job.Seq); err != nil && !parley.IsCode(err, parley.ENotFound) {
		return err
	}
	return nil
}
