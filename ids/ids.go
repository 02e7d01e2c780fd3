// Package ids makes hookd's identifiers: a type prefix and a time-sortable ULID body,
// such as "evt_01JD3V6Q3ZJ9W8T2N4X5Y6Z7AB".
package ids

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

var (
	mu      sync.Mutex
	entropy = ulid.Monotonic(rand.Reader, 0)
)

// New returns prefix + "_" + a new ULID. IDs made by one process sort in the order
// they were made. Safe for concurrent use.
func New(prefix string) string {
	return NewAt(prefix, time.Now())
}

// NewAt is New with the ULID's time taken from t.
func NewAt(prefix string, t time.Time) string {
	mu.Lock()
	id := ulid.MustNew(ulid.Timestamp(t), entropy)
	mu.Unlock()
	return prefix + "_" + id.String()
}
