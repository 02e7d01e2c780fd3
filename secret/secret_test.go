package secret_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hookd/hookd/secret"
)

func newSealer(t *testing.T) *secret.Sealer {
	t.Helper()
	s, err := secret.NewSealer(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	for _, plain := range []string{"", "x", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", strings.Repeat("long ", 1000)} {
		sealed, err := s.Seal([]byte(plain))
		if err != nil {
			t.Fatalf("Seal(%q) error: %v", plain, err)
		}
		// Only a plaintext long enough not to occur in random bytes by chance
		// (a single byte does in about one seal of nine) can be searched for.
		if len(plain) >= 8 && bytes.Contains(sealed, []byte(plain)) {
			t.Errorf("Seal(%q) contains the plaintext", plain)
		}
		if got, want := len(sealed), len(plain)+29; got != want {
			t.Errorf("len(Seal(%q)) = %d, want %d", plain, got, want)
		}
		got, err := s.Open(sealed)
		if err != nil {
			t.Fatalf("Open(Seal(%q)) error: %v", plain, err)
		}
		if string(got) != plain {
			t.Errorf("Open(Seal(%q)) = %q, want %q", plain, got, plain)
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	a, _ := s.Seal([]byte("same"))
	b, _ := s.Seal([]byte("same"))
	if bytes.Equal(a, b) {
		t.Errorf("Seal(%q) twice gave the same bytes %x", "same", a)
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	sealed, err := s.Seal([]byte("top secret"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if got, err := s.Open(bad); !errors.Is(err, secret.ErrDecrypt) {
			t.Errorf("Open(sealed with byte %d flipped) = %q, %v, want ErrDecrypt", i, got, err)
		}
	}
	for _, n := range []int{0, 1, 13, 28, len(sealed) - 1} {
		if got, err := s.Open(sealed[:n]); !errors.Is(err, secret.ErrDecrypt) {
			t.Errorf("Open(sealed[:%d]) = %q, %v, want ErrDecrypt", n, got, err)
		}
	}
	if got, err := s.Open(append(bytes.Clone(sealed), 0)); !errors.Is(err, secret.ErrDecrypt) {
		t.Errorf("Open(sealed+0) = %q, %v, want ErrDecrypt", got, err)
	}
}

func TestOpenWrongKey(t *testing.T) {
	t.Parallel()
	sealed, err := newSealer(t).Seal([]byte("top secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := newSealer(t).Open(sealed); !errors.Is(err, secret.ErrDecrypt) {
		t.Errorf("Open with another key = %q, %v, want ErrDecrypt", got, err)
	}
}

func TestSealerConcurrent(t *testing.T) {
	t.Parallel()
	s := newSealer(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				plain := []byte(strings.Repeat("x", i*j))
				sealed, err := s.Seal(plain)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := s.Open(sealed); err != nil || !bytes.Equal(got, plain) {
					t.Errorf("Open(Seal(%q)) = %q, %v", plain, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewSealerKeySize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := secret.NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer(%d bytes) error = nil, want an error", n)
		}
	}
	if _, err := secret.NewSealer(make([]byte, 32)); err != nil {
		t.Errorf("NewSealer(32 bytes) error = %v, want nil", err)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i*7 + 250) // includes bytes that need '+', '/', '-', '_' in base64
	}
	hexKey := hex.EncodeToString(key)
	tests := []struct {
		in   string
		want []byte // nil: an error is expected
	}{
		{hexKey, key},
		{strings.ToUpper(hexKey), key},
		{"  " + hexKey + "\n", key},
		{base64.StdEncoding.EncodeToString(key), key},
		{base64.RawStdEncoding.EncodeToString(key), key},
		{base64.URLEncoding.EncodeToString(key), key},
		{base64.RawURLEncoding.EncodeToString(key) + "\r\n", key},
		{"", nil},
		{"   ", nil},
		{hexKey[:62], nil},
		{hexKey + "00", nil},
		{"zz" + hexKey[2:], nil},
		{base64.StdEncoding.EncodeToString(key[:16]), nil},
		{base64.StdEncoding.EncodeToString(append(bytes.Clone(key), 1)), nil},
		{base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 48)), nil}, // 64 chars, not hex
		{"not a key at all", nil},
		{"correct horse battery staple", nil},
	}
	for _, tt := range tests {
		got, err := secret.ParseKey(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("ParseKey(%q) = %x, want an error", tt.in, got)
			} else if strings.Contains(err.Error(), strings.TrimSpace(tt.in)) && strings.TrimSpace(tt.in) != "" {
				t.Errorf("ParseKey(%q) error %q repeats the key text", tt.in, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("ParseKey(%q) = %x, %v, want %x", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	key := secret.NewKey()
	for _, s := range []string{
		hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key), "", "garbage", strings.Repeat("0", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := secret.ParseKey(s)
		if err == nil && len(key) != secret.KeySize {
			t.Fatalf("ParseKey(%q) = %d bytes, want %d", s, len(key), secret.KeySize)
		}
	})
}

func FuzzOpen(f *testing.F) {
	s, err := secret.NewSealer(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := s.Seal([]byte("seed"))
	f.Add(sealed)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(bytes.Repeat([]byte{1}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		plain, err := s.Open(b)
		if err != nil {
			if !errors.Is(err, secret.ErrDecrypt) {
				t.Fatalf("Open(%x) error = %v, want ErrDecrypt", b, err)
			}
			return
		}
		// Only values made by Seal open; the seed is the only one here.
		// (Seal is randomized, so each fuzz worker has its own seed bytes.)
		if string(plain) != "seed" {
			t.Fatalf("Open(%x) = %q, want an error (forged)", b, plain)
		}
	})
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "master.key")

	key, err := secret.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeyFile(%q) (create) error: %v", path, err)
	}
	if len(key) != secret.KeySize {
		t.Fatalf("LoadOrCreateKeyFile(%q) = %d bytes, want %d", path, len(key), secret.KeySize)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("LoadOrCreateKeyFile(%q) file mode = %v, want %v", path, got, os.FileMode(0o600))
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fromText, err := secret.ParseKey(string(text)); err != nil || !bytes.Equal(fromText, key) {
		t.Errorf("ParseKey(file text) = %x, %v, want %x", fromText, err, key)
	}

	again, err := secret.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeyFile(%q) (reread) error: %v", path, err)
	}
	if !bytes.Equal(again, key) {
		t.Errorf("LoadOrCreateKeyFile(%q) reread = %x, want %x", path, again, key)
	}

	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file (temporary file left behind?)", len(entries))
	}
}

func TestLoadOrCreateKeyFileExisting(t *testing.T) {
	t.Parallel()
	key := secret.NewKey()
	tests := []struct {
		name string
		text string
		mode os.FileMode
	}{
		{"hex", hex.EncodeToString(key) + "\n", 0o600},
		{"base64", base64.StdEncoding.EncodeToString(key), 0o600},
		{"group readable is honoured", hex.EncodeToString(key), 0o640},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "master.key")
		if err := os.WriteFile(path, []byte(tt.text), tt.mode); err != nil {
			t.Fatal(err)
		}
		got, err := secret.LoadOrCreateKeyFile(path)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: LoadOrCreateKeyFile(%q) = %x, %v, want %x", tt.name, path, got, err, key)
		}
		if b, _ := os.ReadFile(path); string(b) != tt.text {
			t.Errorf("%s: LoadOrCreateKeyFile(%q) changed the file to %q", tt.name, path, b)
		}
	}
}

func TestLoadOrCreateKeyFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := secret.LoadOrCreateKeyFile(bad); err == nil {
		t.Errorf("LoadOrCreateKeyFile(%q) with garbage = nil error, want an error", bad)
	}
	if b, _ := os.ReadFile(bad); string(b) != "not a key\n" {
		t.Errorf("LoadOrCreateKeyFile(%q) replaced an invalid key file with %q", bad, b)
	}

	missingDir := filepath.Join(dir, "nope", "master.key")
	if _, err := secret.LoadOrCreateKeyFile(missingDir); err == nil {
		t.Errorf("LoadOrCreateKeyFile(%q) = nil error, want an error", missingDir)
	}
}

func TestLoadOrCreateKeyFileRace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = secret.LoadOrCreateKeyFile(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreateKeyFile(%q) #%d error: %v", path, i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("LoadOrCreateKeyFile(%q) #%d = %x, want %x like #0", path, i, keys[i], keys[0])
		}
	}
}

