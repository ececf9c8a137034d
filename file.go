package parley

import "time"

// File states (SPEC §2, Files). A file is pending from the moment its upload URL is handed out,
// uploading while one PUT is streaming its bytes, ready once the bytes are safely stored, and
// deleting once the retention sweep has chosen it (never a file a message references).
const (
	FilePending   = "pending"
	FileUploading = "uploading"
	FileReady     = "ready"
	FileDeleting  = "deleting"
)

// File is a file uploaded to a session. Its bytes live in the blob store under its ID; the
// filename is only ever shown (in Content-Disposition, in attachments), never used as a path.
type File struct {
	ID            string
	IntegrationID string
	SessionID     string
	Filename      string
	ContentType   string // a media type without parameters, lower case: image/png
	Size          int64  // bytes, once ready
	State         string
	CreatedAt     time.Time
	UploadedAt    time.Time // when it became ready
	ReferencedAt  time.Time // when a message first named it; zero while unreferenced
}
