package delivery

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd"
)

// bodyCases are events whose envelope Body writes without json.Marshal, and
// events it must hand to json.Marshal (something to compact or escape).
var bodyCases = []struct {
	id, typ, org, data string
	verbatim           bool
}{
	{"evt_1", "invoice.paid", "org_1", `{"n":1}`, true},
	{"evt_1", "a.b", "org_1", `{"s":"with spaces, tabs\tand \"quotes\" \\"}`, true},
	{"evt_1", "a.b", "org_1", `{"s":"\\"}`, true},
	{"evt_1", "a.b", "org_1", `{"s":"a\" b"}`, true},
	{"evt_1", "a.b", "org_1", `{"s":"\"", "t":1}`, false},
	{"evt_1", "a.b", "org_1", `{"s":"caf` + "\u00e9" + ` ` + "\u65e5" + `"}`, true},
	{"evt_1", "a.b", "org_1", `[1,2.5e3,true,false,null,"",{}]`, true},
	{"evt_1", "a.b", "org_1", `"just a string"`, true},
	{"evt_1", "a.b", "org_1", `{"n": 1}`, false},
	{"evt_1", "a.b", "org_1", "{\n\"n\":1}\n", false},
	{"evt_1", "a.b", "org_1", `{"html":"<b>&</b>"}`, false},
	{"evt_1", "a.b", "org_1", `{"s":"` + "\u2028\u2029" + `"}`, false},
	{"evt_1", "a.b", "org_1", `{"s":"` + "\u20ac" + `"}`, false}, // 0xE2 lead byte, copied by json.Marshal, but checked
	{"evt_1", "a<b", "org_1", `{"n":1}`, false},
	{"evt_1", "t\u00e9", "org_1", `{"n":1}`, false},
	{"evt_\"1", "a.b", "org_1", `{"n":1}`, false},
	{"evt_1", "a.b", "org\x01", `{"n":1}`, false},
}

// TestBodyAsJSONMarshal: the envelope is byte for byte what json.Marshal
// writes, whether Body writes it itself or not.
func TestBodyAsJSONMarshal(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.FixedZone("x", 3600))
	for _, tc := range bodyCases {
		ev := &hookd.Event{ID: tc.id, Type: tc.typ, OrgID: tc.org, Data: []byte(tc.data), CreatedAt: at}
		if got := verbatim(ev.Data) && plain(ev.ID) && plain(ev.Type) && plain(ev.OrgID); got != tc.verbatim {
			t.Errorf("%q %q %q %s: written without json.Marshal = %v, want %v", tc.id, tc.typ, tc.org, tc.data, got, tc.verbatim)
		}
		checkBody(t, ev)
	}
}

// FuzzBody: for any valid JSON data and any id, type and organization, the
// envelope is what json.Marshal writes.
func FuzzBody(f *testing.F) {
	for _, tc := range bodyCases {
		f.Add(tc.id, tc.typ, tc.org, []byte(tc.data))
	}
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, id, typ, org string, data []byte) {
		if !json.Valid(data) {
			return // refused at publish: never stored
		}
		checkBody(t, &hookd.Event{ID: id, Type: typ, OrgID: org, Data: data, CreatedAt: at})
	})
}

func checkBody(t *testing.T, ev *hookd.Event) {
	t.Helper()
	want, err := json.Marshal(envelope{ID: ev.ID, Type: ev.Type, Timestamp: ev.CreatedAt.UTC().Format(time.RFC3339),
		Organization: ev.OrgID, Data: ev.Data})
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	got, err := Body(ev, hookd.PayloadEnvelope)
	if err != nil {
		t.Fatalf("Body: %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("Body(%q, %q, %q, %q) =\n%s\nwant (json.Marshal)\n%s", ev.ID, ev.Type, ev.OrgID, ev.Data, got, want)
	}
}

// BenchmarkBody measures the envelope of a 256-byte event, as hookd bench
// publishes.
func BenchmarkBody(b *testing.B) {
	data := []byte(`{"sent_ns":1765099800000000000,"seq":12345,"pad":"` + strings.Repeat("x", 200) + `"}`)
	ev := &hookd.Event{ID: "evt_01KBV0Q4C8X9PZ3M6N2J7R5T1W", Type: "bench.event", OrgID: "org_01KBV0Q4C8X9PZ3M6N2J7R5T1X",
		Data: data, CreatedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Body(ev, hookd.PayloadEnvelope); err != nil {
			b.Fatal(err)
		}
	}
}
