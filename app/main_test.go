package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
)

// childDataDirEnv, when set, makes the test binary run a hookd on that data
// directory instead of the tests (see startChild).
const childDataDirEnv = "HOOKD_E2E_CHILD_DATA_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDataDirEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	untrust, err := hookdtest.TrustTLSReceivers()
	if err != nil {
		fmt.Fprintln(os.Stderr, "trust TLS receivers:", err)
		os.Exit(1)
	}
	code := m.Run()
	untrust()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// runChild runs a hookd on dir, prints "addr <host:port>" on stdout and serves
// until stdin closes (or the process is killed).
func runChild(dir string) int {
	cfg := hookdtest.Config(dir)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	a, err := app.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := a.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("addr %s\n", a.Addr())
	io.Copy(io.Discard, os.Stdin)
	if err := a.Stop(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// env is a running hookd with one organization.
type env struct {
	h   *hookdtest.Hookd
	org string // organization id
	key string // the organization's API key
}

// setup starts hookd (configured by configure) and creates an organization.
func setup(t *testing.T, configure ...func(*app.Config)) env {
	t.Helper()
	h := hookdtest.Start(t, configure...)
	org, key := h.CreateOrg(t)
	return env{h: h, org: org, key: key}
}

// endpoint creates an endpoint at url subscribed to every event, with the
// fields of extra added or overriding.
func (e env) endpoint(t *testing.T, url string, extra map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"url": url, "events": []string{"*"}}
	maps.Copy(body, extra)
	return e.h.CreateEndpoint(t, e.key, body)
}

// publish publishes an event of type typ with data and returns the answer.
func (e env) publish(t *testing.T, id, typ string, data any) map[string]any {
	t.Helper()
	body := map[string]any{"type": typ, "data": data}
	if id != "" {
		body["id"] = id
	}
	return e.h.Publish(t, e.key, body)
}

// envelope is the default delivery body.
type envelope struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Timestamp    string          `json:"timestamp"`
	Organization string          `json:"organization"`
	Data         json.RawMessage `json:"data"`
}

// decodeEnvelope decodes a delivery body, failing on any field outside SPEC's five.
func decodeEnvelope(t *testing.T, body []byte) envelope {
	t.Helper()
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		t.Fatalf("delivery body %q is not a JSON object: %v", body, err)
	}
	got := slices.Sorted(maps.Keys(keys))
	want := []string{"data", "id", "organization", "timestamp", "type"}
	if !slices.Equal(got, want) {
		t.Errorf("envelope keys = %v, want %v", got, want)
	}
	var ev envelope
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("decode envelope %q: %v", body, err)
	}
	if _, err := time.Parse(time.RFC3339, ev.Timestamp); err != nil || !strings.HasSuffix(ev.Timestamp, "Z") {
		t.Errorf("envelope timestamp %q is not RFC 3339 UTC", ev.Timestamp)
	}
	return ev
}

// str returns m[k] as a string ("" if it is not one).
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// num returns m[k] as a number (-1 if it is not one).
func num(m map[string]any, k string) float64 {
	if f, ok := m[k].(float64); ok {
		return f
	}
	return -1
}

// obj returns m[k] as an object (nil if it is not one).
func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

// attempts returns a delivery's "attempts" array.
func attempts(d map[string]any) []map[string]any {
	return hookdtest.Items(map[string]any{"data": d["attempts"]})
}

// errorCode returns the code of an error answer.
func errorCode(m map[string]any) string { return str(obj(m, "error"), "code") }

// errorField returns the field named by an invalid_field answer: its "field",
// or else its message.
func errorField(m map[string]any) string {
	e := obj(m, "error")
	if f := str(e, "field"); f != "" {
		return f
	}
	return str(e, "message")
}
