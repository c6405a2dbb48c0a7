package plainws

import (
	"strconv"

	"github.com/pulse-social/pulse/internal/social"
)

// The frames of ?changes=1 (docs/api.md, "The inbox change stream"): an
// ADDED change is today's notification frame with three more keys; the
// other kinds are
//
//	{"type":"removed","cursor":"41","ids":["12","17"],"unread_count":3}
//	{"type":"read","cursor":"42","ids":["18"],"unread_count":0}

// extendAdded turns frame, a notification frame (appendFrame) that
// the caller owns, into c's ADDED frame: it adds "type", "cursor" and
// "unread_count" before the closing brace.
func extendAdded(frame []byte, c *social.Change) []byte {
	b := append(frame[:len(frame)-1], `,"type":"notification","cursor":"`...)
	b = strconv.AppendInt(b, c.ID, 10)
	b = append(b, `","unread_count":`...)
	b = strconv.AppendInt(b, int64(c.UnreadCount), 10)
	return append(b, '}')
}

// appendChangeFrame appends the frame of a REMOVED or READ change to b.
func appendChangeFrame(b []byte, c *social.Change) []byte {
	b = append(b, `{"type":"`...)
	if c.Kind == social.ChangeRemoved {
		b = append(b, "removed"...)
	} else {
		b = append(b, "read"...)
	}
	b = append(b, `","cursor":"`...)
	b = strconv.AppendInt(b, c.ID, 10)
	b = append(b, `","ids":[`...)
	for i, id := range c.IDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, id, 10)
		b = append(b, '"')
	}
	b = append(b, `],"unread_count":`...)
	b = strconv.AppendInt(b, int64(c.UnreadCount), 10)
	return append(b, '}')
}
