# The two commands that matter: `make run` serves on 127.0.0.1:8000 with an
# embedded SQLite file and an in-process broker; `make test` runs every test
# with the race detector.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test generate check-generated lint bench fuzz soak hostile bench-quick e2e

run:
	$(GO) run ./server

test:
	$(GO) test -race -count=1 ./...
	$(MAKE) e2e

generate:
	$(GO) generate ./...

# check-generated fails when the committed gqlgen code differs from what
# `go generate` writes.
check-generated: generate
	@git diff --exit-code -- graph schema.graphqls gqlgen.yml || \
		(echo 'generated code is stale: run make generate and commit the result' >&2; exit 1)
	@test -z "$$(git status --porcelain -- graph)" || \
		(git status --porcelain -- graph; echo 'go generate wrote new files: commit them' >&2; exit 1)

# e2e runs e2e/ (node's test runner) against the real server binary with the
# clients people use (ws, graphql-ws, subscriptions-transport-ws, Apollo
# Client, urql) and Debian's Chromium (/usr/bin/chromium, or CHROMIUM_BIN).
# Needs Node 20+ and npm; about 20 s.
e2e:
	$(GO) build -o bin/pulse ./server
	cd e2e && npm ci --no-audit --no-fund && PULSE_BIN=$(CURDIR)/bin/pulse node --test --test-timeout=60000

# lint also checks the files behind the soak and hostile build tags.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) vet -tags soak,hostile ./...
	$(GO) run $(STATICCHECK) -tags soak,hostile ./...

# bench is the load generator (bench/): it builds the server, starts it on a
# fresh database and runs W1-W3 with 10,000 sockets, on SQLite and then on
# PostgreSQL with Redis, with one server and with three (skipped with a note
# when those are not running).
# It takes a few minutes; run it by hand. bench-quick is the same code with
# small sizes, for CI: it fails only if a notification was lost, duplicated
# or misrouted or the tool itself failed, never on speed.
bench:
	$(GO) run ./bench -stores sqlite,postgres -processes 1,3

bench-quick:
	$(GO) run ./bench -quick

# fuzz runs each fuzz target for FUZZTIME (by hand, longer: make fuzz
# FUZZTIME=10m). CI gives a count of inputs instead (FUZZTIME=5000x): with
# a time, Go's fuzzing coordinator can fail a target with "context deadline
# exceeded" when its workers are starved of CPU as the time runs out
# (golang/go#75804, fixed in Go 1.27), and a count has no deadline to race.
# Their seed corpora (testdata/fuzz) run in make test as ordinary tests.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseFrame$$' -fuzztime $(FUZZTIME) ./internal/plainws
	$(GO) test -run '^$$' -fuzz '^FuzzSocketFrame$$' -fuzztime $(FUZZTIME) ./internal/plainws
	$(GO) test -run '^$$' -fuzz '^FuzzGraphQLRequest$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzSocketMessage$$' -fuzztime $(FUZZTIME) ./internal/gqlws
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime $(FUZZTIME) ./internal/social

# soak proves the server at scale on loopback, bounded in time: the
# property test with 10,000 actions (on SQLite, and on three processes
# with PostgreSQL and Redis when they run), the soak run (thousands of sockets
# with churn; it prints its figures) and the kill -9 restart test.
soak:
	PULSE_PROPERTY_ACTIONS=10000 $(GO) test -tags soak -count=1 -timeout 20m -v \
		-run '^(TestProperty|TestPropertyCluster|TestSoak|TestRestartAfterKill)$$' ./internal/soak

# hostile throws issue 13's attacks (deep nesting, validation blow-ups,
# token expiry and logout races on open sockets, floods, malformed input)
# at the real server on loopback for about a minute, while it samples the
# server's RSS and /healthz; it prints what the server answered against
# what it should and fails on any miss, RSS over 200 MB, a /healthz slower
# than 100 ms or a token in the server's log.
hostile:
	$(GO) test -tags hostile -count=1 -timeout 5m -v -run '^TestHostile$$' ./internal/soak
