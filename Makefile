# hyperrec -- one Makefile for the server, the trainer, the tests and benches.
#
#   make            build bin/hyperrec and bin/hyperrec-train
#   make run        demo: private Redis, generated data, trained model, server
#   make test       unit + integration tests (ends with "N passed, N failed")
#   make asan       the same tests on an ASan+UBSan build (build-asan/)
#   make fuzz       libFuzzer harnesses (tests/fuzz/), FUZZ_SECONDS each
#   make fuzz-ci    the same, briefly (what .ci/run runs)
#   make bench      benchmarks (bench/)
#   make bench-e2e  /recommend and /event against nginx and the Python peer
#   make test-replicas  3 replicas behind HAProxy under load and faults
#   make test-js    the JavaScript client (clients/js) against a live server
#   make test-web   the console (/ui/) in headless Chromium (tests/web/)
#   make image      the container image hyperrec:VERSION (root; buildah)
#   make image-test build it, train and serve inside it (tests/image/run.sh)
#   make deps       install the Debian 12 packages (apt-get, as root)
#   make clean

PKGS      := libmicrohttpd jansson hiredis libuv openblas
DEB_PKGS  := build-essential pkg-config libmicrohttpd-dev libuv1-dev \
             libjansson-dev libhiredis-dev libopenblas-dev redis-server \
             curl python3 python3-yaml yamllint valgrind tzdata
CC        ?= cc
BUILD     ?= build
BIN       ?= bin
OPT       ?= -O2 -g
SAN       ?=
WARN_EXTRA ?=
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS    += -DHR_VERSION=\"0.1.0\" -std=c11 -Wall -Wextra -Werror -Wstrict-prototypes -Wno-format-truncation \
             -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) $(OPT) $(SAN) $(WARN_EXTRA) -MMD -MP \
             -pthread
LDLIBS    += $(PKG_LIBS) -lm -pthread
LDFLAGS   += $(SAN)

