package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

func TestAdminAgents(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: apptest.SQLite})
	in := srv.NewIntegration(t, admin.IntegrationSpec{})
	auth := []string{"Authorization", "Bearer " + apptest.AdminToken}

	srv.Do(t, "POST", "/admin/v1/agents", map[string]any{"email": "ann@example.com", "name": "Ann", "token": true}).
		ExpectError(t, http.StatusUnauthorized, parley.EUnauthorized)
	r := srv.Do(t, "POST", "/admin/v1/agents", map[string]any{"email": "ann@example.com", "name": "Ann", "password": "s3cret-pass",
		"integrations": []string{in.ID}}, auth...).Expect(t, http.StatusCreated).JSON(t)
	id := r["id"].(string)
	if r["has_password"] != true || r["token"] != nil || strings.Contains(fmt.Sprint(r), "argon2") {
		t.Errorf("created: %v", r)
	}
	srv.Do(t, "POST", "/admin/v1/agents", map[string]any{"email": "ANN@example.com", "name": "Ann 2", "token": true}, auth...).
		ExpectError(t, http.StatusConflict, parley.EConflict)
	srv.Do(t, "POST", "/admin/v1/agents", map[string]any{"email": "x@example.com", "name": "X", "token": true, "role": "boss"}, auth...).
		ExpectError(t, http.StatusBadRequest, parley.EInvalid)

	tok := srv.Do(t, "POST", "/admin/v1/agents/"+id+"/tokens", nil, auth...).Expect(t, http.StatusCreated).Str(t, "token")
	srv.Do(t, "GET", "/agent/v1/me", nil, "Authorization", "Bearer "+tok).Expect(t, http.StatusOK)
	srv.Do(t, "POST", "/admin/v1/agents/"+parley.NewID()+"/tokens", nil, auth...).ExpectError(t, http.StatusNotFound, parley.ENotFound)

	list := srv.Do(t, "GET", "/admin/v1/agents", nil, auth...).Expect(t, http.StatusOK).JSON(t)["agents"].([]any)
	if len(list) != 1 || len(list[0].(map[string]any)["tokens"].([]any)) != 1 {
		t.Errorf("agents: %v", list)
	}

	// Rotation: a second token, the first revoked; the first is refused at once.
	tok2 := srv.Do(t, "POST", "/admin/v1/agents/"+id+"/tokens", nil, auth...).Expect(t, http.StatusCreated).Str(t, "token")
	first := list[0].(map[string]any)["tokens"].([]any)[0].(map[string]any)["id"].(string)
	for _, path := range []string{parley.NewID() + "/tokens/" + first, "nope/tokens/" + first, id + "/tokens/" + parley.NewID(), id + "/tokens/nope"} {
		srv.Do(t, "DELETE", "/admin/v1/agents/"+path, nil, auth...).ExpectError(t, http.StatusNotFound, parley.ENotFound)
	}
	srv.Do(t, "DELETE", "/admin/v1/agents/"+id+"/tokens/"+first, nil).ExpectError(t, http.StatusUnauthorized, parley.EUnauthorized)
	srv.Do(t, "GET", "/agent/v1/me", nil, "Authorization", "Bearer "+tok).Expect(t, http.StatusOK)
	if r := srv.Do(t, "DELETE", "/admin/v1/agents/"+id+"/tokens/"+first, nil, auth...); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	srv.Do(t, "GET", "/agent/v1/me", nil, "Authorization", "Bearer "+tok).ExpectError(t, http.StatusUnauthorized, parley.EUnauthorized)
	srv.Do(t, "GET", "/agent/v1/me", nil, "Authorization", "Bearer "+tok2).Expect(t, http.StatusOK)
	srv.Do(t, "DELETE", "/admin/v1/agents/"+id+"/tokens/"+first, nil, auth...).ExpectError(t, http.StatusNotFound, parley.ENotFound)
}
