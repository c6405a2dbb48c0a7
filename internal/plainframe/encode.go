package plainframe

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// The plain socket's encodings of an event, cached in its Encodings: made
// once per event for all of the recipient's sockets and streams in this
// process.
type (
	// Notification encodes an EventNotification's frame (AppendNotification).
	Notification struct{}
	// Message encodes an EventMessage's frame (MessageFrame).
	Message struct{}
)

// Encode implements social.Encoder.
func (Notification) Encode(ev *social.Event) []byte { return AppendNotification(nil, ev.Notification) }

// Encode implements social.Encoder.
func (Message) Encode(ev *social.Event) []byte { return MessageFrame(ev.Message) }

// AppendNotification appends n's plain socket frame to b: a JSON object
// with every key present, ids as strings, action and affected in lower
// case, absent values null. It holds no newline: control characters and
// U+2028 and U+2029 are escaped.
func AppendNotification(b []byte, n *social.Notification) []byte {
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, n.ID, 10)
	b = append(b, `","message":`...)
	b = appendJSONString(b, n.Message)
	b = append(b, `,"action":"`...)
	b = appendLower(b, string(n.Action))
	b = append(b, `","action_id":"`...)
	b = strconv.AppendInt(b, n.ActionID, 10)
	b = append(b, `","by_user":`...)
	b = appendJSONString(b, n.ByUser)
	b = append(b, `,"action_content":`...)
	if n.ActionContent == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, n.ActionContent)
	}
	b = append(b, `,"affected":`...)
	if n.Affected == "" {
		b = append(b, `null,"affected_id":null`...)
	} else {
		b = append(b, '"')
		b = appendLower(b, string(n.Affected))
		b = append(b, `","affected_id":"`...)
		b = strconv.AppendInt(b, n.AffectedID, 10)
		b = append(b, '"')
	}
	b = append(b, `,"created_at":"`...)
	b = n.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}`...)
	return b
}

// MessageFrame returns the plain socket frame {"message": text}.
func MessageFrame(text string) []byte {
	b := append([]byte(`{"message":`), appendJSONString(nil, text)...)
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	// encoding/json escapes exactly as clients expect (including <, > and &
	// for HTML safety) and cannot fail on a string. A string with nothing
	// to escape, the usual case, is copied as it is, without its two
	// allocations.
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendLower appends s in lower case; s is an enum value, in ASCII.
func appendLower(b []byte, s string) []byte {
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
