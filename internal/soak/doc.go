// Package soak proves the whole server, run as its real binary on
// loopback, under load and faults. It has no code of its own: its tests
// are the proof.
//
//   - TestProperty: many users in separate worlds act at random (follow,
//     unfollow, post, comment, reply, react, take a reaction back, delete,
//     mark read); a model of the rules of docs/api.md says who must be told
//     of what, and how each inbox changes. Every socket, dropping and
//     resuming with ?after= at random, must receive exactly its user's
//     notifications (plain, GraphQL notifications) or its user's change
//     stream, each change with the model's unread count and groups (plain
//     ?changes=1, GraphQL inboxChanges); every inbox, unread count and
//     group must end as the model's. TestPropertyCluster runs the same on
//     three processes sharing PostgreSQL and Redis.
//     PULSE_PROPERTY_ACTIONS sets how many actions (300 by default; `make
//     soak` runs 10,000).
//   - TestSoak (build tag soak, `make soak`): the same with thousands of
//     sockets and constant churn, bounded in time, then checks that the
//     server's goroutines and heap come back to a stated bound, and prints
//     the figures.
//   - TestRestartAfterKill: SIGKILL during a burst of actions, restart on
//     the same SQLite file: nothing half-written, every committed
//     notification delivered on resume.
//   - TestHostile (build tag hostile, `make hostile`): issue 13's attacks,
//     one after another, bounded in time, while /healthz and the server's
//     RSS are sampled; it prints what the server answered against what it
//     should, and fails on any miss.
package soak
