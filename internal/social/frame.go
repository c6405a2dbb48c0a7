package social

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// AppendFrame appends n's plain socket frame to b: a JSON object with every
// key present, ids as strings, action and affected in lower case, absent
// values null.
func AppendFrame(b []byte, n *Notification) []byte {
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

// AppendFrames appends to frames the plain socket frame of each of ns, as
// AppendFrame encodes it. The frames share one backing array, allocated
// once for all of them (a frame built alone grows its buffer several
// times), so that any one of them keeps the others' memory alive.
func AppendFrames(frames [][]byte, ns []Notification) [][]byte {
	size := 0
	for i := range ns {
		size += frameSizeHint(&ns[i])
	}
	buf := make([]byte, 0, size)
	frames = slices.Grow(frames, len(ns))
	for i := range ns {
		start := len(buf)
		buf = AppendFrame(buf, &ns[i])
		frames = append(frames, buf[start:len(buf):len(buf)])
	}
	return frames
}

// frameSizeHint is about the size of n's frame, usually a little more: its
// keys, ids and time take at most 230 bytes; its strings, their length
// (more when they must be escaped).
func frameSizeHint(n *Notification) int {
	return 230 + len(n.Message) + len(n.Action) + len(n.ByUser) + len(n.ActionContent) + len(n.Affected)
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
