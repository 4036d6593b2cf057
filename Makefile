# SPDX-License-Identifier: MIT
# PowerLogger — the two commands a newcomer needs:
#   make run     build (installing missing Debian packages) and run the main job: the logger
#                with a simulated meter (a real household's load), its store in
#                ./powerlogger.db and a live status line; Ctrl-C stops it, a rerun resumes
#   make check   build and pass every test: unit, property, CLI, sanitizers, valgrind,
#                fuzzers (briefly), and the freestanding Cortex-M4 build of the core
# and for the team:
#   make demo    simulate ten minutes of a sensor, detect the pulses, print line protocol
#   make bench-compare REV=R   drain and footprint against revision R, in the same run
#   make bench   accuracy matrix against the original's method, callgrind cost, core size,
#                drain against curl, footprint
#   make fuzz    run every fuzzer for FUZZ_SECONDS (default 60)
#   make install PREFIX=/usr/local [DESTDIR=...]   the program, configuration, unit, man pages
#   make deb [DEB_ARCH=arm64]   the Debian package, in build-deb/ (docs/install.md)
#   make check-deb   the install rules; the package built, linted, installed, run, upgraded, purged
#   make check-arm   the Raspberry Pi builds (arm64, armhf), their tests under qemu-user

BUILD   ?= build
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE   ?= cmake
FUZZ_SECONDS ?= 60
DATA    ?= $(abspath data)

.PHONY: all deps deps-run build-matrix spdx build run demo check test test-asan test-valgrind \
        fuzz fuzz-check freestanding firmware check-arm bench bench-compare clean install \
        deps-deb deb check-deb

all: build

deps:
	@bash scripts/install-deps.sh

# Only what building and running the logger needs: no test toolchain for `make run`.
deps-run:
	@bash scripts/install-deps.sh run

$(BUILD)/Makefile: CMakeLists.txt | deps
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON -DPL_TESTS=ON >/dev/null

build: deps $(BUILD)/Makefile
	@$(CMAKE) -S . -B $(BUILD) -DPL_TESTS=ON >/dev/null
	@echo "build: compiling into $(BUILD)/ (log: $(BUILD)/build.log)"
	@$(CMAKE) --build $(BUILD) -j $(JOBS) -- --no-print-directory >$(BUILD)/build.log || { cat $(BUILD)/build.log; exit 1; }

RUN_ARGS ?=
run: deps-run
	@[ -f $(BUILD)/Makefile ] || $(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON >/dev/null
	@echo "build: compiling the program into $(BUILD)/ (log: $(BUILD)/build.log)"
	@$(CMAKE) --build $(BUILD) -j $(JOBS) --target powerlogger -- --no-print-directory >$(BUILD)/build.log || { cat $(BUILD)/build.log; exit 1; }
	@echo "run: powerlogger run $(RUN_ARGS) (store ./powerlogger.db; Ctrl-C stops, a rerun resumes)"
	@PL_PROFILE="$(DATA)/refit-house1-2015-01-08.csv" $(BUILD)/powerlogger run $(RUN_ARGS)

demo: build
	@bash scripts/demo.sh $(BUILD)/powerlogger "$(DATA)"

# One test per core: most tests wait on a daemon or a server, but at two or three per core
# timing-sensitive ones (cli_live, cli_lifecycle, cli_mqtt_chaos) failed now and then; the
# COST and RESOURCE_LOCK properties (CMakeLists.txt) still order them. TEST_JOBS=N to try more.
TEST_JOBS ?= $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(TEST_JOBS)

# Every test under ASan+UBSan, but for the two things that are only longer there, not
# different: the flash log's exhaustive power-cut sweeps (a stride of them, PL_FLASHLOG_QUICK;
# all of them in `test` and under qemu) and the accuracy matrix (the detector's memory safety
# is the fuzzers' and test_detector's; the matrix's counts are `test`'s).
test-asan: deps
	@$(CMAKE) -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DPL_SANITIZE=ON -DPL_WERROR=ON \
	  -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build $(BUILD)-asan -j $(JOBS)
	@cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  PL_FLASHLOG_QUICK=1 ctest --output-on-failure -j $(TEST_JOBS) -E '^cli_accuracy$$'

test-valgrind: build
	@bash scripts/valgrind-tests.sh $(BUILD)

fuzz-build: deps
	@$(CMAKE) -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=Debug -DPL_FUZZ=ON -DPL_TESTS=OFF -DPL_WERROR=ON \
	  -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" >/dev/null
	@$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS)

fuzz: fuzz-build
	@FUZZ_SEED=$${FUZZ_SEED:-0} bash scripts/run-fuzzers.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

fuzz-check: fuzz-build
	@bash scripts/run-fuzzers.sh $(BUILD)-fuzz 20

freestanding: deps
	@bash scripts/check-freestanding.sh
	@bash scripts/fw-footprint.sh

# The ESP32 firmware with the user's ESP-IDF; prints "skipped" where IDF_PATH is unset.
firmware:
	@bash scripts/build-firmware.sh

# Every CMake build type with gcc and clang, warnings as errors (what packagers build).
# (The one combination `test` built already, in $(BUILD)/, is brought up to date there.)
build-matrix: deps
	@bash scripts/build-matrix.sh $(BUILD)-matrix $(BUILD)

# The Raspberry Pi builds (arm64, armhf) cross-compiled, their unit tests under qemu-user.
check-arm: deps-deb
	@JOBS=$(JOBS) bash scripts/check-arm.sh $(BUILD)

CHECK_STAGES = spdx test test-asan test-valgrind fuzz-check freestanding firmware build-matrix \
	check-deb check-arm
check:
	@bash scripts/check.sh $(CHECK_STAGES)

# Every source file names its licence (LICENSE); `scripts/spdx.sh --add` adds it.
spdx:
	@bash scripts/spdx.sh

bench: build freestanding
	@bash bench/run.sh $(BUILD) "$(DATA)"

# Drain and footprint of this tree against an earlier revision, in one run: make bench-compare REV=...
REV ?= HEAD~1
bench-compare: build
	@bash bench/before-after.sh $(REV) $(BUILD)

# Install into PREFIX (default /usr/local), the configuration in PREFIX/etc (/etc for
# PREFIX=/usr); DESTDIR stages it elsewhere. The unit and configuration name PREFIX's paths.
PREFIX  ?= /usr/local
DESTDIR ?=
install: deps-run
	@[ -f $(BUILD)/Makefile ] || $(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS) --target powerlogger -- --no-print-directory >$(BUILD)/build.log || { cat $(BUILD)/build.log; exit 1; }
	@DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD)

# The Debian package from this tree, built in a copy under build-deb/ (dpkg-buildpackage writes
# beside its source): build-deb/powerlogger_VERSION_ARCH.deb, then lintian. DEB_ARCH=arm64 or
# armhf cross-builds (the cross toolchain and the multiarch libraries installed beforehand).
DEB_ARCH ?=
deps-deb:
	@bash scripts/install-deps.sh deb

deb: deps-deb
	@bash scripts/build-deb.sh $(if $(DEB_ARCH),-a $(DEB_ARCH)) build-deb

check-deb: deps-deb
	@bash tests/pkg/install-test.sh
	@bash tests/pkg/deb-test.sh

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz $(BUILD)-arm $(BUILD)-matrix $(BUILD)-arm64 \
	  $(BUILD)-armhf build-deb
