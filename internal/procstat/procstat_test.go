package procstat_test

import (
	"os"
	"testing"

	"github.com/pulse-social/pulse/internal/procstat"
)

func TestSelf(t *testing.T) {
	rss, err := procstat.RSSKiB(os.Getpid())
	if err != nil || rss <= 0 {
		t.Errorf("RSSKiB = %d, %v; want a positive size", rss, err)
	}
	if ticks, err := procstat.CPUTicks(os.Getpid()); err != nil || ticks < 0 {
		t.Errorf("CPUTicks = %d, %v", ticks, err)
	}
	if _, err := procstat.RSSKiB(-1); err == nil {
		t.Error("RSSKiB(-1): no error")
	}
}
