// Package migration lists a store's embedded schema migrations: files
// named NNNN_name.sql, applied in version order. Each store applies them in
// its own dialect and records them in its schema_migrations table.
package migration

import (
	"cmp"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// File is one schema version.
type File struct {
	Version int
	Name    string // the file's path in its fs.FS
}

// List returns the migrations in fsys in version order. A .sql file whose
// name does not start with a positive version, or two files with the same
// version, are an error.
func List(fsys fs.FS) ([]File, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	ms := make([]File, 0, len(names))
	for _, name := range names {
		prefix, _, ok := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrate: %s: the name must be NNNN_name.sql with NNNN > 0", name)
		}
		ms = append(ms, File{Version: v, Name: name})
	}
	slices.SortFunc(ms, func(a, b File) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrate: %s and %s have the same version", ms[i-1].Name, ms[i].Name)
		}
	}
	return ms, nil
}
