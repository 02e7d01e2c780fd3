// Package hookd is the domain of the hookd webhook gateway: organizations, API keys,
// endpoints (webhook subscriptions), events, deliveries and attempts, the rules that
// govern them (event-type matching, retry schedules, validation) and the Store
// interface that every storage backend implements.
//
// The package imports only the standard library. Adapters live in subpackages named
// for what they adapt: sqlite (the embedded store), httpapi (the REST API), delivery
// (the engine that sends webhooks), signature (signing schemes), netguard (SSRF
// protection) and secret (sealing secrets, hashing keys). The app package wires them
// together and cmd/hookd runs it.
package hookd
