package sqlite_test

import (
	"fmt"
	"testing"

	"github.com/pulse-social/pulse/internal/storetest"
)

// BenchmarkReact measures one reaction through the Service, one caller at
// a time, as W3 makes them (storetest.ReactLoad): with 1,000 posts groups
// stay small; with one post every reaction joins the one group.
//
//	go test -run '^$' -bench React -benchtime 3000x ./internal/sqlite/
func BenchmarkReact(b *testing.B) {
	for _, posts := range []int{1000, 1} {
		b.Run(fmt.Sprintf("posts=%d", posts), func(b *testing.B) {
			load := storetest.NewReactLoad(b, openBench(b), posts)
			start := storetest.CPUTime(b)
			for b.Loop() {
				if err := load.React(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			storetest.ReportCPU(b, start)
		})
	}
}
