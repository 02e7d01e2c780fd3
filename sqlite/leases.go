package sqlite

import (
	"sync"

	"github.com/hookd/hookd"
)

// leases holds the store's delivery leases in memory. The embedded store
// serves one process, and every lease ends with it (Open releases all), so a
// lease need not be written: claiming costs no write and no wait for the
// writer. Recording an outcome or releasing a delivery checks the lease here
// when its write runs, and ends it once that write is committed.
type leases struct {
	mu   sync.Mutex
	seqs map[int64]*memLease  // by delivery seq
	ids  map[string]*memLease // by delivery id, once the claim is loaded
}

type memLease struct {
	seq      int64
	id       string // "" until the claim is loaded
	org      string // "" until the claim is loaded
	endpoint string
	lease    string
	until    int64 // µs
}

func newLeases() *leases {
	return &leases{seqs: map[int64]*memLease{}, ids: map[string]*memLease{}}
}

// live returns, per endpoint, the seqs of its deliveries leased at now; it
// forgets leases that have run out.
func (l *leases) live(now int64) map[string][]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]int64{}
	for seq, m := range l.seqs {
		if m.until <= now {
			l.dropLocked(seq, m)
			continue
		}
		out[m.endpoint] = append(out[m.endpoint], seq)
	}
	return out
}

// has reports whether delivery seq holds a lease, live or run out (as the
// lease column it replaces did).
func (l *leases) has(seq int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seqs[seq] != nil
}

// leasedID reports whether the delivery with this id is leased at now.
func (l *leases) leasedID(id string, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.ids[id]
	return m != nil && m.until > now
}

// take leases each chosen delivery that no live lease holds and returns their
// seqs, in the order given.
func (l *leases) take(chosen []chosenDelivery, lease string, until, now int64) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int64
	for _, c := range chosen {
		if m := l.seqs[c.seq]; m != nil {
			if m.until > now {
				continue
			}
			l.dropLocked(c.seq, m)
		}
		l.seqs[c.seq] = &memLease{seq: c.seq, endpoint: c.endpoint, lease: lease, until: until}
		out = append(out, c.seq)
	}
	return out
}

// loaded notes the id and organization of each leased delivery that was
// loaded, and ends the leases of those that were not (gone, or no longer due,
// since they were chosen) unless keep holds them.
func (l *leases) loaded(seqs []int64, found map[int64]*hookd.Delivery, keep map[int64]bool, lease string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, seq := range seqs {
		m := l.seqs[seq]
		if m == nil || m.lease != lease {
			continue
		}
		d, ok := found[seq]
		if !ok {
			if !keep[seq] {
				l.dropLocked(seq, m)
			}
			continue
		}
		m.id, m.org = d.ID, d.OrgID
		l.ids[d.ID] = m
	}
}

// holds returns the lease of the delivery with this id, if lease is its lease.
// Like the lease column it replaces, a lease that ran out still holds
// until another claim takes the delivery.
func (l *leases) holds(id, lease string) (memLease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.ids[id]
	if m == nil || m.lease != lease {
		return memLease{}, false
	}
	return *m, true
}

// holdsSeq reports whether lease is the lease of delivery seq.
func (l *leases) holdsSeq(seq int64, lease string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.seqs[seq]
	return m != nil && m.lease == lease
}

// end ends the lease of each delivery (by id) if it is still the given one.
func (l *leases) end(ids []string, lease func(i int) string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, id := range ids {
		if m := l.ids[id]; m != nil && m.lease == lease(i) {
			l.dropLocked(m.seq, m)
		}
	}
}

// endSeqs ends the given lease of deliveries by seq.
func (l *leases) endSeqs(seqs []int64, lease string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, seq := range seqs {
		if m := l.seqs[seq]; m != nil && m.lease == lease {
			l.dropLocked(seq, m)
		}
	}
}

func (l *leases) dropLocked(seq int64, m *memLease) {
	delete(l.seqs, seq)
	if m.id != "" && l.ids[m.id] == m {
		delete(l.ids, m.id)
	}
}
