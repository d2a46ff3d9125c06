# The two commands of the README, and a few more. Each installs what is missing, builds into
# build/, and runs.
BUILD     ?= build
CMAKE_ARGS ?=
COMPARE_ARGS ?=
RANKS     := $(shell n=$$(nproc); [ $$n -lt 2 ] && n=2; echo $$n)
# Open MPI refuses root unless told; CI and these machines run as root.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: all deps configure build run test bench compare clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DPLEXUS_WERROR=ON $(CMAKE_ARGS)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD)

# The main job: the all-reduce benchmark on one local rank per core (at least 2), checked.
run: build
	$(BUILD)/plexusrun -n $(RANKS) $(BUILD)/plexus-perf allreduce -b 8 -e 64M -f 4 -c 1

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 300

bench: build
	$(BUILD)/plexusrun -n $(RANKS) $(BUILD)/plexus-perf allreduce -b 8 -e 64M -f 2 -c 1

# Plexus against Open MPI, Gloo, UCX and memcpy, side by side (bench/compare/compare.py): ratio
# tables with the issue #3 targets, build/compare/compare.json and PNG plots. Debian's python3,
# which has numpy and matplotlib; COMPARE_ARGS=--quick for a short run. Both rank counts run
# even when the first misses a target, and the target then fails.
compare: build
	/usr/bin/python3 bench/compare/compare.py --build $(BUILD) --ranks 2 $(COMPARE_ARGS); \
	a=$$?; /usr/bin/python3 bench/compare/compare.py --build $(BUILD) --ranks 4 $(COMPARE_ARGS); \
	b=$$?; [ $$a -eq 0 ] && [ $$b -eq 0 ]

# The suite under AddressSanitizer + UBSan, and under ThreadSanitizer (separate build trees).
# UCX's memory hooks fight the sanitizers' allocators: keep them off (see README). Under TSan
# also its mmap/madvise hooks: glibc calls madvise as a thread exits, after TSan has torn down
# that thread's state, and TSan's interceptor of UCX's rwlock then segfaults.
SAN_CMAKE := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPLEXUS_WITH_CUDA=OFF -DPLEXUS_BUILD_BENCH=OFF
SAN_CTEST_ARGS ?=
test-asan: deps
	cmake -S . -B build-asan -G Ninja $(SAN_CMAKE) -DPLEXUS_SANITIZE=address
	cmake --build build-asan
	cd build-asan && UCX_RCACHE_ENABLE=n UCX_MEM_MALLOC_HOOKS=n ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp ctest --output-on-failure --timeout 600 \
	  $(SAN_CTEST_ARGS)

test-tsan: deps
	cmake -S . -B build-tsan -G Ninja $(SAN_CMAKE) -DPLEXUS_SANITIZE=thread
	cmake --build build-tsan
	cd build-tsan && UCX_RCACHE_ENABLE=n UCX_MEM_MALLOC_HOOKS=n UCX_MEM_MMAP_HOOK_MODE=none \
	  TSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/tsan.supp ctest --output-on-failure --timeout 600

# libFuzzer over every parser of peer-controlled bytes, FUZZ_RUNS executions each, starting
# from the seed corpus (clang with ASan + UBSan).
FUZZ_RUNS ?= 10000000
FUZZ_TARGETS := store_frames codec_payload unique_id peer_records
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja $(SAN_CMAKE) -DPLEXUS_SANITIZE=address \
	  -DPLEXUS_FUZZ=ON -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link
	cmake --build build-fuzz --target $(addprefix fuzz_,$(FUZZ_TARGETS)) fuzz_seeds
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t && cp -n build-fuzz/fuzz-corpus/$$t/* build-fuzz/corpus/$$t/ 2>/dev/null; \
	  build-fuzz/fuzz/fuzz_$$t -runs=$(FUZZ_RUNS) -print_final_stats=1 build-fuzz/corpus/$$t \
	    2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || exit 1; \
	done

clean:
	rm -rf $(BUILD)
