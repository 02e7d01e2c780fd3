package cursor_test

import (
	"testing"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/cursor"
)

func TestRoundTrip(t *testing.T) {
	for _, seq := range []int64{1, 42, 1<<63 - 1} {
		got, err := cursor.Decode(cursor.Encode(seq))
		if err != nil || got != seq {
			t.Errorf("Decode(Encode(%d)) = %d, %v", seq, got, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, c := range []string{"!", "MA", "LTE", "YWJj", cursor.Encode(0) + "x"} { // "0", "-1", "abc"
		if _, err := cursor.Decode(c); hookd.ErrorCode(err) != hookd.EINVALID {
			t.Errorf("Decode(%q) error %v, want %s", c, err, hookd.EINVALID)
		}
	}
}

func TestFirstPages(t *testing.T) {
	if n, err := cursor.Decode(""); n != 0 || err != nil {
		t.Errorf(`Decode("") = %d, %v`, n, err)
	}
	if n, err := cursor.DecodeBefore(""); n != 1<<63-1 || err != nil {
		t.Errorf(`DecodeBefore("") = %d, %v`, n, err)
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{0, hookd.DefaultPageLimit}, {-3, hookd.DefaultPageLimit}, {1, 1}, {hookd.MaxPageLimit, hookd.MaxPageLimit},
		{hookd.MaxPageLimit + 1, hookd.MaxPageLimit},
	} {
		if got := cursor.Limit(hookd.Page{Limit: tc.in}); got != tc.want {
			t.Errorf("Limit(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
