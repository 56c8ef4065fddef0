# Makefile — builds libasr.a, the asr binary and the unit tests.
#   make            optimised build in build/
#   make SAN=1      AddressSanitizer + UndefinedBehaviorSanitizer build in build-san/
#   make test       build, then run the whole suite (tests/run.sh)
#   make fuzz       libFuzzer harnesses (model loaders, audio, tokenizer, formats, zip, ws, routes; clang, ASan+UBSan) in build-fuzz/
CC      ?= cc
PKGS    := libavformat libavcodec libswresample libavutil libmicrohttpd jansson zlib libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
# OpenBLAS's pthread build, told to use one thread (model.c): asr splits
# matrix work over each request state's own threads and calls sgemm from
# several of them at once, which Debian's single-threaded build does not
# survive (it has no locking around its buffers). The rpath keeps another
# variant picked by Debian's alternatives from being loaded at run time.
MULTIARCH  := $(shell $(CC) -print-multiarch)
BLAS_DIR   := /usr/lib/$(MULTIARCH)/openblas-pthread
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -Iinclude -Isrc -I/usr/include/$(MULTIARCH)/openblas-pthread $(WARN) $(PKG_CFLAGS) -pthread -MMD -MP

# MARCH is the baseline every file is compiled for; `make MARCH=` builds for
# the compiler's default target. The kernels in src/cpu/ named *_avx2.c,
# *_avx512.c, *_vnni.c and *_bf16.c are compiled for their own instruction
# set whatever MARCH is, and run only where cpuid finds it (src/cpu/features.c).
MARCH   ?= -march=x86-64-v3
ifeq ($(FUZZ),1)
CC      := clang
BUILD   := build-fuzz
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined $(MARCH)
LDSAN   := -fsanitize=address,undefined
else ifeq ($(SAN),1)
BUILD   := build-san
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined $(MARCH)
LDSAN   := -fsanitize=address,undefined
else
BUILD   := build
OPT     := -O3 -g $(MARCH) -ffp-contract=off
LDSAN   :=
endif
ifneq ($(filter x86_64%,$(shell $(CC) -dumpmachine)),)
ISA_AVX2   := -mavx2 -mfma -mf16c
ISA_AVX512 := $(ISA_AVX2) -mavx512f -mavx512bw -mavx512vl -mavx512dq
ISA_VNNI   := $(ISA_AVX512) -mavx512vnni
ISA_BF16   := $(ISA_AVX512) -mavx512bf16
endif
CFLAGS  += $(CFLAGS_BASE) $(OPT)
LDLIBS  := $(PKG_LIBS) -lm -pthread $(LDSAN)

