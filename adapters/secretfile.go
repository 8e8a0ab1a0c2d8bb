package adapters

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ReadSecretFile reads a secret (a DSN, a token, a password) named by a
// `*_file` option: an absolute path, or one relative to the configuration's
// folder (files). The trailing line break an editor or `echo` adds is not
// part of the secret. A kind reads it each time the source is built, so a
// reload picks up a new or rotated secret, which `*_env` options cannot: the
// environment is fixed when the process starts. The error names the file,
// never its content, and says what to do.
func ReadSecretFile(files fs.FS, name string) (string, error) {
	var b []byte
	var err error
	if filepath.IsAbs(name) {
		b, err = os.ReadFile(name)
	} else {
		clean := path.Clean(filepath.ToSlash(name))
		switch {
		case files == nil:
			return "", fmt.Errorf("file %s is relative but there is no folder to resolve it in; use an absolute path", name)
		case !fs.ValidPath(clean):
			return "", fmt.Errorf("file %s leaves the configuration's folder; use an absolute path", name)
		}
		b, err = fs.ReadFile(files, clean)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			// The path is already named; the reason alone reads better.
			err = pe.Err
		}
		return "", fmt.Errorf("cannot read file %s: %w: write the secret in it (one line) and make it readable by the daemon's user", name, err)
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(secret) == "" {
		return "", fmt.Errorf("file %s is empty: write the secret in it (one line)", name)
	}
	return secret, nil
}
