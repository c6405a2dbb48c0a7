// Package social is the domain of the notification server: users, posts,
// comments, reactions, follows and the notifications they cause.
//
// It holds the domain types, the rules of who is notified of what, input
// validation, the error type with its codes, the Store and Broker interfaces
// that adapters implement, and the Service that runs every action: it
// validates input, writes the action and all of its notifications in one
// store transaction, and publishes them through the Broker after the commit.
//
// The package imports no other package of the project. Adapters (the SQLite
// and PostgreSQL stores, the in-process and Redis brokers, the GraphQL and
// plain websocket transports) import it and meet in its types.
package social
