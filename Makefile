# The two commands that matter: `make run` serves on 127.0.0.1:8000 with an
# embedded SQLite file and an in-process broker; `make test` runs every test
# with the race detector.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test generate check-generated lint bench

run:
	$(GO) run ./server

test:
	$(GO) test -race -count=1 ./...

generate:
	$(GO) generate ./...

# check-generated fails when the committed gqlgen code differs from what
# `go generate` writes.
check-generated: generate
	@git diff --exit-code -- graph schema.graphqls gqlgen.yml || \
		(echo 'generated code is stale: run make generate and commit the result' >&2; exit 1)
	@test -z "$$(git status --porcelain -- graph)" || \
		(git status --porcelain -- graph; echo 'go generate wrote new files: commit them' >&2; exit 1)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