MAINS      := src/server/main.c src/train/main.c
LIB_SRC    := $(filter-out $(MAINS),$(sort $(wildcard src/*/*.c)))
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
FUZZ_SRC   := $(filter-out tests/fuzz/fuzz_common.c,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
TEST_SRC   := $(sort $(wildcard tests/*.c tests/lib/*.c tests/unit/*.c tests/integration/*.c \
                                tests/fuzz/*.c))
TEST_OBJ   := $(TEST_SRC:%.c=$(BUILD)/%.o)
LIBHR      := $(BUILD)/libhr.a

.PHONY: all run test test-unit test-integration asan bench deps check-deps \
        clean demo _run _test _bench

all: $(BIN)/hyperrec $(BIN)/hyperrec-train $(BIN)/hyperrec-bench

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The console's files are compiled into the server (src/http/ui.c).
UI_FILES   := src/ui/index.html src/ui/console.js src/ui/console.css \
              clients/js/index.js
$(BUILD)/src/http/ui.o: $(UI_FILES)

$(LIBHR): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/hyperrec: $(BUILD)/src/server/main.o $(LIBHR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

TRAIN_CLI  := $(sort $(wildcard src/train/cli/*.c))
$(BIN)/hyperrec-train: $(BUILD)/src/train/main.o $(TRAIN_CLI:%.c=$(BUILD)/%.o) $(LIBHR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

BENCH_SRC  := $(sort $(wildcard bench/*.c))
$(BIN)/hyperrec-bench: $(BENCH_SRC:%.c=$(BUILD)/%.o) $(LIBHR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The tests count the project's own allocations (tests/lib/alloc.h).
TEST_WRAP  := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
              -Wl,--wrap=aligned_alloc,--wrap=posix_memalign \
              -Wl,--wrap=strdup,--wrap=strndup
$(BUILD)/hr-tests: $(TEST_OBJ) $(LIBHR)
	$(CC) $(LDFLAGS) $(TEST_WRAP) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%.o: CFLAGS += -Itests

# The replica test's load generator (tests/replicas/).
$(BUILD)/hr-load: tests/replicas/load.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# ---------------------------------------------------------------- deps
# `make run` and `make test` install what is missing first, so that on a
# fresh Debian 12 machine those two commands are all the set-up there is.
deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends $(DEB_PKGS); \
	elif command -v sudo >/dev/null 2>&1; then \
	  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends $(DEB_PKGS); \
	else \
	  echo "missing packages; run as root:"; \
	  echo "  apt-get install -y --no-install-recommends $(DEB_PKGS)"; \
	  exit 1; \
	fi

check-deps:
	@if ! pkg-config --exists $(PKGS) 2>/dev/null || \
	    ! command -v redis-server >/dev/null 2>&1 || \
	    ! command -v curl >/dev/null 2>&1 || \
	    ! command -v valgrind >/dev/null 2>&1 || \
	    ! command -v yamllint >/dev/null 2>&1 || \
	    [ ! -f /usr/share/zoneinfo/Europe/Paris ]; then \
	  echo "hyperrec: installing missing build/runtime packages"; \
	  $(MAKE) --no-print-directory deps; \
	fi

# The real targets run in a sub-make so that pkg-config is asked again
# after `deps` installed the libraries.
run: check-deps
	@$(MAKE) --no-print-directory _run
test: check-deps
	@$(MAKE) --no-print-directory _test
bench: check-deps
	@$(MAKE) --no-print-directory _bench

_run: all
	@./deploy/demo.sh

_test: all $(BUILD)/hr-tests
	HR_BIN_DIR=$(BIN) ./$(BUILD)/hr-tests $(TESTFLAGS)

test-unit: all $(BUILD)/hr-tests
	HR_BIN_DIR=$(BIN) ./$(BUILD)/hr-tests --filter tests/unit $(TESTFLAGS)

test-integration: all $(BUILD)/hr-tests
	HR_BIN_DIR=$(BIN) ./$(BUILD)/hr-tests --filter tests/integration $(TESTFLAGS)

# valgrind cannot run an ASan binary: its leak-check test uses the plain build.
asan: check-deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin \
	  OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  _asan

_asan: all $(BUILD)/hr-tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	HR_BIN_DIR=$(BIN) HR_VALGRIND_BIN=bin/hyperrec HR_TEST_TIMEOUT_MULT=3 \
	  ./$(BUILD)/hr-tests $(TESTFLAGS)

_bench: all
	@./bench/run.sh

# End to end against the peers (bench/run_e2e.sh): nginx ceiling, pyref,
# hyperrec iALS and seq side by side, then cost against catalogue size and
# history length (long: fits 100k and 1M-item models on first use).
.PHONY: bench-e2e _bench-e2e
bench-e2e: check-deps
	@$(MAKE) --no-print-directory _bench-e2e
_bench-e2e: all
	@./bench/run_e2e.sh

# /recommend answers of this tree's build against those of commit REV
# (built in a scratch worktree), on the same models and Redis state
# (tests/compare_rev.py): every answer must be the same.
.PHONY: compare-rev
compare-rev: all
	@test -n "$(REV)" || { echo "usage: make compare-rev REV=<commit>"; exit 2; }
	@d=$$(mktemp -d) && git worktree add -q --detach "$$d" "$(REV)" && \
	  $(MAKE) --no-print-directory -C "$$d" all >/dev/null && \
	  python3 tests/compare_rev.py "$$d/bin" $(BIN); rc=$$?; \
	  git worktree remove --force "$$d"; exit $$rc

# ANN index against hnswlib (bench/run_ann.sh; long: builds 1M twice per run).
.PHONY: bench-ann _bench-ann
# POST /similar through the index against an exact scan, and its latency
# against /recommend's, on MovieLens 100K (bench/run_similar.sh).
.PHONY: bench-similar
bench-similar: check-deps
	@$(MAKE) --no-print-directory all
	@./bench/run_similar.sh

bench-ann: check-deps
	@$(MAKE) --no-print-directory _bench-ann
_bench-ann: all
	@./bench/run_ann.sh

# ---------------------------------------------------------------- fuzz
# libFuzzer harnesses (tests/fuzz/README.md), built with clang into
# build-fuzz/ with ASan+UBSan. `make fuzz` runs each until FUZZ_RUNS
# executions (at most FUZZ_SECONDS; the slow model harness as two
# processes), FUZZ_JOBS processes at a time, and reports executions and
# coverage; `make fuzz-ci` runs each FUZZ_CI_SECONDS. New inputs collect in
# build-fuzz/corpus/, crashes in build-fuzz/crashes/.
FUZZ_CC         ?= clang
FUZZ_RUNS       ?= 10000000
FUZZ_SECONDS    ?= 5400
FUZZ_CI_SECONDS ?= 20
FUZZ_JOBS       ?= 2
FUZZ_PROCS      := $(patsubst model,model:2,$(FUZZ_NAMES))
FUZZ_DEB_PKGS   := clang libclang-rt-14-dev
.PHONY: fuzz fuzz-ci fuzz-build check-fuzz-deps _fuzz-bins
check-fuzz-deps: check-deps
	@if ! command -v $(FUZZ_CC) >/dev/null 2>&1 || \
	    ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' | \
	      $(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1; then \
	  echo "hyperrec: installing clang and its libFuzzer runtime"; \
	  $(MAKE) --no-print-directory DEB_PKGS="$(FUZZ_DEB_PKGS)" deps; \
	fi
fuzz-build: check-fuzz-deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz BIN=build-fuzz/bin \
	  CC=$(FUZZ_CC) OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link" \
	  WARN_EXTRA="-Wno-unknown-warning-option" _fuzz-bins
_fuzz-bins: $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/fuzz_%.fz.o $(BUILD)/tests/fuzz/fuzz_common.fz.o $(LIBHR)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)
# Checksums are not worth the fuzzer's comparison tracing (a fifth of the
# model harness's time went to tracing hr_crc32's table lookups).
$(BUILD)/src/common/crc.o: CFLAGS += $(if $(findstring fuzzer,$(SAN)),-fno-sanitize-coverage=trace-cmp)
$(BUILD)/tests/fuzz/%.fz.o: tests/fuzz/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -DHR_LIBFUZZER -c $< -o $@
.SECONDARY: $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/fuzz_%.fz.o) $(BUILD)/tests/fuzz/fuzz_common.fz.o
fuzz: fuzz-build
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_RUNS) $(FUZZ_JOBS) $(FUZZ_PROCS)
fuzz-ci: fuzz-build
	@tests/fuzz/run.sh build-fuzz $(FUZZ_CI_SECONDS) 0 $(FUZZ_JOBS) $(FUZZ_NAMES)

demo: run

# Three replicas behind HAProxy (deploy/haproxy.cfg) under load, with a
# replica killed, one rolled, a model published and Redis stopped.
.PHONY: test-replicas check-replicas-deps
check-replicas-deps: check-deps
	@command -v haproxy >/dev/null 2>&1 || { \
	  echo "hyperrec: installing haproxy"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends haproxy; fi; }

test-replicas: check-replicas-deps
	@$(MAKE) --no-print-directory all $(BUILD)/hr-load
	HR_BIN_DIR=$(BIN) HR_LOAD=$(BUILD)/hr-load ./tests/replicas/run.sh

# The JavaScript client (clients/js) against a live server: node --test.
.PHONY: test-js check-js-deps
check-js-deps: check-deps
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  echo "hyperrec: installing nodejs and npm"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends nodejs npm; fi; }

test-js: check-js-deps
	@$(MAKE) --no-print-directory all
	cd clients/js && HR_BIN_DIR=$(abspath $(BIN)) node --test test/

# The console (src/ui) in Debian's Chromium, headless, through
# playwright-core (tests/web/package-lock.json) against a live server.
.PHONY: test-web web-shots check-web-deps
check-web-deps: check-js-deps
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "hyperrec: installing chromium"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends chromium; fi; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' || { \
	  echo "make test-web: playwright-core needs Node.js 20 or newer (this is $$(node --version))"; exit 1; }
	cd tests/web && npm ci --no-audit --no-fund --loglevel=error

test-web: check-web-deps
	@$(MAKE) --no-print-directory all
	HR_BIN_DIR=$(abspath $(BIN)) node --test tests/web/

# The same, writing the screenshots docs/console/ shows.
web-shots: check-web-deps
	@$(MAKE) --no-print-directory all
	HR_BIN_DIR=$(abspath $(BIN)) HR_WEB_SHOTS=docs/console node --test tests/web/

# The container image (Dockerfile) with buildah; no Docker engine needed.
.PHONY: image image-test
image:
	./deploy/image.sh

image-test:
	./tests/image/run.sh

clean:
	rm -rf build build-asan build-fuzz bin

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_SRC:%.c=$(BUILD)/%.d) $(BUILD)/src/server/main.d \
         $(BUILD)/src/train/main.d $(TRAIN_CLI:%.c=$(BUILD)/%.d)

# The sequential model's training curve on loo (valid): CSV then PNG in
# docs/ (needs ../shared/data and gnuplot; a few minutes).
LOO ?= ../shared/data/ml-100k/splits/loo
.PHONY: plot-training
plot-training: all
	$(BIN)/hyperrec-train eval --split $(LOO) --target valid --kind seq \
	  --report docs/training-curve.csv
	gnuplot -e "in='docs/training-curve.csv'; out='docs/training-curve.png'" \
	  bench/plot_training.gp
