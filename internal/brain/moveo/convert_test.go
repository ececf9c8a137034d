package moveo_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/moveo"
)

func TestConvertActions(t *testing.T) {
	t.Parallel()
	const img = "https://cdn.example.com/a.png"
	tests := []struct {
		name   string
		action string // one element of responses
		want   []brain.Response
	}{
		// text
		{"text", `{"type":"text","texts":["Hello"]}`, []brain.Response{brain.Text("Hello")}},
		{"text plain", `{"type":"text","text":"Hello"}`, []brain.Response{brain.Text("Hello")}},
		{"texts wins over text", `{"type":"text","texts":["A"],"text":"B"}`, []brain.Response{brain.Text("A")}},
		{"texts a string", `{"type":"text","texts":"Hello"}`, []brain.Response{brain.Text("Hello")}},
		{"texts of other things", `{"type":"text","texts":[1,null,"",{"a":1},"Hi"]}`, []brain.Response{brain.Text("Hi")}},
		{"texts empty, text given", `{"type":"text","texts":[],"text":"Hi"}`, []brain.Response{brain.Text("Hi")}},
		{"text with options", `{"type":"text","texts":["Pick"],"options":[{"label":"Yes","text":"yes please"},{"label":"No"},{"text":"maybe"},{},"x",{"label":3}]}`,
			[]brain.Response{{Type: "text", Text: "Pick", Options: []brain.Option{{Label: "Yes", Text: "yes please"}, {Label: "No", Text: "No"}, {Label: "maybe", Text: "maybe"}}}}},
		{"options not an array", `{"type":"text","text":"Hi","options":{"label":"a"}}`, []brain.Response{brain.Text("Hi")}},
		{"text without text", `{"type":"text","texts":[]}`, nil},
		{"text a number", `{"type":"text","text":5}`, nil},
		{"unicode and markup kept", `{"type":"text","text":"<b>Ναι</b> & 🙂"}`, []brain.Response{brain.Text("<b>Ναι</b> & 🙂")}},

		// media
		{"image", `{"type":"image","url":"` + img + `","name":"a.png","size":1024}`, []brain.Response{{Type: "image", URL: img, Name: "a.png", Size: 1024}}},
		{"video", `{"type":"video","url":"https://v.example.com/v.mp4"}`, []brain.Response{{Type: "video", URL: "https://v.example.com/v.mp4"}}},
		{"file", `{"type":"file","url":"http://f.example.com/x.pdf","name":"x.pdf","size":"2048"}`, []brain.Response{{Type: "file", URL: "http://f.example.com/x.pdf", Name: "x.pdf", Size: 2048}}},
		{"size fractional", `{"type":"file","url":"` + img + `","size":10.7}`, []brain.Response{{Type: "file", URL: img, Size: 10}}},
		{"size negative", `{"type":"file","url":"` + img + `","size":-5}`, []brain.Response{{Type: "file", URL: img}}},
		{"size huge", `{"type":"file","url":"` + img + `","size":1e400}`, []brain.Response{{Type: "file", URL: img, Size: 1<<63 - 1}}},
		{"size a bool", `{"type":"image","url":"` + img + `","size":true}`, []brain.Response{{Type: "image", URL: img}}},
		{"name a number", `{"type":"image","url":"` + img + `","name":7}`, []brain.Response{{Type: "image", URL: img}}},
		{"image without url", `{"type":"image","name":"a.png"}`, nil},
		{"image url not a string", `{"type":"image","url":["` + img + `"]}`, nil},
		{"image relative url", `{"type":"image","url":"/a.png"}`, nil},
		{"image javascript url", `{"type":"image","url":"javascript:alert(1)"}`, nil},
		{"image data url", `{"type":"image","url":"data:image/png;base64,AAAA"}`, nil},
		{"audio", `{"type":"audio","url":"https://a.example.com/a.ogg","name":"ignored"}`, []brain.Response{{Type: "audio", URL: "https://a.example.com/a.ogg"}}},
		{"audio without url", `{"type":"audio"}`, nil},

		// carousel
		{"carousel", `{"type":"carousel","cards":[{
			"title":"Shoes","subtitle":"Red","media":{"type":"image","url":"` + img + `"},
			"default_action":{"type":"url","url":"https://shop.example.com/shoes"},
			"buttons":[
				{"type":"url","label":"Buy","url":"https://shop.example.com/buy"},
				{"type":"postback","label":"More","value":"more shoes"},
				{"type":"phone","label":"Call","value":"+302100000000"},
				{"type":"webview","label":"Size guide","url":"https://shop.example.com/sizes"}
			],
			"extra":{"ignored":true}
		}]}`, []brain.Response{{Type: "carousel", Cards: []brain.Card{{
			Title: "Shoes", Subtitle: "Red",
			Media:         &brain.Media{Type: "image", URL: img},
			DefaultAction: &brain.Button{Type: "url", Label: "https://shop.example.com/shoes", URL: "https://shop.example.com/shoes"},
			Buttons: []brain.Button{
				{Type: "url", Label: "Buy", URL: "https://shop.example.com/buy"},
				{Type: "postback", Label: "More", Value: "more shoes"},
				{Type: "phone", Label: "Call", Value: "+302100000000"},
				{Type: "webview", Label: "Size guide", URL: "https://shop.example.com/sizes"},
			},
		}}}}},
		{"carousel lenient buttons", `{"type":"carousel","cards":[{"title":"T","buttons":[
				{"type":"url","label":"Open","value":"https://x.example.com"},
				{"type":"postback","label":"Only label"},
				{"type":"postback","value":"only value"},
				{"type":"phone","url":"tel:+30210"},
				{"label":"Guess link","url":"https://y.example.com"},
				{"label":"Guess postback","value":"pb"},
				{"type":"url","label":"Bad","url":"javascript:x"},
				{"type":"url","label":"None"},
				{"type":"postback"},
				{"type":"phone","label":"No number"},
				{"type":"share","label":"Unknown"},
				"not a button", 7, null
			]}]}`, []brain.Response{{Type: "carousel", Cards: []brain.Card{{
			Title: "T",
			Buttons: []brain.Button{
				{Type: "url", Label: "Open", URL: "https://x.example.com"},
				{Type: "postback", Label: "Only label", Value: "Only label"},
				{Type: "postback", Label: "only value", Value: "only value"},
				{Type: "phone", Label: "+30210", Value: "+30210"},
				{Type: "url", Label: "Guess link", URL: "https://y.example.com"},
				{Type: "postback", Label: "Guess postback", Value: "pb"},
			},
		}}}}},
		{"carousel media", `{"type":"carousel","cards":[
				{"title":"video","media":{"type":"video","url":"https://v.example.com/v.mp4"}},
				{"title":"no type","media":{"url":"` + img + `"}},
				{"title":"odd type","media":{"type":"gif","url":"` + img + `"}},
				{"title":"bad url","media":{"type":"image","url":"ftp://x/y"}},
				{"title":"media a string","media":"` + img + `"},
				{"title":"default link","default_action":"https://d.example.com"},
				{"title":"default bad","default_action":{"type":"url"}}
			]}`, []brain.Response{{Type: "carousel", Cards: []brain.Card{
			{Title: "video", Media: &brain.Media{Type: "video", URL: "https://v.example.com/v.mp4"}},
			{Title: "no type", Media: &brain.Media{Type: "image", URL: img}},
			{Title: "odd type", Media: &brain.Media{Type: "image", URL: img}},
			{Title: "bad url"},
			{Title: "media a string"},
			{Title: "default link", DefaultAction: &brain.Button{Type: "url", URL: "https://d.example.com"}},
			{Title: "default bad"},
		}}}},
		{"carousel skips empty cards", `{"type":"carousel","cards":[{},{"buttons":[{"type":"postback","value":"x"}]},"card",{"subtitle":"only subtitle"}]}`,
			[]brain.Response{{Type: "carousel", Cards: []brain.Card{{Subtitle: "only subtitle"}}}}},
		{"cards an object", `{"type":"carousel","cards":{"title":"T"}}`, nil},
		{"cards empty", `{"type":"carousel","cards":[]}`, nil},
		{"cards of nothing", `{"type":"carousel","cards":[{},null,1]}`, nil},

		// webview
		{"webview", `{"type":"webview","url":"https://w.example.com/form","name":"Form","label":"Fill in","height":"tall"}`,
			[]brain.Response{{Type: "webview", URL: "https://w.example.com/form", Name: "Form", Label: "Fill in", Height: "tall"}}},
		{"webview label from name", `{"type":"webview","url":"https://w.example.com","name":"Form","height":50}`,
			[]brain.Response{{Type: "webview", URL: "https://w.example.com", Name: "Form", Label: "Form"}}},
		{"webview without url", `{"type":"webview","name":"Form","label":"Go"}`, nil},

		// handover, pause
		{"handover", `{"type":"handover","desk_id":"d1"}`, []brain.Response{{Type: "handover"}}},
		{"pause", `{"type":"pause","duration":1500,"show_typing":true}`, []brain.Response{{Type: "pause", Duration: 1500, ShowTyping: true}}},
		{"pause no typing", `{"type":"pause","duration":"800"}`, []brain.Response{{Type: "pause", Duration: 800}}},
		{"pause typing not a bool", `{"type":"pause","duration":800,"show_typing":"yes"}`, []brain.Response{{Type: "pause", Duration: 800}}},
		{"pause negative", `{"type":"pause","duration":-3}`, []brain.Response{{Type: "pause", Duration: 0}}},
		{"pause huge", `{"type":"pause","duration":99999999999999999999999}`, []brain.Response{{Type: "pause", Duration: 1<<31 - 1}}},
		{"pause without duration", `{"type":"pause","show_typing":true}`, nil},
		{"pause duration not a number", `{"type":"pause","duration":"soon"}`, nil},
		{"pause duration NaN", `{"type":"pause","duration":"NaN"}`, nil},

		// anything else
		{"unknown type", `{"type":"quick_replies","texts":["x"]}`, nil},
		{"no type", `{"texts":["x"]}`, nil},
		{"type a number", `{"type":1}`, nil},
		{"type in capitals", `{"type":"TEXT","text":"x"}`, nil},
		{"not an object", `"text"`, nil},
		{"null", `null`, nil},
		{"array", `[{"type":"text","text":"x"}]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := `{"responses":[` + tt.action + `]}`
			a, err := moveo.Convert([]byte(body))
			if err != nil {
				t.Fatalf("Convert(%s): %v", body, err)
			}
			if !reflect.DeepEqual(a.Responses, tt.want) {
				got, _ := json.Marshal(a.Responses)
				want, _ := json.Marshal(tt.want)
				t.Errorf("Convert(%s)\n got %s\nwant %s", body, got, want)
			}
			if a.Handover != (tt.name == "handover") {
				t.Errorf("Handover = %v", a.Handover)
			}
		})
	}
}

// One odd action does not spoil the rest of an answer.
func TestConvertKeepsTheRest(t *testing.T) {
	t.Parallel()
	a, err := moveo.Convert([]byte(`{"responses":[
		{"type":"text","text":"one"},
		{"type":"image"},
		{"type":"mystery","payload":{"deep":[1,2,3]}},
		{"type":"text","text":"two"}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []brain.Response{brain.Text("one"), brain.Text("two")}; !reflect.DeepEqual(a.Responses, want) {
		t.Errorf("responses = %#v, want %#v", a.Responses, want)
	}
}

func TestConvertTextVariants(t *testing.T) {
	t.Parallel()
	variants := []string{"Hi!", "Hello!", "Hey!"}
	body := `{"responses":[{"type":"text","texts":["Hi!","Hello!","Hey!"]}]}`
	seen := map[string]bool{}
	for range 300 {
		a, err := moveo.Convert([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Responses) != 1 || !slices.Contains(variants, a.Responses[0].Text) {
			t.Fatalf("responses = %#v, want one of %q", a.Responses, variants)
		}
		seen[a.Responses[0].Text] = true
	}
	if len(seen) != len(variants) {
		t.Errorf("300 picks saw only %v of %q", seen, variants)
	}
}

func TestConvertAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body    string
		wantOut map[string]any
		wantErr string
	}{
		{body: `{}`},
		{body: `{"output":null,"responses":null}`},
		{body: `{"responses":[]}`},
		{body: ` {"output":{}} `, wantOut: map[string]any{}},
		{body: `{"output":{"n":1.50,"big":12345678901234567890,"list":[1,"a"],"obj":{"x":null},"gone":null,"user":{"email":"a@b.c"}}}`,
			wantOut: map[string]any{
				"n": json.Number("1.50"), "big": json.Number("12345678901234567890"),
				"list": []any{json.Number("1"), "a"}, "obj": map[string]any{"x": nil}, "gone": nil,
				"user": map[string]any{"email": "a@b.c"},
			}},
		{body: `{"output":{"tags":"vip"}}`, wantErr: "context.tags"},
		{body: `{"output":{"global":{"disclaimer_accepted":"yes"}}}`, wantErr: "disclaimer_accepted"},
		{body: `{"output":[1]}`, wantErr: "output must be an object"},
		{body: `{"output":"x"}`, wantErr: "output must be an object"},
		{body: `{"output":{"x":"` + strings.Repeat("a", 300<<10) + `"}}`, wantErr: "output is longer"},
		{body: `{"responses":"text"}`, wantErr: "responses must be an array"},
		{body: `{"responses":{"type":"text"}}`, wantErr: "responses must be an array"},
		{body: `{"responses":5}`, wantErr: "responses must be an array"},
		{body: `{"output":{"x":"\u0000"}}`, wantErr: "U+0000"},
		{body: "{\"output\":{\"x\":\"\xc3\x28\"}}", wantErr: "UTF-8"},
		{body: strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40), wantErr: "deeper"},
		{body: ``, wantErr: "not a JSON object"},
		{body: `null`, wantErr: "not a JSON object"},
		{body: `"x"`, wantErr: "not a JSON object"},
		{body: `{"a":1}}`, wantErr: "not a JSON object"},
		{body: `{"a":1,}`, wantErr: "not a JSON object"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			a, err := moveo.Convert([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Convert(%.80s) error = %v, want one saying %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Convert(%.80s): %v", tt.body, err)
			}
			if !reflect.DeepEqual(a.Output, tt.wantOut) {
				t.Errorf("Convert(%.80s) output = %#v, want %#v", tt.body, a.Output, tt.wantOut)
			}
		})
	}
}

func ExampleConvert() {
	a, err := moveo.Convert([]byte(`{
		"output": {"order_status": "shipped"},
		"responses": [
			{"type": "text", "texts": ["Your order is on its way."], "options": [{"label": "Track it", "text": "track"}]},
			{"type": "pause", "duration": 1000, "show_typing": true},
			{"type": "image", "url": "https://cdn.example.com/parcel.png"},
			{"type": "handover"}
		]
	}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Output["order_status"], a.Handover)
	fmt.Println(string(brain.EncodeResponses(a.Responses)))
	// Output:
	// shipped true
	// [{"type":"text","text":"Your order is on its way.","options":[{"label":"Track it","text":"track"}]},{"type":"pause","duration":1000,"show_typing":true},{"type":"image","url":"https://cdn.example.com/parcel.png"},{"type":"handover"}]
}

func BenchmarkConvert(b *testing.B) {
	// A typical answer, and the worst a webhook may send: MaxAnswerBytes of carousel buttons.
	typical := []byte(`{"output":{"order_status":"shipped","user":{"display_name":"Ana"}},"responses":[` +
		`{"type":"text","texts":["Your order is on its way.","It has shipped."]},` +
		`{"type":"carousel","cards":[{"title":"Parcel","media":{"type":"image","url":"https://cdn.example.com/p.png"},` +
		`"buttons":[{"type":"url","label":"Track","url":"https://track.example.com/1"}]}]}]}`)
	button := `{"type":"url","label":"x","url":"https://example.com/a"},`
	var sb strings.Builder
	sb.WriteString(`{"responses":[{"type":"carousel","cards":[{"title":"t","buttons":[`)
	for sb.Len()+len(button) < moveo.MaxAnswerBytes-100 {
		sb.WriteString(button)
	}
	worst := []byte(strings.TrimSuffix(sb.String(), ",") + `]}]}]}`)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"typical", typical}, {"1MiB", worst}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, err := moveo.Convert(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCaps: an answer that floods is cut to what a reply can hold; a handover past the cap
// still hands over.
func TestCaps(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"responses":[`)
	for i := range 80 {
		fmt.Fprintf(&b, `{"type":"text","text":"t%d","options":[`, i)
		for j := range 30 {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"label":"o%d"}`, j)
		}
		b.WriteString(`]},`)
	}
	b.WriteString(`{"type":"carousel","cards":[`)
	for i := range 30 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"title":"c%d","buttons":[`, i)
		for j := range 15 {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"type":"postback","label":"b%d","value":"v"}`, j)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]},{"type":"handover"}]}`)
	a, err := moveo.Convert([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Responses) != 50+1 || a.Responses[50].Type != "handover" || !a.Handover {
		t.Fatalf("%d responses, the last %q", len(a.Responses), a.Responses[len(a.Responses)-1].Type)
	}
	if n := len(a.Responses[0].Options); n != 20 {
		t.Errorf("%d options, want %d", n, 20)
	}
	a, _ = moveo.Convert([]byte(`{"responses":[` + b.String()[strings.Index(b.String(), `{"type":"carousel"`):]))
	if c := a.Responses[0]; len(c.Cards) != 20 || len(c.Cards[0].Buttons) != 10 {
		t.Errorf("%d cards of %d buttons, want %d of %d", len(c.Cards), len(c.Cards[0].Buttons), 20, 10)
	}
}
