package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// bodyCall is a call that takes a body: where it goes and how to make a valid body around a
// JSON value of the caller's choice (so a bad value can be put at any level).
type bodyCall struct {
	name   string
	method string
	path   string // after /sessions/{sid}; "-" is POST /sessions
	status int    // of a valid call
	valid  string // a valid body
}

var bodyCalls = []bodyCall{
	{"create session", "POST", "-", 201, `{"external_session_id":"e","channel_user_id":"u","context":{"a":1}}`},
	{"context", "PATCH", "/context", 200, `{"a":1}`},
	{"message", "POST", "/messages", 202, `{"input":{"text":"hi"},"context":{"a":1}}`},
	{"agent message", "POST", "/messages/agent", 202, `{"input":{"text":"hi"},"agent":{"agent_id":"x"}}`},
	{"read", "POST", "/messages/read", 200, `{"timestamp":1}`},
	{"delivered", "POST", "/messages/delivered", 200, `{"message_ids":["` + parley.NewID() + `"]}`},
}

// badCase is one bad request: a call, its raw body and headers, and the documented answer.
type badCase struct {
	name    string
	call    bodyCall
	body    string
	headers []string
	status  int
	code    string
}

// badCases lists bad input for every call: not JSON, not an object, trailing data, invalid
// UTF-8, U+0000, nesting, wrong types at every level, unknown fields, wrong Content-Type,
// missing input, empty messages, bad attachments and context type errors.
func badCases() []badCase {
	var cases []badCase
	add := func(call bodyCall, name, body string, headers ...string) {
		cases = append(cases, badCase{name, call, body, headers, http.StatusBadRequest, parley.EInvalid})
	}
	// Whatever the call: the body is not a JSON object, or not strictly one.
	for _, c := range bodyCalls {
		for _, tc := range []struct{ name, body string }{
			{"not JSON", `{not json`},
			{"truncated", c.valid[:len(c.valid)-1]},
			{"XML", `<input><text>hi</text></input>`},
			{"form", `input=hi`},
			{"null", `null`},
			{"array", `[` + c.valid + `]`},
			{"string", `"hello"`},
			{"number", `5`},
			{"boolean", `true`},
			{"two objects", c.valid + ` ` + c.valid},
			{"trailing bracket", c.valid + `]`},
			{"trailing brace", c.valid + `}`},
			{"trailing comma", c.valid + `,`},
			{"trailing garbage", c.valid + `x`},
			{"single quotes", strings.ReplaceAll(c.valid, `"`, `'`)},
			{"comment", `/* hi */` + c.valid},
			{"invalid UTF-8 in a key", "{\"\xff\":1}"},
			{"invalid UTF-8 in a value", "{\"x\":\"\xc3\x28\"}"},
			{"Latin-1 text", "{\"x\":\"caf\xe9\"}"},
			{"overlong UTF-8", "{\"x\":\"\xc0\xaf\"}"},
			{"UTF-16 surrogate as UTF-8", "{\"x\":\"\xed\xa0\x80\"}"},
			{"escaped U+0000 in a value", `{"x":"a\u0000b"}`},
			{"escaped U+0000 in a key", `{"a\u0000":1}`},
			{"raw NUL byte", "{\"x\":\"a\x00b\"}"},
			{"raw control character", "{\"x\":\"a\x01b\"}"},
			{"33 levels of objects", `{"x":` + nested(32) + `}`},
			{"33 levels of arrays", `{"x":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`},
			{"10000 levels", strings.Repeat("[", 10000) + strings.Repeat("]", 10000)},
			{"100000 unclosed levels", `{"x":` + strings.Repeat(`{"a":`, 100000)},
			{"duplicate BOM", "\xef\xbb\xbf" + c.valid},
		} {
			add(c, tc.name, tc.body)
		}
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
			"application/jsonx", "json", "application/json; charset=latin1", "application/json; charset=utf-16", "", "-"} {
			add(c, "Content-Type "+ct, c.valid, "Content-Type", ct)
		}
		if c.path != "-" {
			add(c, "empty body", ``)
			add(c, "blank body", " \n\t")
		}
		if c.path != "/context" {
			add(c, "unknown top-level field", strings.TrimSuffix(c.valid, `}`)+`,"extra":1}`)
			add(c, "unknown field, different case", strings.TrimSuffix(c.valid, `}`)+`,"Input":{"text":"hi"}}`)
		}
	}
	call := func(name string) bodyCall {
		for _, c := range bodyCalls {
			if c.name == name {
				return c
			}
		}
		panic(name)
	}
	create, patch, msg, agent, read, delivered := call("create session"), call("context"), call("message"), call("agent message"), call("read"), call("delivered")

	// create session
	for _, b := range []string{
		`{"external_session_id":5}`, `{"external_session_id":null,"channel_user_id":true}`, `{"channel_user_id":{}}`,
		`{"external_session_id":"` + strings.Repeat("e", 256) + `"}`, `{"channel_user_id":"` + strings.Repeat("u", 256) + `"}`,
		`{"context":[]}`, `{"context":"x"}`, `{"context":5}`,
	} {
		add(create, b[:min(len(b), 60)], b)
	}
	// A context's documented fields have documented types, wherever a context is given.
	contextErrors := []string{
		`{"tags":"vip"}`, `{"tags":[1]}`, `{"tags":[{}]}`, `{"tags":["a",null]}`, `{"tags":{}}`,
		`{"user":"ann"}`, `{"user":[]}`, `{"user":5}`, `{"user":true}`,
		`{"user":{"user_id":5}}`, `{"user":{"email":{}}}`, `{"user":{"display_name":[]}}`, `{"user":{"custom_psid":1}}`,
		`{"user":{"locales":"en"}}`, `{"user":{"locales":[1]}}`,
		`{"user":{"location":"Oslo"}}`, `{"user":{"location":{"city":5}}}`, `{"user":{"location":{"latitude":"59.9"}}}`,
		`{"user":{"location":{"longitude":true}}}`,
		`{"global":"x"}`, `{"global":{"disclaimer_accepted":"yes"}}`, `{"global":{"visitor_form_completed":1}}`,
		`{"global":{"client_url":5}}`, `{"global":{"ref":[]}}`,
		`{"channels":"custom"}`, `{"channels":[]}`,
		`{"big":"` + strings.Repeat("x", 300<<10) + `"}`, // over the 256 KiB a context may hold
	}
	for _, ctx := range contextErrors {
		name := ctx[:min(len(ctx), 50)]
		add(create, "context "+name, `{"context":`+ctx+`}`)
		add(patch, name, ctx)
		add(msg, "context "+name, `{"input":{"text":"hi"},"context":`+ctx+`}`)
	}
	// messages: the input, its text and its attachments
	input := func(in string) string { return `{"input":` + in + `}` }
	att := func(fields string) string { return input(`{"attachments":[{` + fields + `}]}`) }
	for _, b := range []string{
		`{}`, `{"context":{"a":1}}`, input(`null`), input(`"hi"`), input(`5`), input(`[]`), input(`true`),
		input(`{}`), input(`{"text":""}`), input(`{"text":null}`), input(`{"text":"","attachments":[]}`), input(`{"attachments":null}`),
		input(`{"text":5}`), input(`{"text":{}}`), input(`{"text":["hi"]}`), input(`{"text":true}`),
		input(`{"text":"` + strings.Repeat("x", 64<<10+1) + `"}`),
		input(`{"text":"hi","extra":1}`), input(`{"text":"hi","Text":"hi"}`),
		input(`{"attachments":{}}`), input(`{"attachments":"a.png"}`), input(`{"attachments":[5]}`), input(`{"attachments":["a.png"]}`),
		input(`{"attachments":[null]}`),
		input(`{"attachments":[` + strings.TrimSuffix(strings.Repeat(`{"type":"image","mime_type":"image/png","url":"https://x.example/a.png"},`, 21), ",") + `]}`),
		"{\"input\":{\"text\":\"caf\xe9\"}}", `{"input":{"text":"a\u0000"}}`,
		att(`"type":"sticker","mime_type":"image/png","url":"https://x.example/a"`),
		att(`"type":"","mime_type":"image/png","url":"https://x.example/a"`),
		att(`"type":"IMAGE","mime_type":"image/png","url":"https://x.example/a"`),
		att(`"mime_type":"image/png","url":"https://x.example/a"`),
		att(`"type":5,"mime_type":"image/png","url":"https://x.example/a"`),
		att(`"type":"image","url":"https://x.example/a"`),
		att(`"type":"image","mime_type":"png","url":"https://x.example/a"`),
		att(`"type":"image","mime_type":"","url":"https://x.example/a"`),
		att(`"type":"image","mime_type":"image/","url":"https://x.example/a"`),
		att(`"type":"image","mime_type":"image/png; q=1","url":"https://x.example/a"`),
		att(`"type":"image","mime_type":"image /png","url":"https://x.example/a"`),
		att(`"type":"image","mime_type":5,"url":"https://x.example/a"`),
		att(`"type":"image","mime_type":"image/png"`),
		att(`"type":"image","mime_type":"image/png","url":""`),
		att(`"type":"image","mime_type":"image/png","url":"ftp://x.example/a"`),
		att(`"type":"image","mime_type":"image/png","url":"javascript:alert(1)"`),
		att(`"type":"image","mime_type":"image/png","url":"data:image/png;base64,AAAA"`),
		att(`"type":"image","mime_type":"image/png","url":"https://"`),
		att(`"type":"image","mime_type":"image/png","url":"/relative/a.png"`),
		att(`"type":"image","mime_type":"image/png","url":"not a url"`),
		att(`"type":"image","mime_type":"image/png","url":5`),
		att(`"type":"image","mime_type":"image/png","url":"https://x.example/` + strings.Repeat("a", 2048) + `"`),
		att(`"type":"image","mime_type":"image/png","url":"https://x.example/a","file_id":"` + parley.NewID() + `"`),
		att(`"type":"image","mime_type":"image/png","file_id":"not-a-uuid"`),
		att(`"type":"image","mime_type":"image/png","file_id":"{` + parley.NewID() + `}"`),
		att(`"type":"image","mime_type":"image/png","file_id":5`),
		att(`"type":"image","mime_type":"image/png","file_id":"` + parley.NewID() + `"`), // no such file
		att(`"type":"image","mime_type":"image/png","url":"https://x.example/a","filename":"` + strings.Repeat("f", 256) + `"`),
		att(`"type":"image","mime_type":"image/png","url":"https://x.example/a","filename":5`),
		att(`"type":"image","mime_type":"image/png","url":"https://x.example/a","title":{}`),
		att(`"type":"image","mime_type":"image/png","url":"https://x.example/a","size":5`),
		`{"input":{"text":"hi"},"context":[]}`, `{"input":{"text":"hi"},"context":"x"}`, `{"input":{"text":"hi"},"context":5}`,
		`{"input":{"text":"hi"},"agent":{"agent_id":"x"}}`,
	} {
		add(msg, b[:min(len(b), 80)], b)
	}
	// agent messages: the same input rules, and the agent
	for _, b := range []string{
		`{"input":{"text":"hi"}}`, `{"agent":{"agent_id":"x"}}`, `{"input":{},"agent":{"agent_id":"x"}}`,
		`{"input":{"text":"hi"},"agent":null}`, `{"input":{"text":"hi"},"agent":"x"}`, `{"input":{"text":"hi"},"agent":5}`,
		`{"input":{"text":"hi"},"agent":[]}`, `{"input":{"text":"hi"},"agent":{}}`, `{"input":{"text":"hi"},"agent":{"agent_id":""}}`,
		`{"input":{"text":"hi"},"agent":{"agent_id":5}}`, `{"input":{"text":"hi"},"agent":{"agent_id":"x","agent_name":5}}`,
		`{"input":{"text":"hi"},"agent":{"agent_id":"x","agent_avatar":{}}}`,
		`{"input":{"text":"hi"},"agent":{"agent_id":"x","email":"a@b.c"}}`,
		`{"input":{"text":"hi"},"agent":{"agent_id":"` + strings.Repeat("a", 256) + `"}}`,
		`{"input":{"text":"hi"},"agent":{"agent_id":"x"},"context":{"a":1}}`,
		`{"input":{"attachments":[{"type":"sticker","mime_type":"image/png","url":"https://x.example/a"}]},"agent":{"agent_id":"x"}}`,
		`{"input":{"attachments":[{"type":"image","mime_type":"image/png","file_id":"` + parley.NewID() + `"}]},"agent":{"agent_id":"x"}}`,
	} {
		add(agent, b[:min(len(b), 80)], b)
	}
	// receipts
	ids := make([]string, 1001)
	for i := range ids {
		ids[i] = `"` + parley.NewID() + `"`
	}
	for _, c := range []bodyCall{read, delivered} {
		for _, b := range []string{
			`{}`, `{"message_ids":[]}`, `{"message_ids":null}`, `{"timestamp":null}`, `{"message_ids":[],"timestamp":null}`,
			`{"message_ids":"` + parley.NewID() + `"}`, `{"message_ids":[5]}`, `{"message_ids":[null]}`, `{"message_ids":{}}`,
			`{"message_ids":["not-a-uuid"]}`, `{"message_ids":["` + parley.NewID() + `","nope"]}`,
			`{"message_ids":["{` + parley.NewID() + `}"]}`, `{"message_ids":[` + strings.Join(ids, ",") + `]}`,
			`{"timestamp":"1700000000000"}`, `{"timestamp":1.5}`, `{"timestamp":1e3}`, `{"timestamp":-1}`, `{"timestamp":0}`,
			`{"timestamp":true}`, `{"timestamp":1e400}`, `{"timestamp":99999999999999999999}`, `{"timestamp":[1]}`,
		} {
			add(c, b[:min(len(b), 80)], b)
		}
	}
	return cases
}

