package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// A group's state is its totals (notifications, unread ones, distinct
// actors), its most recent actors and its newest notification (the most
// recent actor's). Every group but a post notification's keeps its totals
// and recent actors in its row of inbox_groups, and each actor's count in
// a row beside it; each change updates them, so that no change reads the
// whole group. A post notification's group is the notification alone; its
// state is read from the notification.

// recentActor is an entry of inbox_groups.recent.
type recentActor struct {
	User string `json:"u"`
	ID   int64  `json:"id"`
}

// groupState reads the totals and the most recent actors of the user's
// group with this key: none for a group that has no notifications.
func (r reader) groupState(ctx context.Context, userID int64, key string) (social.GroupTotals, []social.GroupActor, error) {
	var t social.GroupTotals
	if social.IsPostGroupKey(key) {
		err := r.q.QueryRowContext(ctx, `SELECT count(*), count(*), count(*) - coalesce(sum(read), 0)
			FROM notifications WHERE recipient_id = ? AND group_key = ?`, userID, key).Scan(&t.Actors, &t.Notifications, &t.Unread)
		if err != nil {
			return t, nil, fmt.Errorf("group %s: %w", key, err)
		}
		actors, err := r.recentActors(ctx, userID, key, t.Actors)
		return t, actors, err
	}
	var recent string
	err := r.q.QueryRowContext(ctx, `SELECT notifications, unread, actors, recent FROM inbox_groups
		WHERE recipient_id = ? AND group_key = ? AND actor = ''`, userID, key).Scan(&t.Notifications, &t.Unread, &t.Actors, &recent)
	if errors.Is(err, sql.ErrNoRows) {
		return social.GroupTotals{}, nil, nil
	}
	if err != nil {
		return t, nil, fmt.Errorf("group %s: %w", key, err)
	}
	var rs []recentActor
	if err := json.Unmarshal([]byte(recent), &rs); err != nil {
		return t, nil, fmt.Errorf("group %s: recent actors: %w", key, err)
	}
	actors := make([]social.GroupActor, len(rs))
	for i, a := range rs {
		actors[i] = social.GroupActor{Username: a.User, LatestID: a.ID}
	}
	return t, actors, nil
}

