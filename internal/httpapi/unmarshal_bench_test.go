package httpapi

import "testing"

func BenchmarkUnmarshalMessage(b *testing.B) {
	body := []byte(`{"input":{"text":"hello there, I would like to know where my order is"}}`)
	for b.Loop() {
		var req messageRequest
		if err := Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}
