package secret

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKeyFile returns the master key stored in the file at path, in
// the text format of ParseKey. If the file does not exist it creates it,
// with mode 0600, holding a fresh random key as 64 hex characters and a
// newline, and returns that key.
//
// Creation is atomic and never replaces a file: the key is written and synced
// to a temporary file in the same directory, which is then hard-linked to
// path and removed; the directory is synced too. If several processes race,
// one file wins and every caller returns its key. The directory must exist.
//
// An existing file is used whatever its mode, and is never changed: the
// operator who made it chose its permissions. A file that does not hold a
// valid key is an error, not a reason to make a new key, since data sealed
// under the old key would be lost.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}

	key = NewKey()
	if err := createKeyFile(path, key); errors.Is(err, fs.ErrExist) {
		return readKeyFile(path) // another process created it first
	} else if err != nil {
		return nil, err
	}
	return key, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	key, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return key, nil
}

// createKeyFile writes key to a new file at path. It returns an error
// matching fs.ErrExist if path already exists.
func createKeyFile(path string, key []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*") // mode 0600
	if err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	if _, err := tmp.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync master key directory: %w", err)
		}
	}
	return nil
}
