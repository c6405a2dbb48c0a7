package playground

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AssetPrefix is the path, relative to where the handler is mounted, under
// which it serves its assets. The page refers to them with relative URLs
// ("playground/graphiql.min.js?v=..."), so a handler mounted at the root
// serves the page at "/" and the assets under "/playground/".
const AssetPrefix = "/playground/"

// ContentSecurityPolicy is the Content-Security-Policy of every response of
// the handler. GraphiQL's stylesheet embeds its fonts as data: URLs, hence
// font-src data:; its components set style attributes and some inject
// <style> elements, hence style-src 'unsafe-inline'. No script is inline.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; " +
	"style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

//go:embed assets/*.js assets/*.css assets/*.txt
var assetFiles embed.FS

// contentTypes maps the extensions of the embedded files to their
// Content-Type, independent of the system's MIME tables.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8",
}

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	contentType string
	body        []byte
	version     string // a hash of body: the ?v= of the page's URLs
	etag        string

	gzipOnce sync.Once
	gzipBody []byte // nil if gzip does not make it smaller
}

// gzipped returns the body compressed with gzip, or nil if that is not
// smaller. It compresses on the first call only.
func (a *asset) gzipped() []byte {
	a.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(a.body); err != nil {
			return
		}
		if err := zw.Close(); err != nil {
			return
		}
		if buf.Len() < len(a.body) {
			a.gzipBody = buf.Bytes()
		}
	})
	return a.gzipBody
}

// assets holds every embedded file by base name; shared by all handlers.
var assets = sync.OnceValue(func() map[string]*asset {
	m := make(map[string]*asset)
	entries, err := fs.ReadDir(assetFiles, "assets")
	if err != nil {
		panic(fmt.Sprintf("playground: read embedded assets: %v", err))
	}
	for _, e := range entries {
		body, err := assetFiles.ReadFile("assets/" + e.Name())
		if err != nil {
			panic(fmt.Sprintf("playground: read embedded asset %s: %v", e.Name(), err))
		}
		ct, ok := contentTypes[path.Ext(e.Name())]
		if !ok {
			panic(fmt.Sprintf("playground: no content type for embedded asset %s", e.Name()))
		}
		v := hash(body)
		m[e.Name()] = &asset{
			name:        e.Name(),
			contentType: ct,
			body:        body,
			version:     v,
			etag:        `"` + v + `"`,
		}
	}
	return m
})

