// Package parley is the domain of the parley conversational channel server: the types every part
// shares (integrations, sessions, conversations, messages, webhook events, brain work), the rules
// for a session's context, and the error vocabulary every layer speaks.
//
// It must never do I/O: no database, no network, no clock of its own. Callers pass time in.
package parley

import (
	"errors"
	"fmt"
)

// Error codes. The first ones are the wire codes of Moveo's Custom integration API; the rest are
// parley's extensions in the same shape. The HTTP layer maps each code to one status.
const (
	EInvalid          = "invalid-payload"
	EUnauthorized     = "unauthorized"
	ESessionNotFound  = "session-not-found"
	EFileNotFound     = "file-not-found"
	EMethodNotAllowed = "method-not-allowed"
	ETooLarge         = "payload-too-large"
	ERateLimited      = "rate-limited"
	EInternal         = "internal-server-error"
	ENotImplemented   = "not-implemented"

	ENotFound  = "not-found" // an admin or agent resource that does not exist
	EConflict  = "conflict"  // the state changed under the caller (a unique key, a race lost)
	EForbidden = "forbidden" // authenticated, but not allowed to touch this resource
)

// Error is an error the caller may see: its Code picks the HTTP status and its Message is safe to
// show. Anything that is not an *Error is internal and is never shown.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EInternal for errors that are not *Error, "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of err that is safe to show to a caller.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Code == code
}
