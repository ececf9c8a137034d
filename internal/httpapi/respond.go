package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/parleyhq/parley"
)

// statusOf maps the domain's error codes to HTTP statuses: the one place that does.
var statusOf = map[string]int{
	parley.EInvalid:          http.StatusBadRequest,
	parley.EUnauthorized:     http.StatusUnauthorized,
	parley.EForbidden:        http.StatusForbidden,
	parley.ESessionNotFound:  http.StatusNotFound,
	parley.EFileNotFound:     http.StatusNotFound,
	parley.ENotFound:         http.StatusNotFound,
	parley.EMethodNotAllowed: http.StatusMethodNotAllowed,
	parley.EConflict:         http.StatusConflict,
	parley.ETooLarge:         http.StatusRequestEntityTooLarge,
	parley.ERateLimited:      http.StatusTooManyRequests,
	parley.ENotImplemented:   http.StatusNotImplemented,
	parley.EInternal:         http.StatusInternalServerError,
}

// errorBody is the one error shape of every API (SPEC §2).
type errorBody struct {
	Code    string `json:"error_code"`
	Message string `json:"error_message"`
}

// WriteError answers with err in the error shape. Internal errors are logged with their cause
// and shown only as "internal error" with the request ID, never with internals.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := parley.ErrorCode(err)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		code = parley.EInternal // the client left; nobody reads the answer
	}
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	msg := parley.ErrorMessage(err)
	rid := RequestID(r.Context())
	if status == http.StatusInternalServerError {
		msg = "internal error; request_id " + rid
		log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("request_id", rid),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	WriteJSON(w, status, errorBody{Code: code, Message: msg})
}

// WriteJSON answers with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := parley.Marshal(v)
	if err != nil {
		// Every response type is plain data; this is a bug, and the client still gets the shape.
		status, b = http.StatusInternalServerError, []byte(`{"error_code":"internal-server-error","error_message":"internal error"}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
