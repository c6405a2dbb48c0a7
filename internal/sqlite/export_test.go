package sqlite

// Internals for the external tests.
var (
	ParseDSN = parseDSN
	Migrate  = migrate
	// OpenFile opens a database file whose WAL starts over when it passes
	// walFrames frames.
	OpenFile = openFile
)

// Queued returns how many Updates wait for the committer.
func (s *Store) Queued() int { return len(s.committer.requests) }

// Migrations is the embedded schema, one file per version.
var Migrations = migrations
