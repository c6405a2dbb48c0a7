package inproc_test

import (
	"testing"

	"github.com/pulse-social/pulse/internal/brokertest"
	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/social"
)

func TestBroker(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  fanout.Config
	}{
		{"DefaultQueue", fanout.Config{}},
		{"SmallestQueue", fanout.Config{QueueSize: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokertest.Run(t, func(t *testing.T) social.Broker {
				b := inproc.New(tc.cfg)
				t.Cleanup(b.Close)
				return b
			})
		})
	}
}
