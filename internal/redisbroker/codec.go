package redisbroker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// wireVersion is the first byte of every message the broker publishes. A
// process that reads a version it does not know treats the message as lost
// (see Broker), so a rolling upgrade that changes the format costs a resync,
// not a crash.
const wireVersion = 4

// Bits of the flags byte.
const (
	flagNotification = 1 << iota // a Notification follows
	flagRead                     // Notification.Read
	flagPublishedAt              // PublishedAt follows (it is not zero)
	flagExpiresAt                // ExpiresAt follows (it is not zero)
	flagChange                   // a Change follows
)

// errMalformed is returned by decodeEvent for a payload it cannot read.
var errMalformed = errors.New("malformed event")

// appendEvent appends the wire encoding of ev to b:
//
//	version      byte (wireVersion)
//	kind         byte
//	user         varint
//	message      uvarint length, bytes (Message)
//	session      varint (SessionID)
//	flags        byte (flagNotification, flagRead, flagPublishedAt, flagExpiresAt, flagChange)
//	published    time, if flagPublishedAt (PublishedAt)
//	expires      time, if flagExpiresAt (ExpiresAt)
//	notification if flagNotification
//	change       if flagChange
//
// where a time is one byte of length and time.Time.AppendBinary's encoding
// (the instant to the nanosecond and the zone offset), and the notification
// is ID, Seq, RecipientID as varints; Message and Action as strings (uvarint
// length, bytes); ActionID varint; ByUser, ActionContent and Affected as
// strings; AffectedID varint; CreatedAt as a time; and the change is ID,
// Seq as varints, Kind as a string, IDs as a uvarint count and varints,
// UnreadCount as a varint (its RecipientID is UserID, its Notification the
// event's).
//
// It fails only for a time whose zone offset time.Time cannot encode.
func appendEvent(b []byte, ev *social.Event) ([]byte, error) {
	b = append(b, wireVersion, byte(ev.Kind))
	b = binary.AppendVarint(b, ev.UserID)
	b = appendString(b, ev.Message)
	b = binary.AppendVarint(b, ev.SessionID)
	n := ev.Notification
	var flags byte
	if n != nil {
		flags |= flagNotification
		if n.Read {
			flags |= flagRead
		}
	}
	if !ev.PublishedAt.IsZero() {
		flags |= flagPublishedAt
	}
	if !ev.ExpiresAt.IsZero() {
		flags |= flagExpiresAt
	}
	if ev.Change != nil {
		flags |= flagChange
	}
	b = append(b, flags)
	var err error
	if flags&flagPublishedAt != 0 {
		if b, err = appendTime(b, ev.PublishedAt); err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
	}
	if flags&flagExpiresAt != 0 {
		if b, err = appendTime(b, ev.ExpiresAt); err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
	}
	if n != nil {
		if b, err = appendNotification(b, n); err != nil {
			return nil, err
		}
	}
	if c := ev.Change; c != nil {
		b = binary.AppendVarint(b, c.ID)
		b = binary.AppendVarint(b, c.Seq)
		b = appendString(b, string(c.Kind))
		b = binary.AppendUvarint(b, uint64(len(c.IDs)))
		for _, id := range c.IDs {
			b = binary.AppendVarint(b, id)
		}
		b = binary.AppendVarint(b, int64(c.UnreadCount))
	}
	return b, nil
}

func appendNotification(b []byte, n *social.Notification) ([]byte, error) {
	var err error
	b = binary.AppendVarint(b, n.ID)
	b = binary.AppendVarint(b, n.Seq)
	b = binary.AppendVarint(b, n.RecipientID)
	b = appendString(b, n.Message)
	b = appendString(b, string(n.Action))
	b = binary.AppendVarint(b, n.ActionID)
	b = appendString(b, n.ByUser)
	b = appendString(b, n.ActionContent)
	b = appendString(b, string(n.Affected))
	b = binary.AppendVarint(b, n.AffectedID)
	if b, err = appendTime(b, n.CreatedAt); err != nil {
		return nil, fmt.Errorf("encode notification %d: %w", n.ID, err)
	}
	return b, nil
}

