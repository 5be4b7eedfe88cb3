# Common tasks. CI runs .ci/run, which calls the same commands.
GO ?= go
PKGS ?= ./...
BENCH ?= .
COUNT ?= 6

.PHONY: test race bench lint fuzz ci demo

test:
	$(GO) test -race $(PKGS)

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKGS) | tee bench.out

lint:
	gofmt -l . | (! grep .)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

fuzz:
	.ci/fuzz 200000x

ci:
	bash .ci/run

demo:
	$(GO) run ./cmd/refd serve --demo
