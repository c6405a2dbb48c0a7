// Package model holds the GraphQL types of schema.graphqls: the ones gqlgen
// generates (models_gen.go) and these, written by hand so that they carry
// the internal ids their field resolvers need.
package model

import "time"

// User is a user; the follow counts are resolved on demand.
type User struct {
	ID       int64
	Username string
}

// Post is a post; author, comments and reactions are resolved on demand.
type Post struct {
	ID        int64
	AuthorID  int64
	Body      string
	CreatedAt time.Time
}

// Comment is a comment; post, parent and author are resolved on demand.
type Comment struct {
	ID        int64
	PostID    int64
	ParentID  int64 // 0: not a reply
	AuthorID  int64
	Body      string
	CreatedAt time.Time
}

// Reaction is a reaction; its user is resolved on demand.
type Reaction struct {
	ID         int64
	UserID     int64
	Kind       ReactionKind
	TargetKind ContentKind
	TargetID   int64
}

// Notification is a notification as clients see it.
type Notification struct {
	ID            int64
	Message       string
	Action        NotificationAction
	ActionID      int64
	ByUser        string
	ActionContent *string
	Affected      *ContentKind
	AffectedID    *int64
	Read          bool
	CreatedAt     time.Time
}

// Session is one of the caller's sessions; its id is the store's.
type Session struct {
	ID         int64
	Current    bool
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	UserAgent  *string
}

// NotificationGroup is a group of notifications as clients see it.
type NotificationGroup struct {
	Key               string
	Action            NotificationAction
	Affected          *ContentKind
	AffectedID        *int64
	NotificationCount int
	ActorCount        int
	SampleActors      []string
	Message           string
	Latest            *Notification
	UnreadCount       int
	UpdatedAt         time.Time
}
