package app_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/hookdtest"
	"github.com/hookd/hookd/signature"
)

// runPartnerScript runs a partner client written in another language with the
// API's URL, the partner's key and secret in HOOKD_URL, HOOKD_API_KEY and
// HOOKD_SECRET. The script prints the answer's status code on its first line
// and its body on the rest; runPartnerScript returns both.
func runPartnerScript(t *testing.T, p hookdtest.Partner, base string, name string, args ...string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "HOOKD_URL="+base, "HOOKD_API_KEY="+p.APIKey, "HOOKD_SECRET="+p.Secret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s client: %v\nstdout: %s\nstderr: %s", name, err, stdout.Bytes(), stderr.Bytes())
	}
	first, rest, _ := strings.Cut(stdout.String(), "\n")
	status, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("%s client printed %q, want a status code first (stderr: %s)", name, stdout.Bytes(), stderr.Bytes())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(rest), &m); err != nil {
		t.Errorf("%s client: answer %q is not a JSON object", name, rest)
	}
	return status, m
}

// bashClient follows SPEC §6 with curl and openssl, as a partner's shell script would.
const bashClient = `set -euo pipefail
ts=$(date +%s)
body='{"id":"bash-1","type":"order.created","data":{"amount":42,"note":"café ✓ from bash","items":[1,2]}}'
sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$HOOKD_SECRET" | awk '{print $NF}')
curl -sS -w '%{http_code}\n' -o answer.json -X POST "$HOOKD_URL/api/webhooks/events" \
  -H "x-api-key: $HOOKD_API_KEY" \
  -H "x-timestamp: $ts" \
  -H "x-webhook-signature: sha256=$sig" \
  -H 'Content-Type: application/json' \
  --data-binary "$body"
cat answer.json
`

// nodeClient follows SPEC §6 with Node's crypto and http modules.
const nodeClient = `
const crypto = require('crypto');
const http = require('http');
const body = JSON.stringify({id: 'node-1', type: 'order.created', data: {amount: 7, note: 'café ✓ from node', nested: {ok: true}}});
const ts = Math.floor(Date.now() / 1000).toString();
const sig = 'sha256=' + crypto.createHmac('sha256', process.env.HOOKD_SECRET).update(ts + '.' + body).digest('hex');
const req = http.request(process.env.HOOKD_URL + '/api/webhooks/events', {
  method: 'POST',
  agent: false,
  headers: {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-api-key': process.env.HOOKD_API_KEY,
    'x-timestamp': ts,
    'x-webhook-signature': sig,
  },
}, (res) => {
  let answer = '';
  res.setEncoding('utf8');
  res.on('data', (c) => { answer += c; });
  res.on('end', () => { process.stdout.write(res.statusCode + '\n' + answer); });
});
req.on('error', (e) => { console.error(e); process.exit(1); });
req.end(body);
`

// TestInboundClients sends events the way partners would, from bash (curl and
// openssl), Go (crypto/hmac) and Node, and checks that each reaches the
// subscribed receiver as the organization's event.
func TestInboundClients(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	ep := e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.created"}})
	p := e.partner(t, nil)
	base := e.h.URL()

	var mu sync.Mutex
	sent := map[string]any{} // partner event id → its data
	accepted := func(t *testing.T, client string, status int, m map[string]any, id string, data any) {
		t.Helper()
		if status != http.StatusAccepted || str(m, "eventId") != id || str(m, "status") != "queued" || str(m, "receivedAt") == "" {
			t.Errorf("%s client: answer %d %v, want 202 {eventId: %s, status: queued, receivedAt}", client, status, m, id)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		sent[id] = data
	}
	t.Run("clients", func(t *testing.T) {
		t.Run("bash", func(t *testing.T) {
			t.Parallel()
			for _, tool := range []string{"bash", "curl", "openssl"} {
				if _, err := exec.LookPath(tool); err != nil {
					t.Fatalf("%s is not on PATH: %v", tool, err)
				}
			}
			dir := t.TempDir()
			status, m := runPartnerScript(t, p, base, "bash", "-c", "cd "+dir+" && "+bashClient)
			accepted(t, "bash", status, m, "bash-1", map[string]any{"amount": 42.0, "note": "café ✓ from bash", "items": []any{1.0, 2.0}})
		})
		t.Run("node", func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath("node"); err != nil {
				t.Skip("node is not on PATH")
			}
			status, m := runPartnerScript(t, p, base, "node", "-e", nodeClient)
			accepted(t, "node", status, m, "node-1", map[string]any{"amount": 7.0, "note": "café ✓ from node", "nested": map[string]any{"ok": true}})
		})
		t.Run("go", func(t *testing.T) {
			t.Parallel()
			data := map[string]any{"amount": 9.5, "note": "café ✓ from Go"}
			body, _ := json.Marshal(map[string]any{"id": "go-1", "type": "order.created", "data": data})
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			mac := hmac.New(sha256.New, []byte(p.Secret))
			mac.Write([]byte(ts + "." + string(body)))
			req, err := http.NewRequest(http.MethodPost, base+"/api/webhooks/events", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("x-api-key", p.APIKey)
			req.Header.Set("x-timestamp", ts)
			req.Header.Set("x-webhook-signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
			req.Header.Set("Content-Type", "application/json")
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var m map[string]any
			json.Unmarshal(raw, &m)
			accepted(t, "Go", resp.StatusCode, m, "go-1", data)
		})
	})
	if t.Failed() {
		return
	}

	// Each event reaches the receiver once, as the organization's event
	// "<partner id>:<event id>", with the partner's data in the envelope.
	reqs := r.Wait(t, len(sent), 5*time.Second)
	reqs = r.NoMoreThan(t, len(sent), 200*time.Millisecond)
	secret := str(e.h.Get(t, e.key, "/api/webhooks/"+str(ep, "id")+"/secret"), "secret")
	seen := map[string]bool{}
	for _, req := range reqs {
		id := req.Header.Get("Webhook-Id")
		ev := decodeEnvelope(t, req.Body)
		pid, ok := strings.CutPrefix(id, p.ID+":")
		data, known := sent[pid]
		if !ok || !known || seen[pid] {
			t.Errorf("receiver got webhook-id %q, want one of %v prefixed by %s: and each once", id, sent, p.ID)
			continue
		}
		seen[pid] = true
		var got any
		if err := json.Unmarshal(ev.Data, &got); err != nil || !reflect.DeepEqual(got, data) {
			t.Errorf("event %s: envelope data %s, want the partner's %v", pid, ev.Data, data)
		}
		if ev.ID != id || ev.Type != "order.created" || ev.Organization != e.org {
			t.Errorf("event %s: envelope %+v, want id %s, type order.created, organization %s", pid, ev, id, e.org)
		}
		if err := signature.Verify(signature.StandardWebhooks, "", secret, req.Header, req.Body, signature.VerifyOptions{}); err != nil {
			t.Errorf("event %s: delivery signature: %v", pid, err)
		}
	}
	for id := range sent {
		st := e.h.WaitInboundStatus(t, p.APIKey, id, 5*time.Second, func(st map[string]any) bool { return st["status"] == "processed" })
		if num(st, "attempts") != 1 || st["error"] != nil || str(st, "type") != "order.created" || str(st, "eventId") != id {
			t.Errorf("status of %s = %s, want processed after 1 attempt without error", id, hookdtest.JSON(st))
		}
	}
}
