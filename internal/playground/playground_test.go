package playground_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/pulse-social/pulse/internal/playground"
)

// MustGet sends a GET for rawURL with the given headers and returns the
// response and its body.
func MustGet(tb testing.TB, rawURL string, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		tb.Fatalf("new request %s: %v", rawURL, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	// The Transport would ask for gzip and decode it unseen; ask explicitly.
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "identity")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", rawURL, err)
	}
	return resp, body
}

// CheckSecurityHeaders fails unless resp carries the handler's security headers.
func CheckSecurityHeaders(tb testing.TB, resp *http.Response) {
	tb.Helper()
	want := map[string]string{
		"Content-Security-Policy": playground.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			tb.Fatalf("%s %s: %s = %q, want %q", resp.Request.Method, resp.Request.URL, k, got, v)
		}
	}
}

var (
	refRE         = regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	scriptRE      = regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`)
	handlerAttrRE = regexp.MustCompile(`\son[a-z]+=`)
)

// CheckPage fetches the page at pageURL, checks it, and checks that every
// URL it refers to is served with 200, a fitting Content-Type and a long
// cache lifetime. It returns the page.
func CheckPage(tb testing.TB, pageURL string) string {
	tb.Helper()
	resp, body := MustGet(tb, pageURL, nil)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: status %d, want 200", pageURL, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		tb.Fatalf("GET %s: Content-Type %q", pageURL, ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		tb.Fatalf("GET %s: Cache-Control %q, want no-cache", pageURL, cc)
	}
	CheckSecurityHeaders(tb, resp)
	page := string(body)
	for _, m := range scriptRE.FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			tb.Fatalf("page has an inline script %q", m[0])
		}
	}
	if strings.Contains(page, "<style") || handlerAttrRE.MatchString(page) {
		tb.Fatalf("page has an inline style or event handler:\n%s", page)
	}

	base, err := url.Parse(pageURL)
	if err != nil {
		tb.Fatalf("parse %s: %v", pageURL, err)
	}
	refs := refRE.FindAllStringSubmatch(page, -1)
	var scripts, styles int
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		u, err := base.Parse(strings.ReplaceAll(ref, "&amp;", "&"))
		if err != nil {
			tb.Fatalf("page refers to %q: %v", ref, err)
		}
		if u.Host != base.Host || u.Scheme != base.Scheme {
			tb.Fatalf("page refers to %q, on another host", ref)
		}
		resp, body := MustGet(tb, u.String(), nil)
		if resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET %s (referred to as %q): status %d, want 200", u, ref, resp.StatusCode)
		}
		if len(body) == 0 {
			tb.Fatalf("GET %s: empty body", u)
		}
		ct := resp.Header.Get("Content-Type")
		switch {
		case strings.HasSuffix(u.Path, ".js"):
			scripts++
			if ct != "text/javascript; charset=utf-8" {
				tb.Fatalf("GET %s: Content-Type %q, want text/javascript", u, ct)
			}
		case strings.HasSuffix(u.Path, ".css"):
			styles++
			if ct != "text/css; charset=utf-8" {
				tb.Fatalf("GET %s: Content-Type %q, want text/css", u, ct)
			}
		default:
			tb.Fatalf("page refers to %q, neither a script nor a stylesheet", ref)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") {
			tb.Fatalf("GET %s: Cache-Control %q, want a long max-age", u, cc)
		}
		CheckSecurityHeaders(tb, resp)
	}
	if scripts != 5 || styles != 2 {
		tb.Fatalf("page refers to %d scripts and %d stylesheets, want 5 and 2:\n%s", scripts, styles, page)
	}
	return page
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(playground.Handler("/query"))
	defer srv.Close()

	t.Run("Page", func(t *testing.T) {
		page := CheckPage(t, srv.URL+"/")
		if !strings.Contains(page, `data-endpoint="/query"`) {
			t.Fatalf("page does not name the endpoint:\n%s", page)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		for _, p := range []string{"/query", "/playground/", "/playground/nope.js", "/playground/../playground.go", "/index.html"} {
			resp, _ := MustGet(t, srv.URL+p, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET %s: status %d, want 404", p, resp.StatusCode)
			}
			CheckSecurityHeaders(t, resp)
		}
	})

	t.Run("MethodNotAllowed", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatalf("POST /: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("POST /: status %d, Allow %q; want 405, GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})

	t.Run("Licenses", func(t *testing.T) {
		for _, name := range []string{"graphiql", "graphql-ws", "react", "react-dom"} {
			p := "/playground/" + name + ".LICENSE.txt"
			resp, body := MustGet(t, srv.URL+p, nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Fatalf("GET %s: status %d, Content-Type %q", p, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if !bytes.Contains(body, []byte("MIT")) && !bytes.Contains(body, []byte("Permission is hereby granted")) {
				t.Fatalf("GET %s: not a license:\n%s", p, body)
			}
		}
	})

	t.Run("UnversionedAssetIsRevalidated", func(t *testing.T) {
		resp, _ := MustGet(t, srv.URL+"/playground/playground.js", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("GET without ?v=: status %d, Cache-Control %q; want 200, no-cache", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("GET without ?v=: no ETag")
		}
		resp, _ = MustGet(t, srv.URL+"/playground/playground.js", http.Header{"If-None-Match": {etag}})
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("GET with If-None-Match: status %d, want 304", resp.StatusCode)
		}
	})

	t.Run("Gzip", func(t *testing.T) {
		_, plain := MustGet(t, srv.URL+"/playground/graphiql.min.js", nil)
		resp, body := MustGet(t, srv.URL+"/playground/graphiql.min.js", http.Header{"Accept-Encoding": {"gzip, deflate, br"}})
		if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("Content-Encoding %q, Vary %q; want gzip, Accept-Encoding", resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
		}
		if len(body) >= len(plain)/2 {
			t.Fatalf("gzipped %d bytes, plain %d", len(body), len(plain))
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if !bytes.Equal(unzipped, plain) {
			t.Fatalf("gunzipped body differs from the plain one")
		}
		resp, _ = MustGet(t, srv.URL+"/playground/graphiql.min.js", http.Header{"Accept-Encoding": {"gzip;q=0, identity"}})
		if resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("gzip;q=0: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
	})
}

// TestHandlerUnderPrefix mounts the handler the way a router mounts it under
// a prefix, and at the root beside other routes.
func TestHandlerUnderPrefix(t *testing.T) {
	pg := playground.Handler("/query")
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", pg)
	mux.Handle("GET /playground/", pg)
	mux.Handle("/graphiql/", http.StripPrefix("/graphiql", pg))
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	CheckPage(t, srv.URL+"/")
	CheckPage(t, srv.URL+"/graphiql/")

	// ServeMux redirects /graphiql itself; a router that does not (chi's
	// Mount) hands the handler an empty path.
	stripped := httptest.NewServer(http.StripPrefix("/graphiql", pg))
	defer stripped.Close()
	resp, _ := MustGet(t, stripped.URL+"/graphiql?x=1", nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/graphiql/?x=1" {
		t.Fatalf("GET /graphiql: status %d, Location %q; want 301 to /graphiql/?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	CheckPage(t, stripped.URL+"/graphiql/")
}

func TestHandlerPanicsOnBadEndpoint(t *testing.T) {
	for _, endpoint := range []string{"", "javascript:alert(1)", "http://[::1"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("Handler(%q) did not panic", endpoint)
				}
			}()
			playground.Handler(endpoint)
		}()
	}
}
