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