// recentActors walks the user's group with this key newest first until it
// has seen want distinct actors, and returns them, each with the ID of its
// newest notification.
func (r reader) recentActors(ctx context.Context, userID int64, key string, want int) ([]social.GroupActor, error) {
	want = min(want, social.MaxSampleActors)
	if want <= 0 {
		return nil, nil
	}
	rows, err := r.q.QueryContext(ctx, `SELECT e.by_user, n.id FROM `+notificationsFrom+`
		WHERE n.recipient_id = ? AND n.group_key = ? ORDER BY n.id DESC`, userID, key)
	if err != nil {
		return nil, fmt.Errorf("group %s: actors: %w", key, err)
	}
	defer rows.Close()
	actors := make([]social.GroupActor, 0, want)
	for len(actors) < want && rows.Next() {
		var a social.GroupActor
		if err := rows.Scan(&a.Username, &a.LatestID); err != nil {
			return nil, fmt.Errorf("group %s: actors: %w", key, err)
		}
		if !slices.ContainsFunc(actors, func(b social.GroupActor) bool { return b.Username == a.Username }) {
			actors = append(actors, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("group %s: actors: %w", key, err)
	}
	return actors, nil
}

// currentGroup reads the user's group with this key as it stands; an
// empty one was emptied then.
func (r reader) currentGroup(ctx context.Context, userID int64, key string, emptied time.Time) (social.Group, error) {
	t, recent, err := r.groupState(ctx, userID, key)
	if err != nil {
		return social.Group{}, err
	}
	return r.group(ctx, key, t, recent, emptied)
}

// group returns the group with these totals and recent actors; its newest
// notification, the most recent actor's, is read. An empty group was
// emptied then.
func (r reader) group(ctx context.Context, key string, t social.GroupTotals, recent []social.GroupActor, emptied time.Time) (social.Group, error) {
	var latest *social.Notification
	if len(recent) > 0 {
		n, err := scanNotification(r.q.QueryRowContext(ctx,
			`SELECT `+notificationColumns+` FROM `+notificationsFrom+` WHERE n.id = ?`, recent[0].LatestID))
		if err != nil {
			return social.Group{}, fmt.Errorf("group %s: latest: %w", key, err)
		}
		latest = &n
	}
	return social.NewGroupOf(key, recent, t, latest, emptied), nil
}

// groupRef names one recipient's group.
type groupRef struct {
	recipientID int64
	key         string
}

// touched is a notification that a REMOVED or READ change changed.
type touched struct {
	id      int64
	key     string
	unread  bool // before the change
	eventID int64
}

// groupWriter keeps the group rows of one AppendChanges up to date, change
// by change, and returns each change's groups as they are right after it.
// It reads a group's row once and writes it once, at flush.
type groupWriter struct {
	t       *tx
	emptied time.Time
	states  map[groupRef]*groupState
	order   []groupRef       // of states, as first read
	byUser  map[int64]string // by event id
}

// groupState is a group's row as the transaction changes it.
type groupState struct {
	totals social.GroupTotals
	recent []social.GroupActor
}

func newGroupWriter(t *tx, emptied time.Time) *groupWriter {
	return &groupWriter{t: t, emptied: emptied, states: make(map[groupRef]*groupState),
		byUser: make(map[int64]string)}
}

// state returns the group's state, read from its row the first time.
func (w *groupWriter) state(ctx context.Context, ref groupRef) (*groupState, error) {
	if st, ok := w.states[ref]; ok {
		return st, nil
	}
	t, recent, err := w.t.groupState(ctx, ref.recipientID, ref.key)
	if err != nil {
		return nil, err
	}
	st := &groupState{totals: t, recent: recent}
	w.states[ref] = st
	w.order = append(w.order, ref)
	return st, nil
}

// added records n, a notification not in a post's group, and returns its
// group right after its ADDED change: n is its newest, and n's actor its
// most recent.
func (w *groupWriter) added(ctx context.Context, n *social.Notification) (social.Group, error) {
	ref := groupRef{n.RecipientID, social.GroupKey(*n)}
	st, err := w.state(ctx, ref)
	if err != nil {
		return social.Group{}, err
	}
	joined, err := w.countActor(ctx, ref, n.ByUser, 1)
	if err != nil {
		return social.Group{}, err
	}
	st.totals.Notifications++
	st.totals.Unread++
	st.totals.Actors += joined
	recent := []social.GroupActor{{Username: n.ByUser, LatestID: n.ID}}
	for _, a := range st.recent {
		if a.Username != n.ByUser && len(recent) < social.MaxSampleActors {
			recent = append(recent, a)
		}
	}
	st.recent = recent
	return social.NewGroupOf(ref.key, st.recent, st.totals, n, w.emptied), nil
}

// changedAll records what the REMOVED or READ change c, just applied, did
// to the groups of ts, the notifications it removed or marked read, and
// returns those groups, by key, as they are right after it.
func (w *groupWriter) changedAll(ctx context.Context, c social.Change, ts []touched) ([]social.Group, error) {
	byKey := make(map[string][]touched)
	for _, x := range ts {
		byKey[x.key] = append(byKey[x.key], x)
	}
	gs := make([]social.Group, 0, len(byKey))
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		g, err := w.changed(ctx, c, key, byKey[key])
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// changed records what the REMOVED or READ change c, just applied, did to
// the group with this key, ts being the notifications of the group that it
// removed or marked read, and returns the group right after the change.
// The store holds no notification of the transaction's ADDED changes yet.
func (w *groupWriter) changed(ctx context.Context, c social.Change, key string, ts []touched) (social.Group, error) {
	ref := groupRef{c.RecipientID, key}
	if social.IsPostGroupKey(key) && c.Kind == social.ChangeRemoved {
		// A post notification's group is the notification alone: gone.
		return social.EmptyGroup(key, w.emptied), nil
	}
	if social.IsPostGroupKey(key) {
		return w.t.currentGroup(ctx, ref.recipientID, key, w.emptied)
	}
	st, err := w.state(ctx, ref)
	if err != nil {
		return social.Group{}, err
	}
	stale := false
	removedBy := make(map[string]int) // notifications removed, by actor
	for _, x := range ts {
		if x.unread {
			st.totals.Unread--
		}
		if c.Kind != social.ChangeRemoved {
			continue
		}
		st.totals.Notifications--
		user, err := w.actorOf(ctx, x.eventID)
		if err != nil {
			return social.Group{}, err
		}
		removedBy[user]++
		stale = stale || slices.ContainsFunc(st.recent, func(a social.GroupActor) bool { return a.LatestID == x.id })
	}
	for _, user := range slices.Sorted(maps.Keys(removedBy)) {
		left, err := w.countActor(ctx, ref, user, -removedBy[user])
		if err != nil {
			return social.Group{}, err
		}
		st.totals.Actors -= left
	}
	if stale {
		// A recent actor lost its newest notification: find the recent
		// actors again, among what is left.
		if st.recent, err = w.t.recentActors(ctx, ref.recipientID, key, st.totals.Actors); err != nil {
			return social.Group{}, err
		}
	}
	return w.t.group(ctx, key, st.totals, st.recent, w.emptied)
}

// flush writes the rows of the groups that the transaction changed: a
// group left without notifications loses its row.
func (w *groupWriter) flush(ctx context.Context) error {
	for _, ref := range w.order {
		st := w.states[ref]
		if st.totals.Notifications <= 0 {
			_, err := w.t.w.ExecContext(ctx, `DELETE FROM inbox_groups WHERE recipient_id = ? AND group_key = ? AND actor = ''`,
				ref.recipientID, ref.key)
			if err != nil {
				return fmt.Errorf("group %s: %w", ref.key, err)
			}
			continue
		}
		recent := make([]recentActor, len(st.recent))
		for i, a := range st.recent {
			recent[i] = recentActor{User: a.Username, ID: a.LatestID}
		}
		b, err := json.Marshal(recent)
		if err != nil {
			return fmt.Errorf("group %s: %w", ref.key, err)
		}
		_, err = w.t.w.ExecContext(ctx, `INSERT OR REPLACE INTO inbox_groups (recipient_id, group_key, actor, notifications, unread, actors, recent)
			VALUES (?, ?, '', ?, ?, ?, ?)`, ref.recipientID, ref.key, st.totals.Notifications, st.totals.Unread, st.totals.Actors, string(b))
		if err != nil {
			return fmt.Errorf("group %s: %w", ref.key, err)
		}
	}
	return nil
}

// countActor adds delta (1, or minus the notifications removed) to how
// many of the group's notifications user caused, and returns 1 when that
// made user join the group (delta 1) or leave it, 0 otherwise.
func (w *groupWriter) countActor(ctx context.Context, ref groupRef, user string, delta int) (int, error) {
	var count int
	err := w.t.w.QueryRowContext(ctx, `INSERT INTO inbox_groups (recipient_id, group_key, actor, notifications)
		VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET notifications = notifications + ?4
		RETURNING notifications`, ref.recipientID, ref.key, user, delta).Scan(&count)
	if err != nil {
		return 0, fmt.Errorf("group %s: actor: %w", ref.key, err)
	}
	switch {
	case delta > 0 && count == 1:
		return 1, nil
	case delta < 0 && count <= 0:
		_, err := w.t.w.ExecContext(ctx, `DELETE FROM inbox_groups WHERE recipient_id = ? AND group_key = ? AND actor = ?`,
			ref.recipientID, ref.key, user)
		if err != nil {
			return 0, fmt.Errorf("group %s: actor: %w", ref.key, err)
		}
		return 1, nil
	}
	return 0, nil
}

// actorOf returns the actor of the event with this id.
func (w *groupWriter) actorOf(ctx context.Context, eventID int64) (string, error) {
	if user, ok := w.byUser[eventID]; ok {
		return user, nil
	}
	var user string
	err := w.t.w.QueryRowContext(ctx, `SELECT by_user FROM notification_events WHERE id = ?`, eventID).Scan(&user)
	if err != nil {
		return "", fmt.Errorf("actor of event %d: %w", eventID, err)
	}
	w.byUser[eventID] = user
	return user, nil
}
