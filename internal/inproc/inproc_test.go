package inproc_test

import (
	"testing"

	"github.com/pulse-social/pulse/internal/brokertest"
	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/social"
)

func TestBroker(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) social.Broker {
		b := inproc.New(fanout.Config{})
		t.Cleanup(b.Close)
		return b
	})
}
