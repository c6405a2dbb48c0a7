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
const wireVersion = 5

// Bits of the flags byte.
const (
	flagNotification = 1 << iota // a Notification follows
	flagRead                     // Notification.Read
	flagPublishedAt              // PublishedAt follows (it is not zero)
	flagExpiresAt                // ExpiresAt follows (it is not zero)
	flagChange                   // a Change follows
	flagGroups                   // the Change's Groups follow it
)

// Bits of a group's flags byte.
const (
	groupLatest     = 1 << iota // the group's Latest follows
	groupLatestRead             // Latest.Read
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
//	flags        byte (flagNotification, flagRead, flagPublishedAt, flagExpiresAt, flagChange, flagGroups)
//	published    time, if flagPublishedAt (PublishedAt)
//	expires      time, if flagExpiresAt (ExpiresAt)
//	notification if flagNotification
//	change       if flagChange
//	groups       if flagGroups: a uvarint count and each group
//
// where a time is one byte of length and time.Time.AppendBinary's encoding
// (the instant to the nanosecond and the zone offset), and the notification
// is ID, Seq, RecipientID as varints; Message and Action as strings (uvarint
// length, bytes); ActionID varint; ByUser, ActionContent and Affected as
// strings; AffectedID varint; CreatedAt as a time; and the change is ID,
// Seq as varints, Kind as a string, IDs as a uvarint count and varints,
// UnreadCount as a varint (its RecipientID is UserID, its Notification the
// event's). A group is Key, Action and Affected as strings; AffectedID,
// NotificationCount and ActorCount as varints; SampleActors as a uvarint
// count and strings; Message as a string; UnreadCount as a varint;
// UpdatedAt as a time; a flags byte (groupLatest, groupLatestRead); and
// Latest as a notification, if groupLatest.
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
		if len(ev.Change.Groups) > 0 {
			flags |= flagGroups
		}
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
	if flags&flagGroups != 0 {
		b = binary.AppendUvarint(b, uint64(len(ev.Change.Groups)))
		for i := range ev.Change.Groups {
			if b, err = appendGroup(b, &ev.Change.Groups[i]); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func appendGroup(b []byte, g *social.Group) ([]byte, error) {
	b = appendString(b, g.Key)
	b = appendString(b, string(g.Action))
	b = appendString(b, string(g.Affected))
	b = binary.AppendVarint(b, g.AffectedID)
	b = binary.AppendVarint(b, int64(g.NotificationCount))
	b = binary.AppendVarint(b, int64(g.ActorCount))
	b = binary.AppendUvarint(b, uint64(len(g.SampleActors)))
	for _, a := range g.SampleActors {
		b = appendString(b, a)
	}
	b = appendString(b, g.Message)
	b = binary.AppendVarint(b, int64(g.UnreadCount))
	b, err := appendTime(b, g.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("encode group %s: %w", g.Key, err)
	}
	var flags byte
	if g.Latest != nil {
		flags |= groupLatest
		if g.Latest.Read {
			flags |= groupLatestRead
		}
	}
	b = append(b, flags)
	if g.Latest != nil {
		return appendNotification(b, g.Latest)
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
// slices, strings, change ids and groups: 1+1 bytes, 9 varints of at most
// 10 bytes each, 9 lengths of at most 10, the flags and 3 times of at most
// 17; and the count of its groups, at most 10.
const maxFixedSize = 2 + 9*10 + 9*10 + 1 + 3*17 + 10

// maxGroupFixedSize bounds the bytes of an encoded group other than its
// strings and its Latest: 4 varints and 5 lengths of at most 10 bytes
// each, a time of at most 17 and the flags; maxNotificationFixedSize, those
// of a notification other than its strings: 5 varints and 5 lengths of at
// most 10 and a time of at most 17.
const (
	maxGroupFixedSize        = 9*10 + 17 + 1
	maxNotificationFixedSize = 10*10 + 17
)

// encodedSize returns at least the length of ev's encoding.
func encodedSize(ev *social.Event) int {
	size := maxFixedSize + len(ev.Message)
	if n := ev.Notification; n != nil {
		size += notificationStrings(n)
	}
	if c := ev.Change; c != nil {
		size += len(c.Kind) + 10*len(c.IDs)
		for _, g := range c.Groups {
			size += maxGroupFixedSize + len(g.Key) + len(g.Action) + len(g.Affected) + len(g.Message)
			for _, a := range g.SampleActors {
				size += 10 + len(a)
			}
			if g.Latest != nil {
				size += maxNotificationFixedSize + notificationStrings(g.Latest)
			}
		}
	}
	return size
}

// notificationStrings is the length of n's strings.
func notificationStrings(n *social.Notification) int {
	return len(n.Message) + len(n.Action) + len(n.ByUser) + len(n.ActionContent) + len(n.Affected)
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
		ev.Notification = r.notification(flags&flagRead != 0)
	}
	if flags&flagChange != 0 {
		c := &social.Change{ID: r.varint(), Seq: r.varint(), RecipientID: ev.UserID, Kind: social.ChangeKind(r.string())}
		c.IDs = make([]int64, r.count())
		for i := range c.IDs {
			c.IDs[i] = r.varint()
		}
		c.UnreadCount = int(r.varint())
		c.Notification = ev.Notification
		ev.Change = c
	}
	if flags&flagGroups != 0 {
		if ev.Change == nil {
			return social.Event{}, fmt.Errorf("%w: groups without a change", errMalformed)
		}
		ev.Change.Groups = make([]social.Group, r.count())
		for i := range ev.Change.Groups {
			ev.Change.Groups[i] = r.group()
		}
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

func (r *reader) notification(read bool) *social.Notification {
	return &social.Notification{
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
		Read:          read,
		CreatedAt:     r.time(),
	}
}

func (r *reader) group() social.Group {
	g := social.Group{
		Key:               r.string(),
		Action:            social.Action(r.string()),
		Affected:          social.ContentKind(r.string()),
		AffectedID:        r.varint(),
		NotificationCount: int(r.varint()),
		ActorCount:        int(r.varint()),
	}
	g.SampleActors = make([]string, r.count())
	for i := range g.SampleActors {
		g.SampleActors[i] = r.string()
	}
	g.Message = r.string()
	g.UnreadCount = int(r.varint())
	g.UpdatedAt = r.time()
	if flags := r.byte(); flags&groupLatest != 0 {
		g.Latest = r.notification(flags&groupLatestRead != 0)
	}
	return g
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

// count reads the length of a list whose items take at least a byte each:
// one longer than the bytes left is malformed, and reads as 0.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.s)-r.i) {
		r.bad = true
		return 0
	}
	return int(n)
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
