package httpapi

import (
	"net/http"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/blob"
	"github.com/parleyhq/parley/internal/store"
)

// Bodies of the file endpoints (SPEC §2, Files).
type (
	uploadURLRequest struct {
		Filename    *string `json:"filename"`
		ContentType *string `json:"content_type"`
	}
	downloadURLRequest struct {
		FileID *string `json:"file_id"`
	}
	uploadURLCreated struct {
		RequestID string `json:"request_id"`
		UploadURL string `json:"upload_url"`
		FileID    string `json:"file_id"`
	}
	downloadURLCreated struct {
		RequestID   string `json:"request_id"`
		DownloadURL string `json:"download_url"`
		FileID      string `json:"file_id"`
	}
	fileUploaded struct {
		RequestID string `json:"request_id"`
		FileID    string `json:"file_id"`
		Size      int64  `json:"size"`
	}
)

// filesEnabled answers 501 when the server was built without a file service.
func (s *Server) filesEnabled(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Files == nil {
		s.fail(w, r, parley.Errorf(parley.ENotImplemented, "files are not available on this server"))
		return false
	}
	return true
}

func (s *Server) uploadURL(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	sid, err := sessionID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req uploadURLRequest
	if err := DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Filename == nil || req.ContentType == nil {
		s.fail(w, r, parley.Errorf(parley.EInvalid, "filename and content_type are required"))
		return
	}
	if !s.filesEnabled(w, r) {
		return
	}
	up, err := s.cfg.Files.CheckUpload(*req.Filename, *req.ContentType)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rid := RequestID(r.Context())
	s.exec(w, r, in, http.StatusOK, func(tx store.Tx) (any, error) {
		sess, err := s.chat.ActiveSession(tx, in, sid)
		if err != nil {
			return nil, err
		}
		f, u, err := s.cfg.Files.NewUpload(tx, sess, up)
		if err != nil {
			return nil, err
		}
		return uploadURLCreated{RequestID: rid, UploadURL: u, FileID: f.ID}, nil
	})
}

func (s *Server) downloadURL(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	sid, err := sessionID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req downloadURLRequest
	if err := DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.FileID == nil || *req.FileID == "" {
		s.fail(w, r, parley.Errorf(parley.EInvalid, "file_id is required"))
		return
	}
	if !s.filesEnabled(w, r) {
		return
	}
	fileID := *req.FileID
	if id, ok := parley.ParseID(fileID); ok {
		fileID = id
	}
	rid := RequestID(r.Context())
	fn := func(tx store.ReadTx) (any, error) {
		sess, err := s.chat.ActiveSession(tx, in, sid)
		if err != nil {
			return nil, err
		}
		u, err := s.cfg.Files.DownloadURL(tx, sess, fileID)
		if err != nil {
			return nil, err
		}
		return downloadURLCreated{RequestID: rid, DownloadURL: u, FileID: fileID}, nil
	}
	if r.Header.Get("Idempotency-Key") != "" {
		// Only to remember the answer: it changes nothing.
		s.exec(w, r, in, http.StatusOK, func(tx store.Tx) (any, error) { return fn(tx) })
		return
	}
	s.view(w, r, fn)
}

// putFile takes the one PUT of an upload URL. The URL's signature is the credential: there is
// no API key on this route.
func (s *Server) putFile(w http.ResponseWriter, r *http.Request) {
	if !s.filesEnabled(w, r) {
		return
	}
	// A client that trickles its bytes cannot hold the connection for longer than an upload
	// URL lives.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.Files.UploadExpiry()))
	f, err := s.cfg.Files.Receive(r.Context(), r.PathValue("file_id"), r.URL.Query(), r.Header.Get("Content-Type"),
		r.ContentLength, r.Body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, fileUploaded{RequestID: RequestID(r.Context()), FileID: f.ID, Size: f.Size})
}

// getFile serves a download URL of the local store (with S3 the store serves its own). It
// answers ranges and conditional requests (media players seek with them) through
// http.ServeContent, whose few range errors are plain text: the one exception to the error
// shape, for clients that asked for a range.
func (s *Server) getFile(w http.ResponseWriter, r *http.Request) {
	if !s.filesEnabled(w, r) {
		return
	}
	f, body, err := s.cfg.Files.Open(r.Context(), r.PathValue("file_id"), r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("Content-Disposition", blob.ContentDisposition(f.ContentType, f.Filename))
	// Served from parley's own origin: never sniffed into something runnable, and sandboxed
	// should a browser open it anyway.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private")
	http.ServeContent(w, r, "", f.UploadedAt, body)
}
