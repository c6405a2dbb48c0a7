package sqlite

// Internals for the external tests.
var (
	ParseDSN = parseDSN
	Migrate  = migrate
)
