package plainframe

import (
	"strconv"
	"sync"

	"github.com/pulse-social/pulse/internal/social"
)

// The frames of ?changes=1 (docs/api.md, "The inbox change stream"): an
// ADDED change is today's notification frame with three more keys; the
// other kinds are
//
//	{"type":"removed","cursor":"41","ids":["12","17"],"unread_count":3}
//	{"type":"read","cursor":"42","ids":["18"],"unread_count":0}

// extendAdded turns frame, a notification frame (AppendNotification) that
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

// bufs holds the buffers in which Write encodes the frames that are not a
// live notification's, which comes encoded.
var bufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// Write calls write with c's frame, unless c has none: with changes
// (?changes=1) the frame of any change, else the notification frame of an
// ADDED change. live is the event that brought c (nil for a change read
// from the store): the frame of its notification is encoded once, in its
// Encodings, for all of its recipient's sockets and streams in this
// process, and passed as it is without changes. Any other frame is encoded
// into a pooled buffer that is reused once write returns: write must not
// keep frame, nor change it.
func Write(c *social.Change, live *social.Event, changes bool, write func(frame []byte) error) error {
	if c.Kind != social.ChangeAdded && !changes {
		return nil
	}
	live = LiveNotification(live, c)
	if live != nil && !changes {
		return write(live.Encodings.Get(Notification{}, live))
	}
	bp := bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	switch {
	case c.Kind != social.ChangeAdded:
		buf = appendChangeFrame(buf, c)
	case live != nil:
		buf = extendAdded(append(buf, live.Encodings.Get(Notification{}, live)...), c)
	default:
		buf = AppendNotification(buf, c.Notification)
		if changes {
			buf = extendAdded(buf, c)
		}
	}
	err := write(buf)
	*bp = buf[:0]
	bufs.Put(bp)
	return err
}

// LiveNotification returns live if it is an EventNotification of c, an
// ADDED change, whose frame its Encodings may cache; else nil.
func LiveNotification(live *social.Event, c *social.Change) *social.Event {
	if live == nil || live.Kind != social.EventNotification || c.Kind != social.ChangeAdded || live.Notification == nil {
		return nil
	}
	return live
}
