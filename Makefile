# Two commands matter: `make serve` (build, then serve) and `make test` (build, then run
# every test: Release suite, sanitizer suite, corrupt-file corpus, a short fuzz run).
# Each installs what it needs with apt-get first (quiet when everything is there).

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
SERVE_ARGS ?=

.PHONY: all deps build serve test test-release test-asan fuzz fuzz-long format format-check clean size

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

serve: build
	$(BUILD)/shimmy serve $(SERVE_ARGS)

test: format-check test-release test-asan fuzz
	@echo "all test stages passed"

test-release: build
	@scripts/check-size.sh $(BUILD)/shimmy
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHIMMY_SANITIZE=ON \
	  -DSHIMMY_BENCH=OFF -DSHIMMY_CUDA=OFF >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHIMMY_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSHIMMY_CUDA=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

FORMAT_FILES = $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

format:
	clang-format -i $(FORMAT_FILES)

# The checked-in style (.clang-format, clang-format 14 as Debian 12 ships it): fails on any
# file `make format` would change.
format-check: deps
	@clang-format --dry-run --Werror $(FORMAT_FILES) || \
	  { echo "format-check: run 'make format'"; exit 1; }
	@echo "format-check: clean"

size: build
	@scripts/check-size.sh $(BUILD)/shimmy

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
