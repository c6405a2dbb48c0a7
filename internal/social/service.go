package social

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// publishTimeout bounds how long an action waits for the broker after its
// commit; the events are stored, so subscribers that miss them catch up.
const publishTimeout = 2 * time.Second

// DefaultTokenTTL is how long an access token lives unless configured.
const DefaultTokenTTL = 30 * 24 * time.Hour

// Config tunes a Service. The zero value is ready to use.
type Config struct {
	// TokenTTL is how long an access token lives; 0 means DefaultTokenTTL.
	TokenTTL time.Duration
	// TokenRefreshGrace is how long a session's older tokens keep working
	// after RefreshToken; 0 means DefaultTokenRefreshGrace.
	TokenRefreshGrace time.Duration
	// PasswordCost is the bcrypt cost; 0 means bcrypt.DefaultCost. Tests use
	// bcrypt.MinCost.
	PasswordCost int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnPublishError is told when events of a committed action could not be
	// handed to the broker (subscribers catch up from the store when they
	// resume); nil ignores it.
	OnPublishError func(error)
	// OnStored is told how many notifications an action committed; nil
	// ignores it. It must not block.
	OnStored func(n int)
	// OnPublished is told how many notifications were handed to the broker
	// without error; nil ignores it. It must not block.
	OnPublished func(n int)
	// CacheSessions keeps live sessions in memory, so that Authenticate
	// reads the store once per token rather than once per request. Only
	// for a server that is the one process on its store: a logout through
	// another process would not reach this one's memory.
	CacheSessions bool
	// SessionCacheSize bounds the sessions kept; 0 means
	// DefaultSessionCacheSize.
	SessionCacheSize int
}

// Service runs every action of the social network: it validates input,
// writes the action and all of its notifications in one transaction, and
// publishes them after the commit.
type Service struct {
	store  Store
	broker Broker
	cfg    Config

	sessions *sessionCache // nil unless Config.CacheSessions

	dummyOnce sync.Once
	dummyHash []byte
}

