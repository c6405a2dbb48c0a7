package postgres

// Internals for the external tests.
var (
	Migrate    = migrate
	PoolConfig = poolConfig
)

// Migrations is the embedded schema, one file per version.
var Migrations = migrations