var apiKeyRE = regexp.MustCompile(`^[0-9A-Za-z]{43}$`)

func TestNewAPIKey(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for _, prefix := range []string{"hk_", "", "key_live_"} {
		for range 1000 {
			k := secret.NewAPIKey(prefix)
			body, ok := strings.CutPrefix(k, prefix)
			if !ok || !apiKeyRE.MatchString(body) {
				t.Fatalf("NewAPIKey(%q) = %q, want %q + 43 base62 characters", prefix, k, prefix)
			}
			if seen[body] {
				t.Fatalf("NewAPIKey(%q) = %q twice", prefix, k)
			}
			seen[body] = true
		}
	}
}

func TestHashKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want string
	}{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		if got := secret.HashKey(tt.key); got != tt.want {
			t.Errorf("HashKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
	k := secret.NewAPIKey("hk_")
	if a, b := secret.HashKey(k), secret.HashKey(k); a != b {
		t.Errorf("HashKey(%q) = %v then %v, want stable", k, a, b)
	}
	if a, b := secret.HashKey(k), secret.HashKey(k+"x"); a == b {
		t.Errorf("HashKey(%q) = HashKey(%q) = %v", k, k+"x", a)
	}
}

func TestEqualHash(t *testing.T) {
	t.Parallel()
	h := secret.HashKey("hk_abc")
	tests := []struct {
		a, b string
		want bool
	}{
		{h, h, true},
		{h, secret.HashKey("hk_abd"), false},
		{h, h[:63], false},
		{h, "", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := secret.EqualHash(tt.a, tt.b); got != tt.want {
			t.Errorf("EqualHash(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
