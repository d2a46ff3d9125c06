# The two commands of the README, and a few more. Each installs what is missing, builds into
# build/, and runs.
BUILD     ?= build
CMAKE_ARGS ?=
RANKS     := $(shell n=$$(nproc); [ $$n -lt 2 ] && n=2; echo $$n)
# Open MPI refuses root unless told; CI and these machines run as root.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: all deps configure build run test bench clean

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

clean:
	rm -rf $(BUILD)