LIB_SRC    := $(wildcard src/*.c) $(wildcard src/cpu/*.c)
SERVER_SRC := $(wildcard src/server/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)
CATALOG_SRC := $(wildcard src/catalog/*.c)
TEST_SRC   := $(wildcard tests/unit/*.c)
WEB_FILES  := $(sort $(wildcard src/server/web/*))

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
APP_OBJ    := $(SERVER_SRC:%.c=$(BUILD)/%.o) $(CLI_SRC:%.c=$(BUILD)/%.o) \
              $(CATALOG_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/web_files.o
TEST_BIN   := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test clean fuzz fuzz-targets bench-kernels bench-engine
all: $(BUILD)/asr $(TEST_BIN)

$(BUILD)/libasr.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/asr: $(APP_OBJ) $(BUILD)/libasr.a
	$(CC) $(OPT) -o $@ $(APP_OBJ) $(BUILD)/libasr.a $(LDLIBS)

# Per-test link flags: test_alloc_fail routes libasr's allocations through its own wrappers.
TEST_LDFLAGS_test_alloc_fail := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc,--wrap=posix_memalign,--wrap=strdup,--wrap=free

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libasr.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libasr.a $(LDLIBS) $(TEST_LDFLAGS_$*)

# The web page of `asr serve` (src/server/web/), compiled in as byte arrays.
# The directory too, so that removing a file rebuilds the list.
$(BUILD)/gen/web_files.c: $(WEB_FILES) src/server/web/. scripts/embed-files.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-files.sh $(WEB_FILES) >$@.tmp && mv $@.tmp $@

$(BUILD)/gen/web_files.o: $(BUILD)/gen/web_files.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The hub's base URL when HF_ENDPOINT is not set: none unless the build
# names one (make HUB_ENDPOINT=URL); the source names no host.
HUB_ENDPOINT ?=
$(BUILD)/src/catalog/hub.o: CFLAGS += -DASR_HUB_ENDPOINT='"$(HUB_ENDPOINT)"'

# The VAD weights are assembled into the library (.incbin in vad_weights.c).
$(BUILD)/src/vad_weights.o: models/silero_vad_v6.bin

$(BUILD)/src/cpu/%_avx2.o: CFLAGS += $(ISA_AVX2)
$(BUILD)/src/cpu/%_avx512.o: CFLAGS += $(ISA_AVX512)
$(BUILD)/src/cpu/%_vnni.o: CFLAGS += $(ISA_VNNI)
$(BUILD)/src/cpu/%_bf16.o: CFLAGS += $(ISA_BF16)

# Measuring programs (bench/*.c), never run by the tests: kernel GFLOP/s
# (bench/kernels.c), one transcription per compute type, the forward passes' times (bench/engine.c).
BENCH_BIN := $(BUILD)/bench/kernels $(BUILD)/bench/compute_types
bench-kernels: $(BENCH_BIN)
$(BUILD)/bench/kernels: CFLAGS += $(ISA_VNNI) $(ISA_BF16)
# encoder ms per window and decoder ms per token (bench/engine.c, bench/engine_shapes.py)
bench-engine: $(BUILD)/bench/engine
$(BUILD)/bench/%: bench/%.c $(BUILD)/libasr.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libasr.a $(LDLIBS)

test: all
	BUILD=$(BUILD) bash tests/run.sh

# The fuzzers link libFuzzer's main; make_fuzz_seeds writes their seed corpus.
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c)) build-fuzz/make_fuzz_seeds
fuzz:
	$(MAKE) FUZZ=1 fuzz-targets

fuzz-targets: $(FUZZ_BIN)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_utf8.h $(BUILD)/libasr.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libasr.a $(LDLIBS)

# The WebSocket framer is server code, outside libasr: compiled in with its harness.
build-fuzz/fuzz_ws: tests/fuzz/fuzz_ws.c src/server/ws.c src/server/ws.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ tests/fuzz/fuzz_ws.c src/server/ws.c $(LDSAN)

# The request handling is server code, outside libasr: compiled in with its
# harness, which stands in for the worker pool (jobs.c) and has no CLI.
FUZZ_ROUTES_SRC := $(filter-out src/server/jobs.c src/server/serve_cmd.c,$(SERVER_SRC))
build-fuzz/fuzz_routes: tests/fuzz/fuzz_routes.c $(FUZZ_ROUTES_SRC) $(wildcard src/server/*.h) build-fuzz/gen/web_files.o \
                        $(BUILD)/libasr.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ tests/fuzz/fuzz_routes.c $(FUZZ_ROUTES_SRC) build-fuzz/gen/web_files.o \
	    $(BUILD)/libasr.a $(LDLIBS)

# The ZIP reader is catalogue code, compiled into its harness from this directory.
FUZZ_ZIP_DIR := src/catalog
build-fuzz/fuzz_zip: CFLAGS += -I$(FUZZ_ZIP_DIR)
build-fuzz/fuzz_zip: $(FUZZ_ZIP_DIR)/zip.c $(FUZZ_ZIP_DIR)/sha256.c

build-fuzz/make_fuzz_seeds: tests/fuzz/make_fuzz_seeds.c tests/unit/synth_model.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LDSAN)

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(APP_OBJ:.o=.d)
