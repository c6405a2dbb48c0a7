package social

import (
	"encoding/json"
	"strconv"
	"strings"
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
	b = append(b, strings.ToLower(string(n.Action))...)
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
		b = append(b, strings.ToLower(string(n.Affected))...)
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
	// for HTML safety) and cannot fail on a string.
	q, _ := json.Marshal(s)
	return append(b, q...)
}
