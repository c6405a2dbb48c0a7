package gqlws

import (
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"
)

// The two subprotocols: the graphql-ws library's, and the legacy one of
// subscriptions-transport-ws (also what a client that offers none gets).
const (
	subprotocolTransportWS = "graphql-transport-ws"
	subprotocolLegacy      = "graphql-ws"
)

// Close codes of the protocols, and of this server.
const (
	// CloseBadRequest closes a socket whose client sent a message the
	// protocol does not allow: invalid JSON, an unknown type, a
	// connection_init payload that is not an object.
	CloseBadRequest = 4400
	// CloseInitTimeout closes a socket whose client sent no
	// connection_init within Config.InitTimeout.
	CloseInitTimeout = 4408
	// CloseDuplicateID closes a graphql-transport-ws socket whose client
	// subscribes with the id of an operation still running, as the
	// protocol prescribes: "Subscriber for <id> already exists". The
	// legacy protocol has no such rule: a reused id there replaces the
	// running operation.
	CloseDuplicateID = 4409
)

// clientMessage is a message from the client, in either protocol.
type clientMessage struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// kind is what a client message asks, in protocol-neutral terms.
type kind uint8

const (
	kindUnknown   kind = iota
	kindInit           // connection_init
	kindStart          // subscribe (graphql-transport-ws), start (legacy)
	kindStop           // complete (graphql-transport-ws), stop (legacy)
	kindPing           // ping (graphql-transport-ws)
	kindPong           // pong (graphql-transport-ws)
	kindTerminate      // connection_terminate (legacy)
)

// kindOf returns what the message type means in the socket's protocol.
func kindOf(transportWS bool, typ string) kind {
	if typ == "connection_init" {
		return kindInit
	}
	if transportWS {
		switch typ {
		case "subscribe":
			return kindStart
		case "complete":
			return kindStop
		case "ping":
			return kindPing
		case "pong":
			return kindPong
		}
		return kindUnknown
	}
	switch typ {
	case "start":
		return kindStart
	case "stop":
		return kindStop
	case "connection_terminate":
		return kindTerminate
	}
	return kindUnknown
}

// Server messages that never change.
var (
	msgAck        = []byte(`{"type":"connection_ack"}`)
	msgKeepAlive  = []byte(`{"type":"ka"}`)
	msgPing       = []byte(`{"type":"ping"}`)
	msgPong       = []byte(`{"type":"pong"}`)
	typeNext      = `next`
	typeData      = `data`
	typeError     = `error`
	typeComplete  = `complete`
	typeConnError = `connection_error`
)

// appendMessage appends a server message {"id":..,"type":..,"payload":..}
// to b; an empty id or a nil payload is left out.
func appendMessage(b []byte, id, typ string, payload []byte) []byte {
	b = appendHeader(b, id, typ)
	if payload != nil {
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
	}
	return append(b, '}')
}

// appendHeader appends the start of a server message, up to its type; an
// empty id is left out.
func appendHeader(b []byte, id, typ string) []byte {
	b = append(b, '{')
	if id != "" {
		b = append(b, `"id":`...)
		b = appendQuoted(b, id)
		b = append(b, ',')
	}
	b = append(b, `"type":"`...)
	b = append(b, typ...)
	return append(b, '"')
}

// appendResponse appends gqlgen's response as json.Marshal would, without
// validating again the data gqlgen has just encoded.
func appendResponse(b []byte, r *graphql.Response) ([]byte, error) {
	if r.Label != "" || r.Path != nil || r.HasNext != nil {
		m, err := json.Marshal(r) // incremental delivery: rare
		return append(b, m...), err
	}
	b = append(b, '{')
	if len(r.Errors) > 0 {
		errs, err := json.Marshal(r.Errors)
		if err != nil {
			return b, err
		}
		b = append(b, `"errors":`...)
		b = append(b, errs...)
		b = append(b, ',')
	}
	b = append(b, `"data":`...)
	if r.Data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Data...)
	}
	if len(r.Extensions) > 0 {
		ext, err := json.Marshal(r.Extensions)
		if err != nil {
			return b, err
		}
		b = append(b, `,"extensions":`...)
		b = append(b, ext...)
	}
	return append(b, '}'), nil
}

// appendQuoted appends s as a JSON string.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
