package httpapi

import (
	"reflect"
	"testing"
)

// TestMayFoldCase: the cheap pre-check never says "no folded key" for a body
// in which the full check (unknownField) finds one, and lets the usual bodies
// through without the full check.
func TestMayFoldCase(t *testing.T) {
	t.Parallel()
	type retry struct {
		Max *int `json:"max_attempts"`
	}
	type req struct {
		Type  *string `json:"type"`
		Data  []byte  `json:"data"`
		Retry *retry  `json:"retry"`
	}
	rt := reflect.TypeFor[*req]()
	tests := []struct {
		body string
		want bool // may a key have been folded?
	}{
		{`{"type":"a.b","data":{"n":1}}`, false},
		{`{"type":"a.b","retry":{"max_attempts":3}}`, false},
		{`{"Type":"a.b"}`, true},
		{`{"type":"a.b","retry":{"MAX_ATTEMPTS":3}}`, true},
		{`{"type":"a.b","data":{"TYPE":1}}`, true},           // in the data: the full check clears it
		{`{"type":"a.b","data":{"note":"caf\u00e9"}}`, true}, // escapes: not judged cheaply
		{"{\"type\":\"a.b\",\"data\":\"é\"}", true},          // non-ASCII: not judged cheaply
		{`{"type":"TYPE"}`, true},
		{`{"types":"x"}`, false}, // not a field name at all: encoding/json already refused it
	}
	for _, tt := range tests {
		got := mayFoldCase([]byte(tt.body), rt)
		if got != tt.want {
			t.Errorf("mayFoldCase(%s) = %v, want %v", tt.body, got, tt.want)
		}
		if f := unknownField([]byte(tt.body), rt, ""); !got && containsFold(jsonNames(rt), f) {
			t.Errorf("mayFoldCase(%s) = false, but unknownField finds %q", tt.body, unknownField([]byte(tt.body), rt, ""))
		}
	}
}

// FuzzMayFoldCase: whenever unknownField finds a key that differs from a field
// only in case, mayFoldCase reports that one may be there.
func FuzzMayFoldCase(f *testing.F) {
	for _, s := range []string{`{"type":"a"}`, `{"Type":"a"}`, `{"retry":{"Max_attempts":1}}`, `{"tYpe":1,"data":[]}`} {
		f.Add(s)
	}
	type retry struct {
		Max *int `json:"max_attempts"`
	}
	type req struct {
		Type  *string `json:"type"`
		Retry *retry  `json:"retry"`
	}
	rt := reflect.TypeFor[*req]()
	f.Fuzz(func(t *testing.T, body string) {
		if field := unknownField([]byte(body), rt, ""); field != "" && !mayFoldCase([]byte(body), rt) {
			// unknownField also reports keys no field matches at all; those
			// never reach it here (DisallowUnknownFields refused them), so only
			// a key that folds onto a field counts.
			if known := jsonNames(rt); containsFold(known, field) {
				t.Errorf("mayFoldCase(%q) = false, but unknownField finds %q", body, field)
			}
		}
	})
}

// containsFold reports whether the last part of the field path equals a name
// without regard to case.
func containsFold(names []string, path string) bool {
	last := path
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			last = path[i+1:]
			break
		}
	}
	for _, n := range names {
		if len(n) == len(last) && n != last && equalFoldASCII(n, last) {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
