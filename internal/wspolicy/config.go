package wspolicy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Defaults of Config's zero values.
const (
	DefaultWriteBufferSize = 1024
	DefaultWriteTimeout    = 10 * time.Second
)

// Config is the websocket policy shared by both sockets. The zero value
// allows requests without an Origin header and same-host origins, with the
// default buffer sizes and write timeout.
type Config struct {
	// AllowedOrigins lists the browser origins, besides the server's own
	// host, that may open a socket: each is "scheme://host[:port]", matched
	// exactly but ignoring case (browsers leave out default ports, so list
	// "https://app.example.com", not "https://app.example.com:443"). "*"
	// allows any origin. Nil or empty allows only requests without an Origin
	// header and origins whose host is the request's Host.
	AllowedOrigins []string

	// ReadBufferSize is the size of each socket's read buffer, held for the
	// socket's lifetime. 0 lets each socket package pick a small one (the
	// plain socket reads its client's frames into buffers of its own, held
	// only while it reads). Messages may be larger than the buffer.
	ReadBufferSize int

	// WriteBufferSize is the size of the write buffers, taken from a pool
	// shared by all sockets for the length of one write; 0 means
	// DefaultWriteBufferSize. Messages may be larger than the buffer.
	WriteBufferSize int

	// WriteTimeout bounds every write: a message, a ping, a close frame, and
	// the handshake's response. 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// WithDefaults returns c with its zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.ReadBufferSize < 0 {
		c.ReadBufferSize = 0
	}
	if c.WriteBufferSize <= 0 {
		c.WriteBufferSize = DefaultWriteBufferSize
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	return c
}

// Validate reports an AllowedOrigins entry that is neither "*" nor of the
// form scheme://host[:port]. Call it once, when reading the configuration.
func (c Config) Validate() error {
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil ||
			strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("allowed origin %q: want * or scheme://host[:port]", o)
		}
	}
	return nil
}

// Upgrader returns a gorilla Upgrader that applies the policy: the origin
// check (HTTP 403 otherwise), the read buffer size, pooled write buffers and
// the write timeout as handshake timeout. It negotiates no subprotocol and
// answers a failed upgrade with gorilla's plain HTTP error; set its Error
// field to change that.
func (c Config) Upgrader() *websocket.Upgrader {
	c = c.WithDefaults()
	return &websocket.Upgrader{
		HandshakeTimeout: c.WriteTimeout,
		ReadBufferSize:   c.ReadBufferSize,
		WriteBufferSize:  c.WriteBufferSize,
		WriteBufferPool:  writePool(c.WriteBufferSize),
		CheckOrigin:      NewOriginPolicy(c.AllowedOrigins).Allow,
	}
}

// OriginPolicy is a list of allowed origins prepared for matching, the one
// origin policy of both sockets and of GraphQL over HTTP. Build it once
// with NewOriginPolicy.
type OriginPolicy struct {
	any     bool
	allowed []string
}

// NewOriginPolicy prepares origins (Config.AllowedOrigins) for matching.
func NewOriginPolicy(origins []string) OriginPolicy {
	var p OriginPolicy
	for _, o := range origins {
		if o == "*" {
			p.any = true
			continue
		}
		p.allowed = append(p.allowed, strings.TrimSuffix(o, "/"))
	}
	return p
}

// Allow reports whether the policy lets r through: r has no Origin header,
// or its Origin's host is r.Host, or its Origin is listed.
func (p OriginPolicy) Allow(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return p.Listed(origin)
}

// Listed reports whether origin is one of the allowed origins (any is,
// with "*"): the cross-origin callers that get CORS headers.
func (p OriginPolicy) Listed(origin string) bool {
	if p.any {
		return true
	}
	for _, a := range p.allowed {
		if strings.EqualFold(a, origin) {
			return true
		}
	}
	return false
}

// writePools holds one *sync.Pool per write buffer size, as gorilla asks:
// a pool must only hold buffers of one size.
var writePools sync.Map

func writePool(size int) websocket.BufferPool {
	p, ok := writePools.Load(size)
	if !ok {
		p, _ = writePools.LoadOrStore(size, new(sync.Pool))
	}
	return p.(*sync.Pool)
}

// maxCloseReason is the longest reason a close frame can carry: a control
// frame's payload is at most 125 bytes, two of which are the code.
const maxCloseReason = 123

// FormatClose returns the payload of a close frame with this code and
// reason, the reason made valid UTF-8 and cut to the 123 bytes a close
// frame can carry (at a character boundary).
func FormatClose(code int, reason string) []byte {
	reason = strings.ToValidUTF8(reason, "")
	if len(reason) > maxCloseReason {
		n := maxCloseReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	return websocket.FormatCloseMessage(code, reason)
}

// The close of a socket whose session's token expired, the same on both
// transports.
const (
	CloseTokenExpired  = 4401
	ReasonTokenExpired = "token expired"
)

// The close of a socket whose session ended (logout, endSession,
// logoutAll), the same on both transports.
const (
	CloseLoggedOut  = 4401
	ReasonLoggedOut = "logged out"
)

// The close of a socket (and the end of an event stream) when the server
// stops or its broker shuts down, the same on every transport.
const (
	CloseShuttingDown  = websocket.CloseGoingAway
	ReasonShuttingDown = "server shutting down"
)
