package soak

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// inbox is the model of one user's inbox (docs/api.md, "The inbox change
// stream" and "Grouped notifications"): the notifications there now, and
// every change it went through, each with the unread count and the groups
// it touched as they were right after it.
type inbox struct {
	notes   []*note  // there now, oldest first (ids grow with each addition)
	changes []change // every change, in order
	pending []op     // of the action under way
}

// note is one notification in the model: what a client sees of it.
type note struct {
	key     string // notificationKey
	group   string // its group's key
	actor   string
	message string
	read    bool
	// removedAt is the index of the change that removed it, 0 while it is
	// there (a change that removes follows the one that added).
	removedAt int
}

// change is one change of the model's inbox.
type change struct {
	kind   string  // ADDED, REMOVED, READ
	notes  []*note // ADDED: the one added; REMOVED, READ: those changed
	unread int
	groups map[string]groupView // the groups it touched, right after it
}

// op is what an action does to the inbox, applied by flush.
type op struct {
	kind string // as change.kind
	n    *note
}

// groupView is what the checks compare of a NotificationGroup.
type groupView struct {
	Key                                        string
	NotificationCount, ActorCount, UnreadCount int
	SampleActors                               []string
	Message                                    string
}

func (g groupView) String() string {
	b, _ := json.Marshal(g)
	return string(b)
}

const groupViewFields = `key notificationCount actorCount unreadCount sampleActors message`

// verbOf is what docs/api.md says a notification's message says after its
// actor's name.
func verbOf(action string, affected *string) string {
	switch action + "|" + deref(affected) {
	case "POST|":
		return "created a new post"
	case "FOLLOWING|":
		return "started following you"
	}
	return verbs[action+"|"+deref(affected)]
}

// groupKey is the key of the group a notification belongs to, as the
// server names it; followedOn is the UTC day of a follow's notification.
func groupKey(action, actionID string, affected, affectedID *string, followedOn time.Time) string {
	id := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	n := social.Notification{Action: social.Action(action), CreatedAt: followedOn}
	switch action {
	case "POST":
		n.ActionID = id(actionID)
	case "FOLLOWING":
	default:
		n.Affected, n.AffectedID = social.ContentKind(*affected), id(*affectedID)
	}
	return social.GroupKey(n)
}

// flush applies the ops of one action: one change per kind in a row (an
// action that removes several notifications of a user is one REMOVED
// change; a reaction that changes kind is REMOVED then ADDED).
func (ib *inbox) flush() {
	var cur *change
	end := func() {
		if cur == nil {
			return
		}
		cur.unread = 0
		for _, n := range ib.notes {
			if !n.read {
				cur.unread++
			}
		}
		cur.groups = map[string]groupView{}
		for _, n := range cur.notes {
			cur.groups[n.group] = ib.group(n.group)
			if cur.kind == "REMOVED" {
				n.removedAt = len(ib.changes)
			}
		}
		ib.changes = append(ib.changes, *cur)
		cur = nil
	}
	for _, o := range ib.pending {
		if cur != nil && (cur.kind != o.kind || o.kind == "ADDED") {
			end()
		}
		switch o.kind {
		case "ADDED":
			ib.notes = append(ib.notes, o.n)
		case "REMOVED":
			ib.notes = slices.DeleteFunc(ib.notes, func(n *note) bool { return n == o.n })
		case "READ":
			o.n.read = true
		}
		if cur == nil {
			cur = &change{kind: o.kind}
		}
		cur.notes = append(cur.notes, o.n)
	}
	end()
	ib.pending = ib.pending[:0]
}

// unread returns the notifications there now that are unread.
func (ib *inbox) unread(keep func(*note) bool) []*note {
	var out []*note
	for _, n := range ib.notes {
		if !n.read && keep(n) {
			out = append(out, n)
		}
	}
	return out
}

// group returns the group with this key as docs/api.md says it is now.
func (ib *inbox) group(key string) groupView {
	g := groupView{Key: key, SampleActors: []string{}}
	var latest *note
	for i := len(ib.notes) - 1; i >= 0; i-- {
		n := ib.notes[i]
		if n.group != key {
			continue
		}
		if latest == nil {
			latest = n
		}
		g.NotificationCount++
		if !n.read {
			g.UnreadCount++
		}
		if !slices.Contains(g.SampleActors, n.actor) {
			g.SampleActors = append(g.SampleActors, n.actor) // all of them, cut below
		}
	}
	g.ActorCount = len(g.SampleActors)
	switch {
	case g.ActorCount == 1:
		g.Message = latest.message
	case g.ActorCount > 1:
		verb := strings.TrimPrefix(latest.message, latest.actor+" ")
		others := g.SampleActors[1]
		if g.ActorCount > 2 {
			others = fmt.Sprintf("%d others", g.ActorCount-1)
		}
		g.Message = fmt.Sprintf("%s and %s %s", g.SampleActors[0], others, verb)
	}
	g.SampleActors = g.SampleActors[:min(3, len(g.SampleActors))]
	return g
}

