package migration_test

import (
	"testing"
	"testing/fstest"

	"github.com/pulse-social/pulse/internal/migration"
)

func TestList(t *testing.T) {
	files := fstest.MapFS{
		"0002_more.sql":  {Data: []byte("b")},
		"0010_later.sql": {Data: []byte("c")},
		"0001_init.sql":  {Data: []byte("a")},
		"README.md":      {Data: []byte("not a migration")},
	}
	ms, err := migration.List(files)
	if err != nil {
		t.Fatal(err)
	}
	want := []migration.File{{1, "0001_init.sql"}, {2, "0002_more.sql"}, {10, "0010_later.sql"}}
	if len(ms) != len(want) {
		t.Fatalf("List = %v, want %v", ms, want)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Fatalf("List = %v, want %v", ms, want)
		}
	}

	for name, bad := range map[string]fstest.MapFS{
		"NoVersion":   {"init.sql": {}},
		"ZeroVersion": {"0000_init.sql": {}},
		"SameVersion": {"0001_a.sql": {}, "1_b.sql": {}},
	} {
		if _, err := migration.List(bad); err == nil {
			t.Errorf("%s: List accepted it", name)
		}
	}
}