// hash returns a short hex SHA-256 of b, long enough to tell versions apart.
func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// pageTemplate is the playground page. Every URL in it is relative to the
// page, so that it works wherever the handler is mounted.
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"asset": assetURL,
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Pulse GraphQL playground</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{{asset "graphiql.min.css"}}">
<link rel="stylesheet" href="{{asset "playground.css"}}">
<script src="{{asset "react.production.min.js"}}" defer></script>
<script src="{{asset "react-dom.production.min.js"}}" defer></script>
<script src="{{asset "graphql-ws.min.js"}}" defer></script>
<script src="{{asset "graphiql.min.js"}}" defer></script>
<script src="{{asset "playground.js"}}" defer></script>
</head>
<body>
<div id="graphiql" data-endpoint="{{.Endpoint}}">
<p class="pulse-loading">Loading the GraphQL playground&hellip;</p>
<noscript><p class="pulse-loading">The playground needs JavaScript. GraphQL itself is at <code>{{.Endpoint}}</code>.</p></noscript>
</div>
</body>
</html>
`))

// assetURL returns the page-relative, versioned URL of the named asset.
func assetURL(name string) (string, error) {
	a, ok := assets()[name]
	if !ok {
		return "", fmt.Errorf("no embedded asset %q", name)
	}
	return strings.TrimPrefix(AssetPrefix, "/") + url.PathEscape(a.name) + "?v=" + a.version, nil
}

// handler serves the page and the assets.
type handler struct {
	page     []byte
	pageETag string
}

// Handler returns an http.Handler serving a GraphiQL playground for the
// GraphQL endpoint at endpoint: a path on the same host such as "/query", or
// a full http or https URL of the same origin (ContentSecurityPolicy lets the
// page fetch from its own origin only). Queries and mutations go to it over HTTP POST
// with the headers of GraphiQL's Headers editor; subscriptions go over a
// websocket to the same URL with the ws or wss scheme, protocol
// graphql-transport-ws, and the Authorization header of the Headers editor in
// the connection_init payload as {"authorization": "<value>"}.
//
// The handler answers GET and HEAD on these paths of the request URL:
//
//   - "/": the page (Cache-Control: no-cache);
//   - AssetPrefix + name: the assets the page loads, from this package's
//     embedded files; the page adds a content hash (?v=) to their URLs, and a
//     request with the current hash is cached for a year;
//   - "" (what http.StripPrefix leaves of a request for the bare prefix): a
//     redirect to the prefix with a slash.
//
// Anything else is 404, other methods 405. Every response carries
// ContentSecurityPolicy, X-Content-Type-Options: nosniff, Referrer-Policy:
// no-referrer and X-Frame-Options: DENY.
//
// The page refers to its assets relative to itself, so mount the handler for
// both "/" and AssetPrefix under the same prefix. At the root, with chi:
//
//	pg := playground.Handler("/query")
//	r.Get("/", pg.ServeHTTP)
//	r.Get("/playground/*", pg.ServeHTTP)
//
// or with net/http's ServeMux:
//
//	mux.Handle("GET /{$}", pg)
//	mux.Handle("GET /playground/", pg)
//
// Under a prefix, strip it: mux.Handle("/graphiql/", http.StripPrefix("/graphiql", pg))
// serves the page at /graphiql/ and the assets under /graphiql/playground/.
//
// Handler panics if endpoint is empty or not a valid path or http(s) URL.
func Handler(endpoint string) http.Handler {
	if endpoint == "" {
		panic("playground: empty endpoint")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		panic(fmt.Sprintf("playground: endpoint %q: %v", endpoint, err))
	}
	if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		panic(fmt.Sprintf("playground: endpoint %q: scheme is not http or https", endpoint))
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, struct{ Endpoint string }{endpoint}); err != nil {
		panic(fmt.Sprintf("playground: render page: %v", err))
	}
	return &handler{page: buf.Bytes(), pageETag: `"` + hash(buf.Bytes()) + `"`}
}

// ServeHTTP implements http.Handler; see Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	p := r.URL.Path
	switch {
	case p == "":
		redirectToSlash(w, r)
	case p == "/":
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Cache-Control", "no-cache")
		hdr.Set("ETag", h.pageETag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.page))
	case strings.HasPrefix(p, AssetPrefix):
		a, ok := assets()[strings.TrimPrefix(p, AssetPrefix)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serveAsset(w, r, a)
	default:
		http.NotFound(w, r)
	}
}

// redirectToSlash answers a request whose path http.StripPrefix has reduced
// to "" with a redirect to the same path plus "/", where the page is.
func redirectToSlash(w http.ResponseWriter, r *http.Request) {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || u.Path == "" || strings.HasSuffix(u.Path, "/") {
		// Not from http.StripPrefix of a bare prefix: a redirect could loop.
		http.NotFound(w, r)
		return
	}
	// The request's own path, not the stripped one: "/graphiql" -> "/graphiql/".
	target := u.EscapedPath() + "/"
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, target, http.StatusMovedPermanently)
}

// serveAsset writes a, gzipped if the client accepts it.
func serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Add("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == a.version {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	body, etag := a.body, a.etag
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		if gz := a.gzipped(); gz != nil {
			body, etag = gz, `"`+a.version+`-gzip"`
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	hdr.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip:
// it names gzip (or "*" without gzip) with a q-value other than 0.
func acceptsGzip(accept string) bool {
	star := false
	for part := range strings.SplitSeq(accept, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		ok := true
		if name, value, found := strings.Cut(strings.TrimSpace(params), "="); found && strings.EqualFold(strings.TrimSpace(name), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			ok = err == nil && q > 0
		}
		if coding == "*" {
			star = ok
			continue
		}
		return ok
	}
	return star
}
