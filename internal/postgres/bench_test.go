package postgres_test

import (
	"testing"

	"github.com/pulse-social/pulse/internal/storetest"
)

// The store's benchmarks, each on a fresh schema; see storetest.

func BenchmarkAddNotifications10k(b *testing.B) {
	storetest.BenchmarkAddNotifications10k(b, MustOpen(b, MustSchema(b)))
}

func BenchmarkCreatePost(b *testing.B) {
	storetest.BenchmarkCreatePost(b, MustOpen(b, MustSchema(b)))
}

func BenchmarkCreatePostParallel(b *testing.B) {
	storetest.BenchmarkCreatePostParallel(b, MustOpen(b, MustSchema(b)))
}
