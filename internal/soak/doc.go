// Package soak proves the whole server, run as its real binary on
// loopback, under load and faults. It has no code of its own: its tests
// are the proof.
//
//   - TestProperty: many users in separate worlds act at random (follow,
//     unfollow, post, comment, reply, react); a model of the rules of
//     docs/api.md says who must be told of what; every plain socket (dropping
//     and resuming with ?after= at random) and every GraphQL subscription
//     must receive exactly its user's notifications, each once, in id
//     order. PULSE_PROPERTY_ACTIONS sets how many actions (1,500 by
//     default; `make soak` runs 10,000).
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
