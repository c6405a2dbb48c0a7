//go:build !linux

package plainws

import "errors"

// poller is epoll's, on Linux only: elsewhere each socket reads on a
// goroutine of its own (socket.readLoop).
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.ErrUnsupported }

// The poller's methods, never called without one.

func (*poller) add(*socket) error   { return errors.ErrUnsupported }
func (*poller) rearm(*socket) error { return errors.ErrUnsupported }
func (*poller) remove(*socket)      {}
func (*poller) close()              {}