// TestBadInput sends every bad request of badCases: each answers 400 invalid-payload in the
// error shape and leaves the session, its history, the outbox, the brain jobs and every table
// as they were. The cases of one call share a session and run one after the other; the calls
// run in parallel.
func TestBadInput(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		byCall := map[string][]badCase{}
		for _, tc := range badCases() {
			byCall[tc.call.name] = append(byCall[tc.call.name], tc)
		}
		for call, cases := range byCall {
			t.Run(call, func(t *testing.T) {
				t.Parallel()
				in := srv.NewIntegration(t, noSpec)
				sid := in.NewSession()
				in.Send(sid, "before")
				for i, tc := range cases {
					t.Run(fmt.Sprintf("%03d %s", i, tc.name), func(t *testing.T) {
						path := sp(sid, tc.call.path)
						if tc.call.path == "-" {
							path = "/sessions"
						}
						var r *apptest.Response
						unchanged(t, srv, in, sid, func() {
							r = send(t, srv, in, tc.call.method, path, tc.body, false, tc.headers...)
						})
						expectError(t, r, tc.status, tc.code)
					})
				}
			})
		}
	})
}

// TestGoodInput checks what the strict decoding must still accept: the edges of each rule.
func TestGoodInput(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		call := func(name string) bodyCall {
			for _, c := range bodyCalls {
				if c.name == name {
					return c
				}
			}
			panic(name)
		}
		create, patch, msg := call("create session"), call("context"), call("message")
		type goodCase struct {
			name    string
			call    bodyCall
			body    string
			headers []string
		}
		var cases []goodCase
		for _, c := range bodyCalls {
			cases = append(cases,
				goodCase{"valid", c, c.valid, nil},
				goodCase{"charset utf-8", c, c.valid, []string{"Content-Type", "application/json; charset=UTF-8"}},
				goodCase{"surrounding whitespace", c, " \n\t" + c.valid + "\r\n ", nil},
			)
		}
		cases = append(cases,
			goodCase{"no body", create, ``, []string{"Content-Type", "-"}},
			goodCase{"blank body with any type", create, `  `, []string{"Content-Type", "text/plain"}},
			goodCase{"empty object", create, `{}`, nil},
			goodCase{"nulls for optional fields", create, `{"external_session_id":null,"channel_user_id":null,"context":null}`, nil},
			goodCase{"unknown fields inside context", create, `{"context":{"custom":{"any":[1,{"deep":null}],"x":true}}}`, nil},
			goodCase{"32 levels in context", create, `{"context":` + nested(31) + `}`, nil},
			goodCase{"255-byte ids", create, `{"external_session_id":"` + strings.Repeat("e", 255) + `","channel_user_id":"` + strings.Repeat("u", 255) + `"}`, nil},
			goodCase{"32 levels", patch, nested(32), nil},
			goodCase{"32 levels of arrays", patch, `{"a":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`, nil},
			goodCase{"escaped backslash before u0000", patch, `{"path":"C:\\u0000"}`, nil},
			goodCase{"other escapes", patch, `{"s":"\u00e9\ud83d\ude00\n\t\"\\\/\u0001"}`, nil},
			goodCase{"unicode", patch, `{"name":"Zoë 👋 日本"}`, nil},
			goodCase{"nulls remove", patch, `{"user":null,"tags":null,"nothing":null}`, nil},
			goodCase{"documented types", patch, `{"user":{"display_name":"A","locales":["en"],"location":{"city":"Oslo","latitude":59.9,"longitude":10}},"global":{"disclaimer_accepted":false,"client_url":"https://x"},"tags":[]}`, nil},
			goodCase{"empty object", patch, `{}`, nil},
			goodCase{"big numbers", patch, `{"n":123456789012345678901234567890,"f":1e400}`, nil},
			goodCase{"attachments only", msg, `{"input":{"attachments":[{"type":"audio","mime_type":"audio/ogg","url":"https://x.example/a.ogg"}]}}`, nil},
			goodCase{"every attachment type", msg, `{"input":{"text":"t","attachments":[{"type":"image","mime_type":"image/png","url":"http://x.example/a"},{"type":"video","mime_type":"video/mp4","url":"https://x.example/v"},{"type":"audio","mime_type":"audio/mpeg","url":"https://x.example/s"},{"type":"file","mime_type":"application/vnd.ms-excel","url":"https://x.example/f","filename":"f.xls","title":"F"}]}}`, nil},
			goodCase{"64 KiB of text", msg, `{"input":{"text":"` + strings.Repeat("x", 64<<10) + `"}}`, nil},
			goodCase{"20 attachments", msg, `{"input":{"attachments":[` + strings.TrimSuffix(strings.Repeat(`{"type":"image","mime_type":"image/png","url":"https://x.example/a.png"},`, 20), ",") + `]}}`, nil},
			goodCase{"empty context", msg, `{"input":{"text":"hi"},"context":{}}`, nil},
			goodCase{"null context", msg, `{"input":{"text":"hi"},"context":null}`, nil},
			goodCase{"1000 receipt ids", call("read"), `{"message_ids":[` + strings.TrimSuffix(strings.Repeat(`"`+parley.NewID()+`",`, 1000), ",") + `]}`, nil},
		)
		for i, tc := range cases {
			t.Run(fmt.Sprintf("%s/%02d %s", tc.call.name, i, tc.name), func(t *testing.T) {
				t.Parallel()
				in := srv.NewIntegration(t, noSpec)
				sid := in.NewSession()
				path := sp(sid, tc.call.path)
				if tc.call.path == "-" {
					path = "/sessions"
				}
				r := send(t, srv, in, tc.call.method, path, tc.body, false, tc.headers...)
				if r.Status != tc.call.status {
					t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.call.status)
				}
			})
		}
	})
}
