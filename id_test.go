package parley_test

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley"
)

func TestNewIDIsCanonicalAndParses(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		for _, id := range []string{parley.NewID(), parley.NewRandomID()} {
			got, ok := parley.ParseID(id)
			if !ok || got != id {
				t.Fatalf("ParseID(%q) = %q, %v", id, got, ok)
			}
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
		}
	}
	if v := parley.NewID()[14]; v != '7' {
		t.Errorf("NewID version nibble = %c, want 7", v)
	}
	if v := parley.NewRandomID()[14]; v != '4' {
		t.Errorf("NewRandomID version nibble = %c, want 4", v)
	}
}

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"660e8400-e29b-41d4-a716-446655440001", "660e8400-e29b-41d4-a716-446655440001", true},
		{"660E8400-E29B-41D4-A716-446655440001", "660e8400-e29b-41d4-a716-446655440001", true},
		{"{660e8400-e29b-41d4-a716-446655440001}", "", false},
		{"660e8400e29b41d4a716446655440001", "", false},
		{"660e8400-e29b-41d4-a716-44665544000g", "", false},
		{"660e8400-e29b-41d4-a716_446655440001", "", false},
		{"", "", false},
		{strings.Repeat("a", 36), "", false},
	} {
		got, ok := parley.ParseID(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
