package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// subscription, socket and revocation watcher must end with its connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
