package hookd_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/hookd/hookd"
)

// refValidType is an independent reading of an event type (SPEC §1, §3): 1–128
// characters, dot-separated non-empty words of A–Z a–z 0–9 _ - :.
func refValidType(t string) bool {
	if t == "" || len(t) > hookd.MaxEventTypeLength {
		return false
	}
	for _, w := range strings.Split(t, ".") {
		if w == "" {
			return false
		}
		for _, c := range []byte(w) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == ':') {
				return false
			}
		}
	}
	return true
}

// refValidPattern: "*", an event type, or an event type followed by ".*" —
// as long as an event type (at most 128 characters), so that it can match one.
func refValidPattern(p string) bool {
	if p == "*" {
		return true
	}
	if len(p) > hookd.MaxEventTypeLength {
		return false
	}
	prefix, ok := strings.CutSuffix(p, ".*")
	if !ok {
		return refValidType(p)
	}
	return refValidType(prefix)
}

// refMatch matches by words: "*" matches all; "w1.….wn.*" matches a type
// whose first n words are w1…wn and that has at least one more; any other
// pattern matches the type equal to it.
func refMatch(pattern, typ string) bool {
	if pattern == "*" {
		return true
	}
	pw, tw := strings.Split(pattern, "."), strings.Split(typ, ".")
	if pw[len(pw)-1] == "*" {
		prefix := pw[:len(pw)-1]
		return len(tw) > len(prefix) && slices.Equal(tw[:len(prefix)], prefix)
	}
	return slices.Equal(pw, tw)
}

// witness returns a valid event type that the valid pattern p must match.
func witness(p string) string {
	switch {
	case p == "*":
		return "x"
	case strings.HasSuffix(p, ".*"):
		return strings.TrimSuffix(p, "*") + "x"
	default:
		return p
	}
}

// FuzzMatchEventType checks MatchEventType, ValidateEventType and
// ValidateEventPattern against the reference implementations above: they
// never panic; validation agrees with the reference; a valid type is a valid
// pattern and matches itself; "*" matches every valid type; on valid patterns
// and types matching agrees with the word-by-word reference; a pattern that
// validation refuses matches no valid type; and every valid pattern matches
// at least one valid type (a pattern that can match nothing must not be
// accepted). Endpoint.Subscribes is the OR of its patterns.
func FuzzMatchEventType(f *testing.F) {
	long := strings.Repeat("a", hookd.MaxEventTypeLength)
	for _, seed := range [][2]string{
		{"*", "invoice.paid"}, {"invoice.paid", "invoice.paid"}, {"invoice.*", "invoice.paid"},
		{"invoice.*", "invoice"}, {"invoice.*", "invoices.paid"}, {"invoice.*", "invoice.item.created"},
		{"workflow.item.*", "workflow.item.resolved"}, {"a.*", "a."}, {"a.*.*", "a.b.c"}, {"*.*", "a.b"},
		{".*", ".a"}, {"a..*", "a..b"}, {"**", "**"}, {"a*", "ab"}, {"", ""}, {"a:b-c_d", "a:b-c_d"},
		{"usage_threshold", "usage_threshold"}, {"é.*", "é.x"}, {"a.b", "A.B"},
		{long, long}, {long + ".*", long + ".x"}, {long[2:] + ".*", long[2:] + ".x"},
		{long[1:] + ".*", long[1:] + ".x"}, {long[:126] + ".*", long[:126] + ".x"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, typ string) {
		pOK := hookd.ValidateEventPattern(pattern) == nil
		if want := refValidPattern(pattern); pOK != want {
			t.Fatalf("ValidateEventPattern(%q) ok = %v, want %v", pattern, pOK, want)
		}
		// Types derived from the pattern make matches likely.
		types := []string{typ, pattern, witness(pattern)}
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
			types = append(types, prefix+typ, prefix)
		}
		for _, ty := range types {
			tOK := hookd.ValidateEventType(ty) == nil
			if want := refValidType(ty); tOK != want {
				t.Fatalf("ValidateEventType(%q) ok = %v, want %v", ty, tOK, want)
			}
			got := hookd.MatchEventType(pattern, ty)
			if !tOK {
				continue
			}
			if hookd.ValidateEventPattern(ty) != nil {
				t.Fatalf("ValidateEventPattern(%q) refuses a valid event type", ty)
			}
			if !hookd.MatchEventType(ty, ty) {
				t.Fatalf("MatchEventType(%q, %q) = false, want true (a pattern without wildcard matches itself)", ty, ty)
			}
			if !hookd.MatchEventType("*", ty) {
				t.Fatalf("MatchEventType(%q, %q) = false, want true", "*", ty)
			}
			switch {
			case pOK && got != refMatch(pattern, ty):
				t.Fatalf("MatchEventType(%q, %q) = %v, want %v", pattern, ty, got, !got)
			case !pOK && got:
				t.Fatalf("MatchEventType(%q, %q) = true, but ValidateEventPattern refuses %q", pattern, ty, pattern)
			}
			ep := hookd.Endpoint{Events: []string{"never.sent", pattern}}
			if ep.Subscribes(ty) != got {
				t.Fatalf("Endpoint{Events: %q}.Subscribes(%q) = %v, want %v", ep.Events, ty, !got, got)
			}
		}
		if pOK {
			w := witness(pattern)
			if hookd.ValidateEventType(w) != nil || !hookd.MatchEventType(pattern, w) {
				t.Fatalf("ValidateEventPattern(%q) accepts a pattern that matches no valid event type (not even %q)", pattern, w)
			}
		}
	})
}
