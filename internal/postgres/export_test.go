package postgres

// Internals for the external tests.
var (
	Migrate    = migrate
	PoolConfig = poolConfig
)
