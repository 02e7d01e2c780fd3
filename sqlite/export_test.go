package sqlite

import "time"

// SetDueTTL sets how long db's claims may reuse their summary of due work.
func SetDueTTL(db *DB, d time.Duration) {
	db.due.mu.Lock()
	db.due.ttl = d
	db.due.mu.Unlock()
}

// DueQueries returns how many summaries of due work db's claims have read from
// the database.
func DueQueries(db *DB) int64 { return db.due.queries.Load() }

// DueReads returns how many times db's claims have read an endpoint's due
// deliveries from the database.
func DueReads(db *DB) int64 { return db.due.reads.Load() }

// ReadAhead returns for how many endpoints db's claims keep due deliveries
// read ahead.
func ReadAhead(db *DB) int {
	db.due.mu.Lock()
	defer db.due.mu.Unlock()
	return len(db.due.ahead)
}

// KeyReads returns how many times db's APIKeyByHash has read a key from the
// database.
func KeyReads(db *DB) int64 { return db.keys.reads.Load() }

// OnKeyRead makes db's APIKeyByHash call fn between its read of a key and its
// caching of it.
func OnKeyRead(db *DB, fn func()) { db.keys.read = fn }
