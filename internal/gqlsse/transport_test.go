package gqlsse_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pulse-social/pulse/internal/gqlsse"
)

// TestAccepts: only a POST of JSON whose Accept asks for an event stream,
// and for no JSON, is a graphql-sse request; everything else stays with
// gqlgen's other transports.
func TestAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, method, contentType, upgrade string
		accept                             []string
		want                               bool
	}{
		{"graphql-sse client", http.MethodPost, "application/json; charset=utf-8", "", []string{"text/event-stream"}, true},
		{"with parameters and others", http.MethodPost, "application/json", "", []string{"text/event-stream;q=0.9, multipart/mixed"}, true},
		{"two Accept headers", http.MethodPost, "application/json", "", []string{"multipart/mixed", "text/event-stream"}, true},
		{"urql query: JSON too", http.MethodPost, "application/json", "", []string{"application/graphql-response+json, application/json, text/event-stream"}, false},
		{"JSON refused with q=0", http.MethodPost, "application/json", "", []string{"application/json;q=0, text/event-stream"}, true},
		{"event stream refused with q=0", http.MethodPost, "application/json", "", []string{"text/event-stream;q=0"}, false},
		{"plain POST", http.MethodPost, "application/json", "", nil, false},
		{"any type", http.MethodPost, "application/json", "", []string{"*/*"}, false},
		{"GET", http.MethodGet, "application/json", "", []string{"text/event-stream"}, false},
		{"not JSON", http.MethodPost, "application/graphql", "", []string{"text/event-stream"}, false},
		{"no Content-Type", http.MethodPost, "", "", []string{"text/event-stream"}, false},
		{"websocket", http.MethodPost, "application/json", "websocket", []string{"text/event-stream"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/query", nil)
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.upgrade != "" {
				r.Header.Set("Upgrade", tc.upgrade)
			}
			for _, a := range tc.accept {
				r.Header.Add("Accept", a)
			}
			if got := gqlsse.Accepts(r); got != tc.want {
				t.Fatalf("Accepts = %v, want %v", got, tc.want)
			}
		})
	}
}
