package social

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxSampleActors is how many actors a Group names at most.
const MaxSampleActors = 3

// Group is a set of notifications of one user that read as one line: the
// reactions to one post or comment, the comments on one post, the replies
// to one comment, the follows of one UTC day, or a post notification alone.
// Key names it for its whole life; the rest is its state at one moment.
type Group struct {
	Key        string
	Action     Action
	Affected   ContentKind // "" for POST and FOLLOWING
	AffectedID int64
	// NotificationCount is 0 once every notification of the group was
	// removed; Latest is nil then, and Message "".
	NotificationCount int
	ActorCount        int
	// SampleActors are usernames, most recent first, distinct, at most
	// MaxSampleActors.
	SampleActors []string
	Message      string
	Latest       *Notification
	UnreadCount  int
	// UpdatedAt is when the newest notification was added, or when the
	// last one was removed.
	UpdatedAt time.Time
}

// GroupKey returns the key of the group that n belongs to.
func GroupKey(n Notification) string {
	switch n.Action {
	case ActionFollowing:
		return string(ActionFollowing) + ":" + n.CreatedAt.UTC().Format(time.DateOnly)
	case ActionPost:
		return string(ActionPost) + ":" + strconv.FormatInt(n.ActionID, 10)
	}
	return string(n.Action) + ":" + string(n.Affected) + ":" + strconv.FormatInt(n.AffectedID, 10)
}

// groupOfKey returns the empty group of a key GroupKey made, and whether
// the key is one.
func groupOfKey(key string) (Group, bool) {
	parts := strings.Split(key, ":")
	g := Group{Key: key, Action: Action(parts[0])}
	switch {
	case g.Action == ActionFollowing && len(parts) == 2:
		_, err := time.Parse(time.DateOnly, parts[1])
		return g, err == nil
	case g.Action == ActionPost && len(parts) == 2:
		_, err := strconv.ParseInt(parts[1], 10, 64)
		return g, err == nil
	case (g.Action == ActionReaction || g.Action == ActionComment) && len(parts) == 3:
		g.Affected = ContentKind(parts[1])
		var err error
		g.AffectedID, err = strconv.ParseInt(parts[2], 10, 64)
		return g, err == nil && (g.Affected == ContentPost || g.Affected == ContentComment)
	}
	return g, false
}

// ValidGroupKey reports whether key is one that GroupKey makes.
func ValidGroupKey(key string) bool {
	_, ok := groupOfKey(key)
	return ok
}

// GroupActor is one of a group's most recent actors, as stores find them.
type GroupActor struct {
	Username string
	LatestID int64 // the ID of the actor's newest notification in the group
}

// GroupTotals are a group's counts: distinct actors, notifications, and
// unread notifications.
type GroupTotals struct {
	Actors, Notifications, Unread int
}

// NewGroupOf returns the state of the group with this key from its totals,
// its most recent actors (the first MaxSampleActors, or all if there are
// fewer, most recent first) and its newest notification (nil when the
// group is empty). An empty group was updated at emptied, when its last
// notification was removed.
func NewGroupOf(key string, recent []GroupActor, t GroupTotals, latest *Notification, emptied time.Time) Group {
	g, _ := groupOfKey(key)
	g.ActorCount, g.NotificationCount, g.UnreadCount = t.Actors, t.Notifications, t.Unread
	g.SampleActors = []string{}
	for i, a := range recent {
		if i < MaxSampleActors {
			g.SampleActors = append(g.SampleActors, a.Username)
		}
	}
	g.UpdatedAt = emptied
	if latest != nil {
		g.Latest, g.UpdatedAt = latest, latest.CreatedAt
		g.Message = groupMessage(*latest, recent, t.Actors)
	}
	return g
}

// EmptyGroup returns the group with this key once its last notification
// is gone: no actors, no notifications, updated at emptied.
func EmptyGroup(key string, emptied time.Time) Group {
	return NewGroupOf(key, nil, GroupTotals{}, nil, emptied)
}

// groupMessage is latest's own message for one actor, "A and B <verb>" for
// two, and "A and n-1 others <verb>" for n, recent being the most recent
// actors.
func groupMessage(latest Notification, recent []GroupActor, n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return latest.Message
	}
	verb := strings.TrimPrefix(latest.Message, latest.ByUser+" ")
	// recent holds min(n, MaxSampleActors) actors when the store's totals
	// and actors agree; the message never indexes past what it holds.
	first := latest.ByUser
	if len(recent) > 0 {
		first = recent[0].Username
	}
	if n == 2 && len(recent) >= 2 {
		return first + " and " + recent[1].Username + " " + verb
	}
	return fmt.Sprintf("%s and %d others %s", first, n-1, verb)
}

