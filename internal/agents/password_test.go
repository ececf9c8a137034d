package agents

import (
	"strings"
	"testing"
	"time"
)

func TestPassword(t *testing.T) {
	h := HashPassword("correct horse battery staple")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string with the documented cost", h)
	}
	if h == HashPassword("correct horse battery staple") {
		t.Error("two hashes of one password are equal: no salt")
	}
	if !VerifyPassword(h, "correct horse battery staple") {
		t.Error("the password does not verify against its hash")
	}
	for _, tc := range []struct{ name, hash, password string }{
		{"wrong password", h, "correct horse battery stapl"},
		{"empty password", h, ""},
		{"no hash", "", ""},
		{"another scheme", "$2a$10$abcdefghijklmnopqrstuu", "x"},
		{"tampered cost", strings.Replace(h, "m=19456", "m=4194304", 1), "correct horse battery staple"},
		{"truncated", h[:len(h)-10], "correct horse battery staple"},
	} {
		if VerifyPassword(tc.hash, tc.password) {
			t.Errorf("%s: verified", tc.name)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(3, time.Minute)
	now := time.Unix(1_000_000, 0)
	for i := range 3 {
		if wait := l.blocked("k", now); wait != 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		l.fail("k", now)
	}
	if wait := l.blocked("k", now.Add(10*time.Second)); wait != 50*time.Second {
		t.Errorf("after 3 failures: blocked for %v, want 50s", wait)
	}
	if wait := l.blocked("other", now); wait != 0 {
		t.Errorf("another key is blocked for %v", wait)
	}
	if wait := l.blocked("k", now.Add(time.Minute)); wait != 0 {
		t.Errorf("blocked for %v after the window", wait)
	}
	l.fail("k", now.Add(time.Minute))
	if wait := l.blocked("k", now.Add(time.Minute)); wait != 0 {
		t.Errorf("one failure in a new window blocks for %v", wait)
	}
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		HashPassword("correct horse battery staple")
	}
}
