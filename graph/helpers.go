package graph

import (
	"context"

	"github.com/pulse-social/pulse/graph/model"
	"github.com/pulse-social/pulse/internal/social"
)

func (r *Resolver) userByID(ctx context.Context, id int64) (*model.User, error) {
	u, err := r.Service.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return toUser(u), nil
}

func (r *Resolver) react(ctx context.Context, target social.ContentKind, targetID string, kind model.ReactionKind) (*model.Reaction, error) {
	me, err := social.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	re, err := r.Service.React(ctx, me, target, parseID(targetID), toReactionKind(kind))
	if err != nil {
		return nil, err
	}
	return toReaction(re), nil
}

func (r *Resolver) unreact(ctx context.Context, target social.ContentKind, targetID string) (bool, error) {
	me, err := social.RequireUser(ctx)
	if err != nil {
		return false, err
	}
	return r.Service.Unreact(ctx, me, target, parseID(targetID))
}

// subscriptionStart returns where a subscription with this after starts:
// after it; without it, at the connection's start for the socket's first
// subscription (see WithConnectionStart), else now (nil).
func (r *Resolver) subscriptionStart(ctx context.Context, after *string) (*int64, error) {
	if after != nil {
		id, err := parseCursor("after", *after)
		if err != nil {
			return nil, err
		}
		return &id, nil
	}
	if id, ok := firstSubscriptionStart(ctx); ok {
		return &id, nil
	}
	return nil, nil
}