// maxFixedSize bounds the bytes of an encoded event other than its byte
// slices, strings and change ids: 1+1 bytes, 9 varints of at most 10 bytes
// each, 9 lengths of at most 10, the flags and 3 times of at most 17.
const maxFixedSize = 2 + 9*10 + 9*10 + 1 + 3*17

// encodedSize returns at least the length of ev's encoding.
func encodedSize(ev *social.Event) int {
	size := maxFixedSize + len(ev.Message)
	if n := ev.Notification; n != nil {
		size += len(n.Message) + len(n.Action) + len(n.ByUser) + len(n.ActionContent) + len(n.Affected)
	}
	if c := ev.Change; c != nil {
		size += len(c.Kind) + 10*len(c.IDs)
	}
	return size
}

// appendTime appends t's length-prefixed binary encoding, at most 16 bytes:
// its length fits the one byte reserved for it.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	at := len(b)
	b, err := t.AppendBinary(append(b, 0))
	if err != nil {
		return nil, err
	}
	b[at] = byte(len(b) - at - 1)
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeEvent decodes a payload that appendEvent encoded. The strings of
// Message and the Notification share payload's memory. An
// EventNotification or EventMessage gets Encodings of its own, shared by
// its subscribers in this process. It returns errMalformed for anything
// else, including trailing bytes.
func decodeEvent(payload string) (social.Event, error) {
	r := reader{s: payload}
	if r.byte() != wireVersion {
		return social.Event{}, fmt.Errorf("%w: unknown version", errMalformed)
	}
	ev := social.Event{Kind: social.EventKind(r.byte()), UserID: r.varint()}
	ev.Message = r.string()
	if ev.Kind == social.EventNotification || ev.Kind == social.EventMessage {
		ev.Encodings = new(social.Encodings)
	}
	ev.SessionID = r.varint()
	flags := r.byte()
	if flags&flagPublishedAt != 0 {
		ev.PublishedAt = r.time()
	}
	if flags&flagExpiresAt != 0 {
		ev.ExpiresAt = r.time()
	}
	if flags&flagNotification != 0 {
		ev.Notification = &social.Notification{
			ID:          r.varint(),
			Seq:         r.varint(),
			RecipientID: r.varint(),
			Message:     r.string(),
			Action:      social.Action(r.string()),
			ActionID:    r.varint(),
			ByUser:      r.string(),

			ActionContent: r.string(),
			Affected:      social.ContentKind(r.string()),
			AffectedID:    r.varint(),
			Read:          flags&flagRead != 0,
			CreatedAt:     r.time(),
		}
	}
	if flags&flagChange != 0 {
		c := &social.Change{ID: r.varint(), Seq: r.varint(), RecipientID: ev.UserID, Kind: social.ChangeKind(r.string())}
		if n := r.uvarint(); n <= uint64(len(r.s)-r.i) {
			c.IDs = make([]int64, n)
			for i := range c.IDs {
				c.IDs[i] = r.varint()
			}
		} else {
			r.bad = true
		}
		c.UnreadCount = int(r.varint())
		c.Notification = ev.Notification
		ev.Change = c
	}
	if r.bad || r.i != len(r.s) {
		return social.Event{}, errMalformed
	}
	return ev, nil
}

// reader reads appendEvent's encoding from s, at offset i. After the first
// error it sets bad and returns zero values. (Advancing an offset rather
// than reslicing s keeps pointer writes, and their write barriers, out of
// the loop.)
type reader struct {
	s   string
	i   int
	bad bool
}

func (r *reader) byte() byte {
	if r.i >= len(r.s) {
		r.bad = true
		return 0
	}
	r.i++
	return r.s[r.i-1]
}

func (r *reader) uvarint() uint64 {
	var x uint64
	for shift := 0; shift < 64 && r.i < len(r.s); shift += 7 {
		c := r.s[r.i]
		r.i++
		if c < 0x80 {
			if shift == 63 && c > 1 {
				break
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
	r.bad = true
	return 0
}

func (r *reader) varint() int64 {
	ux := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.s)-r.i) {
		r.bad = true
		return ""
	}
	r.i += int(n)
	return r.s[r.i-int(n) : r.i]
}

func (r *reader) time() time.Time {
	var t time.Time
	if s := r.string(); !r.bad && t.UnmarshalBinary([]byte(s)) != nil {
		r.bad = true
	}
	return t
}
