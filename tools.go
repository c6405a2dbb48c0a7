//go:build tools

// Package tools pins the code generator that `go generate` runs, so that
// everybody generates with the same gqlgen version as go.mod names.
package tools

import _ "github.com/99designs/gqlgen"