// storedGroup is a Group as a change keeps it: without its newest
// notification's content, which may be deleted after the change.
type storedGroup struct {
	Key          string    `json:"key"`
	Count        int       `json:"count"`
	ActorCount   int       `json:"actors"`
	SampleActors []string  `json:"sample"`
	Message      string    `json:"message"`
	UnreadCount  int       `json:"unread"`
	UpdatedAt    time.Time `json:"updated_at"`
	LatestID     int64     `json:"latest,omitempty"`
}

// MarshalGroups returns the form in which stores keep a change's groups.
func MarshalGroups(gs []Group) (string, error) {
	out := make([]storedGroup, len(gs))
	for i, g := range gs {
		out[i] = storedGroup{
			Key: g.Key, Count: g.NotificationCount, ActorCount: g.ActorCount, SampleActors: g.SampleActors,
			Message: g.Message, UnreadCount: g.UnreadCount, UpdatedAt: g.UpdatedAt,
		}
		if g.Latest != nil {
			out[i].LatestID = g.Latest.ID
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("marshal groups: %w", err)
	}
	return string(b), nil
}

// UnmarshalGroups parses what MarshalGroups returned. Each group's Latest
// holds only the notification's ID: the store reads the notification with
// FillLatest.
func UnmarshalGroups(s string) ([]Group, error) {
	var in []storedGroup
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("unmarshal groups: %w", err)
	}
	gs := make([]Group, len(in))
	for i, x := range in {
		g, _ := groupOfKey(x.Key)
		g.NotificationCount, g.ActorCount, g.SampleActors = x.Count, x.ActorCount, x.SampleActors
		g.Message, g.UnreadCount, g.UpdatedAt = x.Message, x.UnreadCount, x.UpdatedAt.UTC()
		if x.LatestID != 0 {
			g.Latest = &Notification{ID: x.LatestID}
		}
		gs[i] = g
	}
	return gs, nil
}

// LatestIDs returns the IDs of the newest notifications of the groups of
// cs, for FillLatest.
func LatestIDs(cs []Change) []int64 {
	var ids []int64
	for _, c := range cs {
		for _, g := range c.Groups {
			if g.Latest != nil {
				ids = append(ids, g.Latest.ID)
			}
		}
	}
	return ids
}

// FillLatest replaces the Latest of each group of cs, as UnmarshalGroups
// left it, with the stored notification of that ID, or with nil when it has
// been removed since the change.
func FillLatest(cs []Change, stored map[int64]Notification) {
	for i := range cs {
		for j := range cs[i].Groups {
			g := &cs[i].Groups[j]
			if g.Latest == nil {
				continue
			}
			if n, ok := stored[g.Latest.ID]; ok {
				g.Latest = &n
			} else {
				g.Latest = nil
			}
		}
	}
}

// IsPostGroupKey reports whether key names a post notification's group,
// which holds that notification alone.
func IsPostGroupKey(key string) bool { return strings.HasPrefix(key, string(ActionPost)+":") }

// PostGroup returns the group of a post notification right after it was
// added: the notification alone, unread. Stores may derive an ADDED
// change's group from its notification with it rather than keep it.
func PostGroup(n *Notification) Group {
	return NewGroupOf(GroupKey(*n), []GroupActor{{Username: n.ByUser, LatestID: n.ID}},
		GroupTotals{Actors: 1, Notifications: 1, Unread: 1}, n, n.CreatedAt)
}

// ReadGroups reads the group of each of keys with read, in order. A store
// lists a page of keys and reads their groups in one snapshot, so each is
// as its key was listed: not empty.
func ReadGroups(keys []string, read func(key string) (Group, error)) ([]Group, error) {
	gs := make([]Group, 0, len(keys))
	for _, key := range keys {
		g, err := read(key)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// CheckChanges returns an error, before a store changes anything, if cs
// holds more than one REMOVED or READ change for one recipient: stores
// apply those before they read the groups they touched, so a second one
// would show in the groups of the first. An action makes one per recipient.
func CheckChanges(cs []Change) error {
	seen := make(map[int64]bool)
	for _, c := range cs {
		if c.Kind != ChangeRemoved && c.Kind != ChangeRead {
			continue
		}
		if seen[c.RecipientID] {
			return fmt.Errorf("append changes: a second REMOVED or READ change for recipient %d", c.RecipientID)
		}
		seen[c.RecipientID] = true
	}
	return nil
}
