// Package cursor is the opaque page cursor of hookd's stores: the sequence number
// of the last row of a page, base64url-encoded, and the page size rules that go
// with it.
package cursor

import (
	"encoding/base64"
	"strconv"

	"github.com/hookd/hookd"
)

// Encode returns the cursor of a page whose last row has sequence number seq.
func Encode(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

// Decode returns the sequence number in c, 0 for "" (the first page of an
// oldest-first list). A cursor this package did not make is an EINVALID error.
func Decode(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		var n int64
		if n, err = strconv.ParseInt(string(b), 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, hookd.FieldError("cursor", "is not a cursor returned by this list")
}

// DecodeBefore reads the cursor of a newest-first list: the sequence number its
// next page starts below (every one, for the first page).
func DecodeBefore(c string) (int64, error) {
	before, err := Decode(c)
	if before == 0 && err == nil {
		before = 1<<63 - 1
	}
	return before, err
}

// Limit returns the page size p asks for, within hookd's bounds.
func Limit(p hookd.Page) int {
	switch {
	case p.Limit <= 0:
		return hookd.DefaultPageLimit
	case p.Limit > hookd.MaxPageLimit:
		return hookd.MaxPageLimit
	}
	return p.Limit
}