// NewService returns a Service on the given store and broker. It starts no
// goroutines.
func NewService(store Store, broker Broker, cfg Config) *Service {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.TokenRefreshGrace == 0 {
		cfg.TokenRefreshGrace = DefaultTokenRefreshGrace
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{store: store, broker: broker, cfg: cfg}
	if cfg.CacheSessions {
		if cfg.SessionCacheSize <= 0 {
			cfg.SessionCacheSize = DefaultSessionCacheSize
		}
		s.sessions = newSessionCache(cfg.SessionCacheSize)
	}
	return s
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// Register creates an account and logs it in. A taken username is
// CodeConflict; a bad username or password is CodeBadUserInput.
func (s *Service) Register(ctx context.Context, username, password string) (User, string, error) {
	if err := ValidateUsername("username", username); err != nil {
		return User{}, "", err
	}
	if err := ValidatePassword("password", password); err != nil {
		return User{}, "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.PasswordCost)
	if err != nil {
		return User{}, "", err
	}
	token, tokenHash := newToken()
	now := s.now()
	var u User
	err = s.store.Update(ctx, func(tx Tx) error {
		var err error
		u, err = tx.CreateUser(ctx, User{Username: username, CreatedAt: now}, hash)
		if err != nil {
			return err
		}
		return tx.CreateSession(ctx, s.session(ctx, tokenHash, u.ID, now))
	})
	if err != nil {
		return User{}, "", err
	}
	return u, token, nil
}

func (s *Service) session(ctx context.Context, tokenHash []byte, userID int64, now time.Time) Session {
	return Session{
		TokenHash: tokenHash, UserID: userID, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(s.cfg.TokenTTL), UserAgent: userAgentFrom(ctx),
	}
}

var errBadCredentials = Errorf(CodeUnauthenticated, "wrong username or password")

// Login checks a username and password and returns a new access token, or
// CodeUnauthenticated.
func (s *Service) Login(ctx context.Context, username, password string) (User, string, error) {
	u, err := s.store.UserByUsername(ctx, username)
	if ErrorCode(err) == CodeNotFound {
		// Spend the time a real check takes, so that response times do not
		// tell which usernames exist.
		_ = bcrypt.CompareHashAndPassword(s.dummy(), []byte(password))
		return User{}, "", errBadCredentials
	}
	if err != nil {
		return User{}, "", err
	}
	hash, err := s.store.PasswordHash(ctx, u.ID)
	if err != nil {
		return User{}, "", err
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return User{}, "", errBadCredentials
	}
	token, tokenHash := newToken()
	err = s.store.Update(ctx, func(tx Tx) error {
		return tx.CreateSession(ctx, s.session(ctx, tokenHash, u.ID, s.now()))
	})
	if err != nil {
		return User{}, "", err
	}
	return u, token, nil
}

func (s *Service) dummy() []byte {
	s.dummyOnce.Do(func() {
		s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not anybody's password"), s.cfg.PasswordCost)
	})
	return s.dummyHash
}

// Logout ends the session of the caller of ctx (see EndSession). Without
// a caller it is CodeUnauthenticated.
func (s *Service) Logout(ctx context.Context) error {
	a, ok := AuthFrom(ctx)
	if !ok {
		return errSignIn
	}
	_, err := s.endSessions(ctx, a.User.ID, a.SessionID)
	return err
}

// errInvalidToken refuses a bad, expired or revoked token or ticket.
var errInvalidToken = Errorf(CodeUnauthenticated, "invalid access token")

// Authenticate returns the caller of a live access token: its user, the
// token's hash, its session and when the token expires; or
// CodeUnauthenticated. It marks the session used (see touch).
func (s *Service) Authenticate(ctx context.Context, token string) (Auth, error) {
	if token == "" {
		return Auth{}, errInvalidToken
	}
	hash := HashToken(token)
	now := s.now()
	var epoch uint64
	if s.sessions != nil {
		e, ep, ok := s.sessions.get(hash, now)
		if ok {
			a := Auth{User: e.user, TokenHash: hash, SessionID: e.sessionID, ExpiresAt: e.expires}
			s.touch(ctx, hash, a.SessionID, e.lastUsed, now)
			return a, nil
		}
		epoch = ep
	}
	su, err := s.store.SessionUser(ctx, hash, now)
	if ErrorCode(err) == CodeNotFound {
		return Auth{}, errInvalidToken
	}
	if err != nil {
		return Auth{}, err
	}
	if s.sessions != nil {
		s.sessions.put(hash, su, epoch)
	}
	s.touch(ctx, hash, su.Session.ID, su.Session.LastUsedAt, now)
	return Auth{User: su.User, TokenHash: hash, SessionID: su.Session.ID, ExpiresAt: su.ExpiresAt}, nil
}

// TokenFromAuthorization returns the token of an Authorization value:
// "Bearer <token>" (the scheme in any case) or a bare token.
func TokenFromAuthorization(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return v
}

// CreatePost publishes a post and notifies every follower of its author.
func (s *Service) CreatePost(ctx context.Context, author User, body string) (Post, error) {
	if err := ValidateText("body", body, PostBodyMaxLen); err != nil {
		return Post{}, err
	}
	var p Post
	err := s.act(ctx, func(tx Tx, now time.Time) (effects, error) {
		var err error
		p, err = tx.CreatePost(ctx, Post{AuthorID: author.ID, Body: body, CreatedAt: now})
		if err != nil {
			return effects{}, err
		}
		followers, err := tx.FollowerIDs(ctx, author.ID)
		if err != nil {
			return effects{}, err
		}
		return effects{add: PostNotifications(author, p, followers)}, nil
	})
	return p, err
}

// CreateComment comments on a post, as a reply to another comment of the
// same post when parentID is not 0, and notifies the authors concerned.
func (s *Service) CreateComment(ctx context.Context, author User, postID int64, body string, parentID int64) (Comment, error) {
	if err := ValidateText("body", body, CommentBodyMaxLen); err != nil {
		return Comment{}, err
	}
	var c Comment
	err := s.act(ctx, func(tx Tx, now time.Time) (effects, error) {
		post, err := tx.PostByID(ctx, postID)
		if err != nil {
			return effects{}, err
		}
		var parent *Comment
		if parentID != 0 {
			pc, err := tx.CommentByID(ctx, parentID)
			if err != nil {
				return effects{}, err
			}
			if pc.PostID != postID {
				return effects{}, InputError("parentId", "the parent comment belongs to another post")
			}
			parent = &pc
		}
		c, err = tx.CreateComment(ctx, Comment{PostID: postID, ParentID: parentID, AuthorID: author.ID, Body: body, CreatedAt: now})
		if err != nil {
			return effects{}, err
		}
		return effects{add: CommentNotifications(author, c, post, parent)}, nil
	})
	return c, err
}

// React sets the user's reaction to a post or comment. Another kind than
// the current one changes it: the notification of the old kind is removed
// and one of the new kind added. The same kind changes nothing and
// notifies nobody.
func (s *Service) React(ctx context.Context, actor User, target ContentKind, targetID int64, kind ReactionKind) (Reaction, error) {
	if !kind.Valid() {
		return Reaction{}, InputError("kind", "unknown reaction kind %q", kind)
	}
	var r Reaction
	err := s.act(ctx, func(tx Tx, now time.Time) (effects, error) {
		authorID, err := targetAuthor(ctx, tx, target, targetID)
		if err != nil {
			return effects{}, err
		}
		var e effects
		// A new reaction is the common case: insert it, and read the one
		// there only when there is one (a conflict leaves the transaction
		// usable on both stores).
		r, err = tx.CreateReaction(ctx, Reaction{UserID: actor.ID, Kind: kind, TargetKind: target, TargetID: targetID, CreatedAt: now})
		if ErrorCode(err) == CodeConflict {
			if r, err = tx.ReactionOf(ctx, actor.ID, target, targetID); err != nil {
				return effects{}, err
			}
			if r.Kind == kind {
				return effects{}, nil
			}
			if err := tx.SetReactionKind(ctx, r.ID, kind); err != nil {
				return effects{}, err
			}
			r.Kind = kind
			e.remove = []Cause{{ActionReaction, r.ID}}
		} else if err != nil {
			return effects{}, err
		}
		e.add = ReactionNotifications(actor, r, authorID)
		return e, nil
	})
	if err != nil {
		return Reaction{}, err
	}
	return r, nil
}

// Unreact removes the user's reaction to a post or comment and its
// notification, and reports whether there was one. An unknown target is
// CodeNotFound.
func (s *Service) Unreact(ctx context.Context, actor User, target ContentKind, targetID int64) (bool, error) {
	var had bool
	err := s.act(ctx, func(tx Tx, _ time.Time) (effects, error) {
		if _, err := targetAuthor(ctx, tx, target, targetID); err != nil {
			return effects{}, err
		}
		r, err := tx.ReactionOf(ctx, actor.ID, target, targetID)
		if ErrorCode(err) == CodeNotFound {
			had = false
			return effects{}, nil
		}
		if err != nil {
			return effects{}, err
		}
		if err := tx.DeleteReaction(ctx, r.ID); err != nil {
			return effects{}, err
		}
		had = true
		return effects{remove: []Cause{{ActionReaction, r.ID}}}, nil
	})
	return had, err
}

// targetAuthor returns the author of the post or comment reacted to, or
// CodeNotFound.
func targetAuthor(ctx context.Context, tx Tx, target ContentKind, targetID int64) (int64, error) {
	switch target {
	case ContentPost:
		p, err := tx.PostByID(ctx, targetID)
		return p.AuthorID, err
	case ContentComment:
		c, err := tx.CommentByID(ctx, targetID)
		return c.AuthorID, err
	}
	return 0, InputError("targetKind", "unknown content kind %q", target)
}

// DeletePost deletes a post of the actor's, its comments and every reaction
// to them, and removes every notification they caused. An unknown post is
// CodeNotFound; someone else's is CodeForbidden.
func (s *Service) DeletePost(ctx context.Context, actor User, id int64) error {
	return s.act(ctx, func(tx Tx, _ time.Time) (effects, error) {
		p, err := tx.PostByID(ctx, id)
		if err != nil {
			return effects{}, err
		}
		if p.AuthorID != actor.ID {
			return effects{}, Errorf(CodeForbidden, "you can delete only your own posts")
		}
		d, err := tx.DeletePost(ctx, id)
		if err != nil {
			return effects{}, err
		}
		return effects{remove: append(d.causes(), Cause{ActionPost, id})}, nil
	})
}

// DeleteComment deletes a comment, every reply below it and every reaction
// to them, and removes every notification they caused. Only the comment's
// author and the post's author may: anyone else is CodeForbidden. An unknown
// comment is CodeNotFound.
func (s *Service) DeleteComment(ctx context.Context, actor User, id int64) error {
	return s.act(ctx, func(tx Tx, _ time.Time) (effects, error) {
		c, err := tx.CommentByID(ctx, id)
		if err != nil {
			return effects{}, err
		}
		if c.AuthorID != actor.ID {
			p, err := tx.PostByID(ctx, c.PostID)
			if err != nil {
				return effects{}, err
			}
			if p.AuthorID != actor.ID {
				return effects{}, Errorf(CodeForbidden, "you can delete only your own comments and those on your posts")
			}
		}
		d, err := tx.DeleteComment(ctx, id)
		if err != nil {
			return effects{}, err
		}
		return effects{remove: d.causes()}, nil
	})
}

// causes returns the causes of the notifications that deleted content had.
func (d Deleted) causes() []Cause {
	cs := make([]Cause, 0, len(d.CommentIDs)+len(d.ReactionIDs)+1)
	for _, id := range d.CommentIDs {
		cs = append(cs, Cause{ActionComment, id})
	}
	for _, id := range d.ReactionIDs {
		cs = append(cs, Cause{ActionReaction, id})
	}
	return cs
}

// Follow makes follower follow the user with this username and notifies
// them. Following oneself is CodeBadUserInput; following again is
// CodeConflict; an unknown username is CodeNotFound.
func (s *Service) Follow(ctx context.Context, follower User, username string) (User, error) {
	var followee User
	err := s.act(ctx, func(tx Tx, now time.Time) (effects, error) {
		var err error
		followee, err = s.followee(ctx, tx, follower, username)
		if err != nil {
			return effects{}, err
		}
		f, err := tx.CreateFollow(ctx, Follow{FollowerID: follower.ID, FolloweeID: followee.ID, CreatedAt: now})
		if ErrorCode(err) == CodeConflict {
			return effects{}, Errorf(CodeConflict, "you already follow %s", followee.Username)
		}
		if err != nil {
			return effects{}, err
		}
		return effects{add: FollowNotifications(follower, f)}, nil
	})
	if err != nil {
		return User{}, err
	}
	return followee, nil
}

// Unfollow stops follower following the user with this username and
// removes the follow's notification. Not following them is CodeConflict.
func (s *Service) Unfollow(ctx context.Context, follower User, username string) (User, error) {
	var followee User
	err := s.act(ctx, func(tx Tx, _ time.Time) (effects, error) {
		var err error
		followee, err = s.followee(ctx, tx, follower, username)
		if err != nil {
			return effects{}, err
		}
		id, err := tx.DeleteFollow(ctx, follower.ID, followee.ID)
		if err != nil {
			return effects{}, err
		}
		if id == 0 {
			return effects{}, Errorf(CodeConflict, "you do not follow %s", followee.Username)
		}
		return effects{remove: []Cause{{ActionFollowing, id}}}, nil
	})
	return followee, err
}

func (s *Service) followee(ctx context.Context, tx Tx, follower User, username string) (User, error) {
	u, err := tx.UserByUsername(ctx, username)
	if ErrorCode(err) == CodeNotFound {
		return User{}, Errorf(CodeNotFound, "no user named %q", username)
	}
	if err != nil {
		return User{}, err
	}
	if u.ID == follower.ID {
		return User{}, InputError("username", "you cannot follow yourself")
	}
	return u, nil
}

// effects are what an action does to inboxes: the notifications it adds,
// and the causes whose notifications it removes.
type effects struct {
	add    []Notification
	remove []Cause
}

// act runs an action in one transaction, with the changes to inboxes that
// its effects make, and publishes those changes after the commit.
func (s *Service) act(ctx context.Context, fn func(tx Tx, now time.Time) (effects, error)) error {
	var stored []Change
	err := s.store.Update(ctx, func(tx Tx) error {
		stored = nil
		now := s.now()
		e, err := fn(tx, now)
		if err != nil {
			return err
		}
		var cs []Change
		if len(e.remove) > 0 {
			removed, err := tx.NotificationsCausedBy(ctx, e.remove)
			if err != nil {
				return err
			}
			cs = removals(removed)
		}
		for i := range e.add {
			e.add[i].CreatedAt = now
			cs = append(cs, Change{Kind: ChangeAdded, RecipientID: e.add[i].RecipientID, Notification: &e.add[i]})
		}
		if len(cs) == 0 {
			return nil
		}
		stored, err = tx.AppendChanges(ctx, cs)
		return err
	})
	if err != nil {
		return err
	}
	if n := len(stored) - countRemovals(stored); n > 0 && s.cfg.OnStored != nil {
		s.cfg.OnStored(n)
	}
	s.publishChanges(ctx, stored)
	return nil
}

// removals returns one REMOVED change per recipient of ns, in the order of
// their first notification.
func removals(ns []Notification) []Change {
	var cs []Change
	at := make(map[int64]int)
	for _, n := range ns {
		i, ok := at[n.RecipientID]
		if !ok {
			i = len(cs)
			at[n.RecipientID] = i
			cs = append(cs, Change{Kind: ChangeRemoved, RecipientID: n.RecipientID})
		}
		cs[i].IDs = append(cs[i].IDs, n.ID)
	}
	return cs
}

func countRemovals(cs []Change) int {
	n := 0
	for _, c := range cs {
		if c.Kind != ChangeAdded {
			n++
		}
	}
	return n
}

// publishChanges publishes committed changes: an ADDED one as an
// EventNotification, the others as EventChange.
func (s *Service) publishChanges(ctx context.Context, cs []Change) {
	if len(cs) == 0 {
		return
	}
	events := make([]Event, len(cs))
	added := 0
	for i := range cs {
		c := &cs[i]
		if c.Kind != ChangeAdded {
			events[i] = Event{Kind: EventChange, UserID: c.RecipientID, Change: c}
			continue
		}
		added++
		events[i] = Event{Kind: EventNotification, UserID: c.RecipientID, Notification: c.Notification, Change: c,
			Encodings: new(Encodings)}
	}
	if s.publish(ctx, events...) && added > 0 && s.cfg.OnPublished != nil {
		s.cfg.OnPublished(added)
	}
}

// publish hands committed events to the broker, stamped with the time of
// publishing, and reports whether the broker took them.
func (s *Service) publish(ctx context.Context, events ...Event) bool {
	now := time.Now()
	for i := range events {
		events[i].PublishedAt = now
	}
	// The request may be over by now, but the events must still go out; and
	// a broker that cannot be reached must not hold the answer long.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	err := s.broker.Publish(ctx, events...)
	if err != nil && s.cfg.OnPublishError != nil {
		s.cfg.OnPublishError(err)
	}
	return err == nil
}

// User returns the user with this username (ignoring case), or CodeNotFound.
func (s *Service) User(ctx context.Context, username string) (User, error) {
	return s.store.UserByUsername(ctx, username)
}

// UserByID returns the user, or CodeNotFound.
func (s *Service) UserByID(ctx context.Context, id int64) (User, error) {
	return s.store.UserByID(ctx, id)
}

// FollowCounts returns how many follow the user and how many it follows.
func (s *Service) FollowCounts(ctx context.Context, userID int64) (followers, following int, err error) {
	return s.store.FollowCounts(ctx, userID)
}

// Post returns the post, or CodeNotFound.
func (s *Service) Post(ctx context.Context, id int64) (Post, error) {
	return s.store.PostByID(ctx, id)
}

// Comment returns the comment, or CodeNotFound.
func (s *Service) Comment(ctx context.Context, id int64) (Comment, error) {
	return s.store.CommentByID(ctx, id)
}

// DefaultListPage and MaxListPage bound a page of a post's comments or
// reactions. The default is large enough that an ordinary post shows all
// of them; the bound keeps the cost of one page, and so of a nested query,
// proportional to it.
const (
	DefaultListPage = 100
	MaxListPage     = 500
)

// Comments lists a page of a post's comments, replies included, oldest
// first: at most first (0 to MaxListPage) of them, after the comment with
// ID after (0: from the start). A first out of range is CodeBadUserInput.
func (s *Service) Comments(ctx context.Context, postID int64, first int, after int64) ([]Comment, error) {
	page, err := listPage(first, after)
	if err != nil || page.Limit == 0 {
		return nil, err
	}
	return s.store.CommentsByPost(ctx, postID, page)
}

// Reactions lists a page of the reactions to a post or comment, oldest
// first, as Comments pages comments.
func (s *Service) Reactions(ctx context.Context, target ContentKind, targetID int64, first int, after int64) ([]Reaction, error) {
	page, err := listPage(first, after)
	if err != nil || page.Limit == 0 {
		return nil, err
	}
	return s.store.Reactions(ctx, target, targetID, page)
}

func listPage(first int, after int64) (ListPage, error) {
	if first < 0 || first > MaxListPage {
		return ListPage{}, InputError("first", "first must be 0 to %d", MaxListPage)
	}
	return ListPage{After: after, Limit: first}, nil
}

// MaxPageSize bounds a page of notifications.
const MaxPageSize = 100

// NotificationPage is a page of a user's notifications, newest first.
type NotificationPage struct {
	Items       []Notification
	HasNextPage bool
	UnreadCount int
}

// Notifications returns up to first of the user's notifications older than
// beforeID (from the newest when it is 0), newest first.
func (s *Service) Notifications(ctx context.Context, userID int64, first int, beforeID int64, unreadOnly bool) (NotificationPage, error) {
	if first < 0 || first > MaxPageSize {
		return NotificationPage{}, InputError("first", "first must be 0 to %d", MaxPageSize)
	}
	items, err := s.store.Notifications(ctx, userID, NotificationQuery{BeforeID: beforeID, Limit: first + 1, UnreadOnly: unreadOnly})
	if err != nil {
		return NotificationPage{}, err
	}
	unread, err := s.store.UnreadCount(ctx, userID)
	if err != nil {
		return NotificationPage{}, err
	}
	page := NotificationPage{Items: items, UnreadCount: unread}
	if len(items) > first {
		page.Items, page.HasNextPage = items[:first], true
	}
	return page, nil
}

// UnreadCount counts the user's unread notifications.
func (s *Service) UnreadCount(ctx context.Context, userID int64) (int, error) {
	return s.store.UnreadCount(ctx, userID)
}

// MarkRead marks the user's notifications with these ids read, or all of
// them when all is set (only those with ID <= upTo when upTo is not 0), and
// returns how many changed. Ids that are not the user's count for nothing.
// A call that changed anything appends one READ change.
func (s *Service) MarkRead(ctx context.Context, userID int64, ids []int64, all bool, upTo int64) (int, error) {
	if !all && ids == nil {
		return 0, InputError("ids", "give the ids to mark read, or all: true")
	}
	return s.markRead(ctx, userID, func(tx Tx) ([]int64, error) {
		if all {
			return tx.UnreadIDs(ctx, userID, upTo)
		}
		return ids, nil
	})
}

// markRead marks read, in one transaction, the notifications that pick
// returns in it, and returns how many changed; a call that changed
// anything appends one READ change, published after the commit.
func (s *Service) markRead(ctx context.Context, userID int64, pick func(Tx) ([]int64, error)) (int, error) {
	var stored []Change
	err := s.store.Update(ctx, func(tx Tx) error {
		stored = nil
		ids, err := pick(tx)
		if err != nil || len(ids) == 0 {
			return err
		}
		stored, err = tx.AppendChanges(ctx, []Change{{Kind: ChangeRead, RecipientID: userID, IDs: ids}})
		return err
	})
	if err != nil || len(stored) == 0 {
		return 0, err
	}
	s.publishChanges(ctx, stored)
	return len(stored[0].IDs), nil
}

// SendMessage delivers {"message": text} to every plain socket of the user.
// Text over MessageMaxBytes or not UTF-8 is CodeBadUserInput.
func (s *Service) SendMessage(ctx context.Context, userID int64, text string) error {
	if len(text) > MessageMaxBytes {
		return InputError("message", "message must be at most %d bytes long", MessageMaxBytes)
	}
	if !utf8.ValidString(text) {
		return InputError("message", "message must be valid UTF-8")
	}
	s.publish(ctx, Event{Kind: EventMessage, UserID: userID, Message: text, Encodings: new(Encodings)})
	return nil
}

// Subscribe subscribes to the user's events. The caller must Close the
// subscription.
func (s *Service) Subscribe(ctx context.Context, userID int64) (Subscription, error) {
	return s.broker.Subscribe(ctx, userID)
}
