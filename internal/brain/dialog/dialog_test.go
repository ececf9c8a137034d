package dialog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/dialog"
)

func text(s string) string { return `{"type":"text","text":` + quote(s) + `}` }

func quote(s string) string {
	b, _ := parley.Marshal(s)
	return string(b)
}

// texts is a reply of text responses and nothing else.
func texts(ss ...string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = text(s)
	}
	return `{"responses":[` + strings.Join(parts, ",") + `]}`
}

func TestTriggers(t *testing.T) {
	t.Parallel()
	d := load(t, "triggers.yaml")
	miss := `{"responses":[` + text("fallback") + `],"context":{"sys-unknown_counter":1}}`
	tests := []struct {
		name, say string
		start     bool
		context   string
		want      string
	}{
		{"keyword", "refund", false, "", texts("refund")},
		{"keyword ignores case and punctuation", "REFUND!!", false, "", texts("refund")},
		{"keyword of two words", "I want my Money-Back.", false, "", texts("refund")},
		{"keyword is a whole word", "refunds please", false, "", miss},
		{"keyword ignores accents in the file", "precos?", false, "", texts("accents")},
		{"keyword ignores accents in the message", "PREÇOS", false, "", texts("accents")},
		{"keyword with accents both sides", "un café com  leite!", false, "", texts("accents")},
		{"keyword decomposed accents", "cafe\u0301 com leite", false, "", texts("accents")},
		{"regex", "order #123", false, "", texts("order")},
		{"regex without the optional part", "order 9", false, "", texts("order")},
		{"regex is case-sensitive", "Order 123", false, "", miss},
		{"regex is anchored as written", "my order 1", false, "", miss},
		{"regex (?i)", "TRACK it", false, "", texts("track")},
		{"second regex of a list", "where is my PARCEL?", false, "", texts("track")},
		{"keyword", "tell me the plans", false, "", texts("plans keyword")},
		{"quick reply wins over an earlier keyword", "See our plans", false, "", texts("quick")},
		{"quick reply ignores case and spacing", "  see OUR   plans ", false, "", texts("quick")},
		{"quick reply is the whole message", "see our plans now", false, "", texts("plans keyword")},
		{"quick reply emoji", "👍", false, "", texts("quick")},
		{"quick reply without words", "?!", false, "", texts("quick")},
		{"no words", "?", false, "", miss},
		{"empty", "", false, "", miss},
		{"start", "hello", true, "", texts("welcome")},
		{"start then the match", "refund", true, "", texts("welcome", "refund")},
		{"start resets the counter", "what", true, `{"sys-unknown_counter":2}`, `{"responses":[` + text("welcome") + `],"context":{"sys-unknown_counter":0}}`},
		{"a match resets the counter", "refund", false, `{"sys-unknown_counter":2}`, `{"responses":[` + text("refund") + `],"context":{"sys-unknown_counter":0}}`},
		{"a miss counts", "what", false, `{"sys-unknown_counter":2}`, `{"responses":[` + text("fallback") + `],"context":{"sys-unknown_counter":3}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			converse(t, d, tt.context, []turn{{tt.say, tt.start, tt.want}})
		})
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	d := load(t, "start.yaml")
	pending := `"sys-pending":{"dialog":"start","step":0,"store":"user.display_name"}`
	tests := []struct {
		name, context string
		turns         []turn
	}{
		{"a question at the start is the whole answer", "", []turn{
			{"help", true, `{"responses":[` + text("Welcome! Your name?") + `],"context":{` + pending + `}}`},
			{"Ann", false, `{"responses":[` + text("Hi Ann") + `],"context":{"sys-pending":null,"user":{"display_name":"Ann"}}}`},
			{"help", false, texts("help")},
		}},
		{"the first start dialog whose conditions hold", `{"user":{"display_name":"Bo"}}`, []turn{
			{"help", true, texts("Welcome back Bo", "help")},
		}},
		{"a new conversation forgets the last one's question", `{"user":{"display_name":"Bo"},` + pending + `}`, []turn{
			{"help", true, `{"responses":[` + text("Welcome back Bo") + `,` + text("help") + `],"context":{"sys-pending":null}}`},
		}},
		{"no no_match dialog: the built-in fallback", `{"user":{"display_name":"Bo"}}`, []turn{
			{"hm", false, `{"responses":[` + text("Sorry, I didn't understand that.") + `],"context":{"sys-unknown_counter":1}}`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			converse(t, d, tt.context, tt.turns)
		})
	}

	t.Run("a first message that matches nothing is not a miss", func(t *testing.T) {
		t.Parallel()
		converse(t, load(t, "fallback.yaml"), "", []turn{
			{"what", true, texts("miss ")}, // no count at all
			{"what", false, `{"responses":[` + text("miss 1") + `],"context":{"sys-unknown_counter":1}}`},
		})
	})
}

func TestConditions(t *testing.T) {
	t.Parallel()
	d := load(t, "conditions.yaml")
	tests := []struct {
		name, context string
		want          []string
	}{
		{"equals", `{"user":{"plan":"gold"}}`, []string{"gold"}},
		{"in", `{"user":{"plan":"bronze"}}`, []string{"silver or bronze"}},
		{"at_least", `{"user":{"level":3}}`, []string{"level 3 or more"}},
		{"at_least a number in a string", `{"user":{"level":"4.5"}}`, []string{"level 3 or more"}},
		{"nothing set", `{}`, []string{"status", "no email", "not gold", "no plan"}},
		{"null is no value", `{"user":{"plan":null,"email":null}}`, []string{"status", "no email", "not gold", "no plan"}},
		{"everything set", `{"user":{"email":"x@example.com","phone":"+351123","level":1,"plan":"free"},"tags":["new","vip"],"a":1,"b":"x","global":{"disclaimer_accepted":true}}`,
			[]string{"status", "has email", "vip", "not gold", "phone", "low level", "a or b", "a is 1 and b is x", "accepted", "domain"}},
		{"numbers compare as numbers", `{"user":{"phone":"555-1234","level":"0.5"},"a":"1.0"}`, []string{"status", "no email", "not gold", "low level", "a or b", "no plan"}},
		{"a variable of another type", `{"user":"gold","tags":"vip"}`, []string{"status", "no email", "vip", "not gold", "no plan"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			converse(t, d, tt.context, []turn{{"status", false, texts(tt.want...)}})
		})
	}
}

func TestActions(t *testing.T) {
	t.Parallel()
	d := load(t, "actions.yaml")
	ann := `{"user":{"display_name":"Ann","age":30,"user_id":"u1","plan":"gold","email":"a@x"},"tags":["old"]}`
	tests := []struct {
		name, context string
		turns         []turn
	}{
		{"text, options and templates", ann, []turn{{"text", false, `{"responses":[{"type":"text","text":"Hello Ann, you are 30 from somewhere; tags: old; .",
			"options":[{"label":"Yes","text":"Yes"},{"label":"No, Ann","text":"no"}]}]}`}}},
		{"templates: defaults and nested paths", `{"user":{"location":{"city":"Porto"}},"tags":["a","b"]}`, []turn{{"text", false, `{"responses":[{"type":"text",
			"text":"Hello there, you are  from Porto; tags: a, b; .","options":[{"label":"Yes","text":"Yes"},{"label":"No, ","text":"no"}]}]}`}}},
		{"media", ann, []turn{{"media", false, `{"responses":[
			{"type":"image","url":"https://cdn.example/a.png","name":"A picture","size":1024},
			{"type":"video","url":"https://cdn.example/v/u1.mp4"},
			{"type":"audio","url":"https://cdn.example/a.mp3"},
			{"type":"file","url":"https://cdn.example/f.pdf","name":"Ann.pdf"},
			{"type":"webview","url":"https://shop.example/cart","name":"Open the cart","label":"Open the cart","height":"tall"},
			{"type":"webview","url":"https://shop.example/help","name":"The help page","label":"Help"}]}`}}},
		{"carousel", ann, []turn{{"carousel", false, `{"responses":[{"type":"carousel","cards":[
			{"title":"For Ann","subtitle":"A subtitle","media":{"type":"image","url":"https://cdn.example/1.png"},
			 "default_action":{"type":"url","url":"https://shop.example/1"},
			 "buttons":[{"type":"url","label":"Open","url":"https://shop.example/1"},{"type":"postback","label":"Buy","value":"buy 1"},
			            {"type":"phone","label":"Call","value":"+15550100"},{"type":"webview","label":"Look","url":"https://shop.example/1/view"}]},
			{"title":"Plain"}]}]}`}}},
		{"pause", "", []turn{{"pause", false, `{"responses":[{"type":"pause","duration":1500,"show_typing":true},
			{"type":"pause","duration":200,"show_typing":false},` + text("after the pause") + `]}`}}},
		{"handover stops the dialog", "", []turn{{"handover", false, `{"responses":[` + text("handing over") + `,{"type":"handover"}],"handover":true}`}}},
		{"handover resets the counter and the question", `{"sys-unknown_counter":2,"sys-pending":{"dialog":"x"}}`, []turn{{"handover", false,
			`{"responses":[` + text("handing over") + `,{"type":"handover"}],"handover":true,"context":{"sys-unknown_counter":0,"sys-pending":null}}`}}},
		{"resolve", "", []turn{{"resolve", false, `{"responses":[` + text("bye") + `],"resolve":true}`}}},
		{"set", ann, []turn{{"set", false, `{"responses":[` + text("plan gold, score 10, city Lisbon, list a, 1, false") + `],
			"context":{"user":{"plan":"gold"},"score":10,"ratio":0.5,"vip":true,"greeting":"hi Ann","address":{"city":"Lisbon","zip":"1000"},"list":["a",1,false],"gone":null}}`}}},
		{"remove", ann, []turn{{"remove", false, `{"responses":[` + text("email gone") + `],"context":{"user":{"email":null}}}`}}},
		{"remove what is not there", "", []turn{{"remove", false, texts("email gone")}}},
		{"tags", ann, []turn{{"tags", false, `{"responses":[` + text("tags vip, plan-gold") + `],"context":{"tags":["vip","plan-gold"]}}`}}},
		{"tags without tags", "", []turn{{"tags", false, `{"responses":[` + text("tags vip, plan-") + `],"context":{"tags":["vip","plan-"]}}`}}},
		{"tags unchanged write nothing", ann, []turn{{"sametags", false, texts("same")}}},
		{"goto", "", []turn{{"goto", false, texts("before the jump", "in the target")}}},
		{"goto a dialog whose conditions hold", ann, []turn{{"guarded", false, texts("gold only")}}},
		{"goto a dialog whose conditions fail", "", []turn{{"guarded", false, `{"responses":[]}`}}},
		{"rotate", ann, []turn{
			{"rotate", false, `{"responses":[{"type":"text","text":"first","options":[{"label":"again","text":"again"}]}],"context":{"sys-rotate":{"rotate#1":1}}}`},
			{"rotate", false, `{"responses":[{"type":"text","text":"second Ann","options":[{"label":"again","text":"again"}]}],"context":{"sys-rotate":{"rotate#1":2}}}`},
			{"rotate", false, `{"responses":[{"type":"text","text":"third","options":[{"label":"again","text":"again"}]}],"context":{"sys-rotate":{"rotate#1":0}}}`},
			{"rotate", false, `{"responses":[{"type":"text","text":"first","options":[{"label":"again","text":"again"}]}],"context":{"sys-rotate":{"rotate#1":1}}}`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			converse(t, d, tt.context, tt.turns)
		})
	}

	t.Run("variants at random", func(t *testing.T) {
		t.Parallel()
		seen := map[string]bool{}
		s := newSession(t, d, "")
		for range 200 {
			r := s.say("variants", false)
			if len(r.Responses) != 1 || r.Context != nil {
				t.Fatalf("got %s", replyJSON(t, r))
			}
			seen[r.Responses[0].Text] = true
		}
		if len(seen) != 3 || !seen["one"] || !seen["two"] || !seen["three"] {
			t.Errorf("200 picks gave %v, want one, two and three", seen)
		}
	})

	t.Run("a goto loop is an error", func(t *testing.T) {
		t.Parallel()
		_, err := newSession(t, d, "").send("loop", false)
		if err == nil || !strings.Contains(err.Error(), "goto loop") {
			t.Errorf("got %v, want a goto loop error", err)
		}
	})
}

func TestAsk(t *testing.T) {
	t.Parallel()
	d := load(t, "ask.yaml")
	pending := func(dialog string, step int, store string) string {
		return fmt.Sprintf(`"sys-pending":{"dialog":%q,"step":%d,"store":%q}`, dialog, step, store)
	}
	emailAsk := `{"type":"text","text":"Your email?","options":[{"label":"Skip","text":"skip@example.com"}]}`
	tests := []struct {
		name, context string
		turns         []turn
	}{
		{"the answer is stored and the dialog goes on", "", []turn{
			{"name", false, `{"responses":[` + text("Let's get to know each other.") + `,` + text("What's your name?") + `],"context":{` + pending("name", 1, "user.display_name") + `}}`},
			{"  Zoë ", false, `{"responses":[` + text("Hi Zoë!") + `],"context":{"sys-pending":null,"user":{"display_name":"Zoë"}}}`},
			{"name", false, `{"responses":[` + text("Let's get to know each other.") + `,` + text("What's your name?") + `],"context":{` + pending("name", 1, "user.display_name") + `}}`},
		}},
		{"without validate, any text is the answer", "", []turn{
			{"name", false, `{"responses":[` + text("Let's get to know each other.") + `,` + text("What's your name?") + `],"context":{` + pending("name", 1, "user.display_name") + `}}`},
			{"email", false, `{"responses":[` + text("Hi email!") + `],"context":{"sys-pending":null,"user":{"display_name":"email"}}}`},
		}},
		{"validate, retry, then", "", []turn{
			{"email", false, `{"responses":[` + emailAsk + `],"context":{` + pending("email", 0, "user.email") + `}}`},
			{"no idea", false, `{"responses":[{"type":"text","text":"That is not an email, friend. Your email?","options":[{"label":"Skip","text":"skip@example.com"}]}]}`},
			{"bob@example.com", false, `{"responses":[` + text("Thanks, we'll write to bob@example.com.") + `],"context":{"sys-pending":null,"user":{"email":"bob@example.com"}}}`},
		}},
		{"an invalid answer that asks for something else gets it", "", []turn{
			{"email", false, `{"responses":[` + emailAsk + `],"context":{` + pending("email", 0, "user.email") + `}}`},
			{"I want a human", false, `{"responses":[{"type":"handover"}],"handover":true,"context":{"sys-pending":null}}`},
		}},
		{"a quick reply of another dialog is not an answer", "", []turn{
			{"color", false, `{"responses":[{"type":"text","text":"Red or blue?","options":[{"label":"Red","text":"Red"},{"label":"Blue","text":"Blue"}]}],"context":{` + pending("color", 0, "color") + `}}`},
			{"Talk to a human", false, `{"responses":[{"type":"handover"}],"handover":true,"context":{"sys-pending":null}}`},
		}},
		{"unless the question offers it", "", []turn{
			{"blue", false, texts("feeling blue")},
			{"color", false, `{"responses":[{"type":"text","text":"Red or blue?","options":[{"label":"Red","text":"Red"},{"label":"Blue","text":"Blue"}]}],"context":{` + pending("color", 0, "color") + `}}`},
			{"Blue", false, `{"responses":[` + text("Blue it is.") + `],"context":{"sys-pending":null,"color":"Blue"}}`},
		}},
		{"a question the file no longer has is forgotten", `{` + pending("gone", 0, "x") + `}`, []turn{
			{"zzz", false, `{"responses":[` + text("fallback") + `],"context":{"sys-pending":null,"sys-unknown_counter":1}}`},
		}},
		{"a question whose step changed is forgotten", `{` + pending("name", 0, "user.display_name") + `}`, []turn{
			{"Al", false, `{"responses":[` + text("fallback") + `],"context":{"sys-pending":null,"sys-unknown_counter":1}}`},
		}},
		{"a pending key of the wrong shape is forgotten", `{"sys-pending":"name"}`, []turn{
			{"color", false, `{"responses":[{"type":"text","text":"Red or blue?","options":[{"label":"Red","text":"Red"},{"label":"Blue","text":"Blue"}]}],"context":{` + pending("color", 0, "color") + `}}`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			converse(t, d, tt.context, tt.turns)
		})
	}

	t.Run("an attachment answers", func(t *testing.T) {
		t.Parallel()
		s := newSession(t, d, "")
		s.say("photo", false)
		r := s.say("", false, parley.Attachment{Type: "image", MimeType: "image/png", URL: "https://files.example/p.png"})
		want := canonical(t, `{"responses":[`+text("Got https://files.example/p.png")+`],"context":{"sys-pending":null,"photo":"https://files.example/p.png"}}`)
		if got := replyJSON(t, r); got != want {
			t.Errorf("got %s\nwant %s", got, want)
		}
	})
}

func TestFallback(t *testing.T) {
	t.Parallel()
	d := load(t, "fallback.yaml")
	count := func(n int) string { return fmt.Sprintf(`"context":{"sys-unknown_counter":%d}`, n) }
	converse(t, d, "", []turn{
		{"a", false, `{"responses":[` + text("miss 1") + `],` + count(1) + `}`},
		{"hello", false, `{"responses":[` + text("hello") + `],` + count(0) + `}`},
		{"b", false, `{"responses":[` + text("miss 1") + `],` + count(1) + `}`},
		{"c", false, `{"responses":[` + text("second miss (2)") + `],` + count(2) + `}`},
		{"d", false, `{"responses":[` + text("handing over after 3 misses") + `,{"type":"handover"}],"handover":true,` + count(0) + `}`},
		{"e", false, `{"responses":[` + text("miss 1") + `],` + count(1) + `}`},
	})
	t.Run("a counter from a bad context starts again", func(t *testing.T) {
		converse(t, d, `{"sys-unknown_counter":"many"}`, []turn{
			{"a", false, `{"responses":[` + text("miss 1") + `],` + count(1) + `}`},
		})
	})
	t.Run("the counter as JSON gives it back", func(t *testing.T) {
		converse(t, d, `{"sys-unknown_counter":2.0}`, []turn{
			{"a", false, `{"responses":[` + text("handing over after 3 misses") + `,{"type":"handover"}],"handover":true,` + count(0) + `}`},
		})
	})
}

func TestJSON(t *testing.T) {
	t.Parallel()
	converse(t, load(t, "minimal.yaml"), "", []turn{{"hi!", false, texts("Hello from JSON")}})
}

// TestDemo plays the conversation the demo exists to show.
func TestDemo(t *testing.T) {
	t.Parallel()
	d := dialog.Demo()
	if got, want := d.Summary(), "12 dialogs, 0 webhooks"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if _, err := dialog.Load("demo.yaml", dialog.DemoSource()); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, d, "")
	types := func(r *brain.Reply) string {
		var ts []string
		for _, x := range r.Responses {
			ts = append(ts, x.Type)
		}
		return strings.Join(ts, " ")
	}
	steps := []struct {
		say   string
		start bool
		types string
		check func(r *brain.Reply) bool
	}{
		{"hello", true, "text", func(r *brain.Reply) bool {
			return strings.HasPrefix(r.Responses[0].Text, "Hi there!") && len(r.Responses[0].Options) == 3
		}},
		{"See our plans", false, "text carousel text", func(r *brain.Reply) bool {
			return len(r.Responses[1].Cards) == 3 && s.ctx["sys-pending"] != nil && fmt.Sprint(s.ctx["tags"]) == "[viewed-plans]"
		}},
		{"maybe", false, "text", func(r *brain.Reply) bool { return strings.HasPrefix(r.Responses[0].Text, "Which plan") }},
		{"Pro", false, "text text", func(r *brain.Reply) bool {
			return strings.Contains(r.Responses[0].Text, "Pro it is") && fmt.Sprint(s.ctx["tags"]) == "[viewed-plans plan-Pro]"
		}},
		{"what is my plan", false, "text", func(r *brain.Reply) bool { return r.Responses[0].Text == "You chose Pro." }},
		{"Ask me something", false, "text", nil},
		{"Ann", false, "text", func(r *brain.Reply) bool { return strings.HasPrefix(r.Responses[0].Text, "Nice to meet you, Ann!") }},
		{"when are you open?", false, "pause text", nil},
		{"Show me media", false, "image video audio file webview", nil},
		{"thanks!", false, "text", nil},
		{"asdf", false, "text", func(r *brain.Reply) bool { return fmt.Sprint(s.ctx["sys-unknown_counter"]) == "1" }},
		{"qwer", false, "text", nil},
		{"zxcv", false, "text handover", func(r *brain.Reply) bool { return r.Handover }},
		{"bye", false, "text", func(r *brain.Reply) bool { return r.Resolve && r.Responses[0].Text == "Bye Ann! Come back any time." }},
		{"hi again", true, "text", func(r *brain.Reply) bool { return strings.HasPrefix(r.Responses[0].Text, "Hi Ann!") }},
		{"I need an agent", false, "text handover", func(r *brain.Reply) bool {
			return r.Handover && fmt.Sprint(s.ctx["tags"]) == "[viewed-plans plan-Pro wants-human]"
		}},
	}
	for _, st := range steps {
		r := s.say(st.say, st.start)
		if got := types(r); got != st.types {
			t.Fatalf("say %q: responses %q, want %q: %s", st.say, got, st.types, replyJSON(t, r))
		}
		if st.check != nil && !st.check(r) {
			t.Fatalf("say %q: unexpected reply %s\ncontext %s", st.say, replyJSON(t, r), parley.EncodeObject(s.ctx))
		}
	}
}

// TestConcurrent has many sessions talk to one Dialog at once; with -race it shows a Dialog
// shares nothing a reply writes.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	d := load(t, "actions.yaml")
	demo := dialog.Demo()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSession(t, d, `{"user":{"display_name":"Ann"},"tags":["old"]}`)
			ds := newSession(t, demo, "")
			for j := range 50 {
				for _, m := range []string{"text", "set", "tags", "rotate", "carousel", "variants", "remove"} {
					s.say(m, false)
				}
				ds.say([]string{"hi", "See our plans", "Pro", "ask", "Bo", "hours", "xx"}[(i+j)%7], j == 0)
			}
		}()
	}
	wg.Wait()
}

// TestOddContexts: a context of unexpected shapes (the integrator writes it) never fails a reply.
func TestOddContexts(t *testing.T) {
	t.Parallel()
	for _, c := range []string{
		`{"user":"Ann","tags":"vip","sys-pending":[1],"sys-unknown_counter":{"a":1},"sys-rotate":"x"}`,
		`{"user":{"display_name":{"first":"Ann"}},"tags":[1,null,{"a":1}],"sys-rotate":{"rotate#1":"x"}}`,
		`{"sys-pending":{"dialog":5,"step":"x"},"sys-unknown_counter":-4}`,
		`{"sys-pending":{"dialog":"name","step":1e300,"store":"user.display_name"},"sys-unknown_counter":1e300}`,
	} {
		for _, file := range []string{"actions.yaml", "ask.yaml", "fallback.yaml"} {
			d := load(t, file)
			for _, m := range []string{"text", "tags", "rotate", "name", "zzz", "set", "remove"} {
				s := newSession(t, d, c)
				if _, err := s.send(m, false); err != nil {
					t.Errorf("%s, context %s, say %q: %v", file, c, m, err)
				}
			}
		}
	}
}

func TestNilMessage(t *testing.T) {
	t.Parallel()
	r, err := dialog.Demo().Reply(context.Background(), &brain.Request{ConversationStart: true})
	if err != nil || len(r.Responses) == 0 {
		t.Fatalf("got %v, %v", r, err)
	}
}

// TestRemoveAfterSet: removing a variable whose parent this same message replaced leaves the
// new value alone; removing one the message set and the session lacks leaves no trace.
func TestRemoveAfterSet(t *testing.T) {
	d, err := dialog.Load("remove.yaml", []byte(`dialogs:
  - name: replace
    keywords: [replace]
    steps:
      - set: {a: x}
      - remove: [a.b]
      - text: done
  - name: fresh
    keywords: [fresh]
    steps:
      - set: {n.m: 1}
      - remove: [n.m]
      - text: done
`))
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, d, `{"a":{"b":1}}`)
	s.say("replace", false)
	if got := string(parley.EncodeObject(s.ctx)); got != `{"a":"x"}` {
		t.Errorf("after set a, remove a.b: context %s, want {\"a\":\"x\"}", got)
	}
	s = newSession(t, d, `{}`)
	s.say("fresh", false)
	if got := string(parley.EncodeObject(s.ctx)); got != `{}` {
		t.Errorf("after set n.m, remove n.m: context %s, want {}", got)
	}
}
