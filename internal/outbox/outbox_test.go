package outbox_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

func TestDeliversSignedEventsInOrder(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		in := srv.NewIntegration(t, admin.IntegrationSpec{})
		sid := in.NewSession()
		for range 5 {
			in.Call("POST", "/sessions/"+sid+"/conversation/close", nil).Expect(t, http.StatusOK)
			in.Call("POST", "/sessions/"+sid+"/conversation/reopen", nil).Expect(t, http.StatusOK)
		}
		ds := in.Receiver.WaitN(10, 10*time.Second)
		for i, d := range ds {
			if !d.SignatureOK {
				t.Errorf("delivery %d: bad signature", i)
			}
			if d.Header.Get("X-Moveo-Event") != d.Type() || d.Header.Get("X-Moveo-Request-Id") != d.RequestID() ||
				d.Header.Get("X-Moveo-Session-Id") != sid || d.Attempt != 1 {
				t.Errorf("delivery %d: headers %v", i, d.Header)
			}
			want := parley.EventConversationClosed
			if i%2 == 1 {
				want = parley.EventConversationReopened
			}
			if d.Type() != want {
				t.Errorf("delivery %d is %s, want %s", i, d.Type(), want)
			}
		}
	})
}
