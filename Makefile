# dwell — make targets. `make test` is what CI runs (see .ci/run).
GO       ?= go
PKGS     ?= ./...
FUZZTIME ?= 2m
# golangci-lint version installed by `make tools` and .ci/run.
GOLANGCI_VERSION ?= v2.15.0
GOBIN    ?= $(shell $(GO) env GOPATH)/bin

.PHONY: all build test test-short race lint vet fuzz eval bench bench-ingest bench-scenario bench-retrohunt bench-retrohunt-ab bench-clickhouse bench-flows bench-ddos bench-evtx tools clean

all: build test

build:
	$(GO) build -o dwell ./cmd/dwell

## test: every test, including the dataset and kill-and-resume tests.
test:
	$(GO) test -count=1 $(PKGS)

## test-short: skips the tests that start processes.
test-short:
	$(GO) test -short -count=1 $(PKGS)

## race: the concurrent packages under the race detector (internal/app
## takes about 5 minutes of it on a 2-core machine; the timeout leaves room).
race:
	$(GO) test -race -count=1 -timeout 20m ./internal/ingest/... ./internal/store/... ./internal/scenario/... ./internal/detect/sigma/... ./internal/app/... \
		./internal/server/... ./internal/console/... ./internal/alert/... ./internal/collect/... ./internal/mitigate/... ./internal/detect/ddos/...

vet:
	$(GO) vet $(PKGS)

lint: vet
	$(GOBIN)/golangci-lint run $(PKGS)
	@test -z "$$(gofmt -l cmd internal bench)" || (echo "gofmt needed:"; gofmt -l cmd internal bench; exit 1)
	$(GO) mod tidy -diff

## fuzz: each fuzz target for FUZZTIME (default 2m).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzTSV$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/zeek
	$(GO) test -run '^$$' -fuzz '^FuzzJSON$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/zeek
	$(GO) test -run '^$$' -fuzz '^FuzzJSONShapes$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/zeek
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzAppendEscaped$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/scenario
	$(GO) test -run '^$$' -fuzz '^FuzzParsePattern$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/intel
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/intel
	$(GO) test -run '^$$' -fuzz '^FuzzMISPFeed$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/intel
	$(GO) test -run '^$$' -fuzz '^FuzzTAXII$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/intel
	$(GO) test -run '^$$' -fuzz '^FuzzTSV$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/store/clickhouse
	$(GO) test -run '^$$' -fuzz '^FuzzReadsState$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/store/clickhouse
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/netflow
	$(GO) test -run '^$$' -fuzz '^FuzzSource$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/netflow
	$(GO) test -run '^$$' -fuzz '^FuzzStoreZeekTSV$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/app
	$(GO) test -run '^$$' -fuzz '^FuzzStoreZeekJSON$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/app
	$(GO) test -run '^$$' -fuzz '^FuzzStoreFlows$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/app
	$(GO) test -run '^$$' -fuzz '^FuzzStoreIntel$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/app
	$(GO) test -run '^$$' -fuzz '^FuzzStoreHostJSON$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/app
	$(GO) test -run '^$$' -fuzz '^FuzzStoreEVTX$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/app
	$(GO) test -run '^$$' -fuzz '^FuzzFile$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/evtx
	$(GO) test -run '^$$' -fuzz '^FuzzRecords$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/evtx
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/winlog
	$(GO) test -run '^$$' -fuzz '^FuzzUnquote$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/winlog
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/detect/sigma
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/capture
	$(GO) test -run '^$$' -fuzz '^FuzzSource$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/pcap
	$(GO) test -run '^$$' -fuzz '^FuzzIP$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/pcap
	$(GO) test -run '^$$' -fuzz '^FuzzDNS$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/pcap
	$(GO) test -run '^$$' -fuzz '^FuzzHTTP$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/pcap
	$(GO) test -run '^$$' -fuzz '^FuzzTLS$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/pcap
	$(GO) test -run '^$$' -fuzz '^FuzzDTLS$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/pcap
	$(GO) test -run '^$$' -fuzz '^FuzzX509$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/pcap
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/ingest/eve
	$(GO) test -run '^$$' -fuzz '^FuzzReadMessage$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/mitigate
	$(GO) test -run '^$$' -fuzz '^FuzzSpoolRecord$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./internal/collect

## eval: score the detectors on the labelled real captures; rewrites docs/evaluation.md.
eval:
	bench/eval.sh

## bench: Go benchmarks of the hot paths, then the side-by-side scripts.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./internal/... | tee bench-go.txt
	bench/ingest.sh

## bench-ingest: only the ingest comparison (large generated input), then the store's floor by layout, the rotated-directory variant and its split (files or rows), the month's peak memory (three runs, ~18 min), the ClickHouse variants (ClickHouse's floor too).
bench-ingest:
	bench/ingest.sh
	bench/ingest-floor.sh
	bench/ingest-rotated.sh
	bench/ingest-joined.sh
	bench/ingest-peak.sh
	bench/clickhouse-ingest.sh
	bench/clickhouse-floor.sh

## bench-retrohunt: 10,000 indicators against the bench-scenario store (~6 min; REUSE=1 keeps the store).
bench-retrohunt:
	bench/retrohunt.sh

## bench-retrohunt-ab: the retro-hunt at two revisions, run in turns on that store (make bench-retrohunt-ab A=REV B=REV).
bench-retrohunt-ab:
	bench/retrohunt-ab.sh $(A) $(B)

## bench-clickhouse: ingest and hunt of the bench-scenario data on DuckDB and on a ClickHouse server started for it.
bench-clickhouse:
	bench/clickhouse.sh

## bench-flows: NetFlow/IPFIX decoding beside goflow2 (bench/goflowpeer) on the same capture.
bench-flows:
	bench/flows.sh

## bench-ddos: the live DDoS defence's alert latency beside FastNetMon, and the collector's rate beside goflow2 and nfcapd.
bench-ddos:
	$(GO) build -o bench/out/dwell ./cmd/dwell
	$(GO) run ./bench/ddoslatency -dwell bench/out/dwell -runs 3 -before 2m -after 1m
	bench/collect.sh

## bench-evtx: EVTX reading beside libevtx's evtxexport, agreement and speed (needs libevtx-utils).
bench-evtx:
	bench/evtx.sh

## bench-scenario: generation, ingest and hunt of 30 days x 1 M conn/day (~8 min, ~8 GB of disk).
bench-scenario:
	bench/scenario.sh

tools:
	GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

clean:
	rm -f dwell bench-go.txt
	rm -rf bench/data bench/out