// groups returns the non-empty groups there now, by key.
func (ib *inbox) groups() map[string]groupView {
	out := map[string]groupView{}
	for _, n := range ib.notes {
		if _, ok := out[n.group]; !ok {
			out[n.group] = ib.group(n.group)
		}
	}
	return out
}

// gotChange is one change a socket received.
type gotChange struct {
	Cursor int64
	Kind   string  // ADDED, REMOVED, READ
	IDs    []int64 // ADDED: the notification's id
	Key    string  // ADDED: the notification's notificationKey
	Unread int
	Groups []groupView // nil over the plain socket, which sends none
}

func (c gotChange) String() string {
	return fmt.Sprintf("%s cursor %d ids %v %s unread %d groups %v", c.Kind, c.Cursor, c.IDs, c.Key, c.Unread, c.Groups)
}

func (c change) String() string {
	keys := make([]string, len(c.notes))
	for i, n := range c.notes {
		keys[i] = n.key
	}
	gs := make([]string, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g.String())
	}
	slices.Sort(gs)
	return fmt.Sprintf("%s %v unread %d groups %v", c.kind, keys, c.unread, gs)
}

// align walks a socket's changes, in the order it received them, along
// the model's from the first: each must be the model's next change, but
// for an ADDED change whose notification a later change removed, which a
// replay leaves out. It binds each id it learns to its notification in
// bound, shared by every socket of the user, and returns how many of the
// model's changes the socket has passed and what differs (it stops at the
// first change it cannot place).
func (ib *inbox) align(got []gotChange, bound map[int64]*note) (passed int, problems []string) {
	i := 0
	for _, g := range got {
		for ; i < len(ib.changes); i++ {
			m := ib.changes[i]
			if same(g, m, bound) {
				break
			}
			if m.kind != "ADDED" || m.notes[0].removedAt <= i {
				return i, append(problems, fmt.Sprintf("change %d of the model is\n  %v\nthe socket got\n  %v", i, m, g))
			}
		}
		if i == len(ib.changes) {
			return i, append(problems, fmt.Sprintf("after the model's last change, the socket got\n  %v", g))
		}
		m := ib.changes[i]
		if m.kind == "ADDED" {
			if n, ok := bound[g.IDs[0]]; ok && n != m.notes[0] {
				problems = append(problems, fmt.Sprintf("id %d is %s and %s", g.IDs[0], n.key, m.notes[0].key))
			}
			bound[g.IDs[0]] = m.notes[0]
		}
		if g.Unread != m.unread {
			problems = append(problems, fmt.Sprintf("change %d (cursor %d): unread count %d, the model's %d", i, g.Cursor, g.Unread, m.unread))
		}
		if g.Groups != nil {
			if d := diffGroups(m.groups, g.Groups); d != "" {
				problems = append(problems, fmt.Sprintf("change %d (cursor %d, %s): groups differ from the model's:\n%s", i, g.Cursor, g.Kind, d))
			}
		}
		i++
	}
	return i, problems
}

// same reports whether g is the model's change m: the same kind, and the
// same notification (ADDED) or as many whose ids are those it knows.
func same(g gotChange, m change, bound map[int64]*note) bool {
	if g.Kind != m.kind || len(g.IDs) != len(m.notes) {
		return false
	}
	if m.kind == "ADDED" {
		return g.Key == m.notes[0].key
	}
	for _, id := range g.IDs {
		if n, ok := bound[id]; ok && !slices.Contains(m.notes, n) {
			return false
		}
	}
	return true
}

// diffGroups lists how got differs from want, "" if not at all.
func diffGroups(want map[string]groupView, got []groupView) string {
	var out []string
	seen := map[string]bool{}
	for _, g := range got {
		seen[g.Key] = true
		w, ok := want[g.Key]
		switch {
		case !ok:
			out = append(out, "  not in the model: "+g.String())
		case w.String() != g.String():
			out = append(out, "  got  "+g.String()+"\n  want "+w.String())
		}
	}
	for k, w := range want {
		if !seen[k] {
			out = append(out, "  missing: "+w.String())
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
