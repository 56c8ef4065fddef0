# Makefile — builds libasr.a, the asr binary and the unit tests.
#   make            optimised build in build/
#   make SAN=1      AddressSanitizer + UndefinedBehaviorSanitizer build in build-san/
#   make test       build, then run the whole suite (tests/run.sh)
CC      ?= cc
PKGS    := libavformat libavcodec libswresample libavutil libmicrohttpd jansson zlib
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

ifeq ($(SAN),1)
BUILD   := build-san
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -march=x86-64-v3
LDSAN   := -fsanitize=address,undefined
else
BUILD   := build
OPT     := -O3 -g -march=x86-64-v3 -ffp-contract=off
LDSAN   :=
endif
CFLAGS  += $(CFLAGS_BASE) $(OPT)
LDLIBS  := $(PKG_LIBS) -lm -pthread $(LDSAN)

LIB_SRC    := $(wildcard src/*.c)
SERVER_SRC := $(wildcard src/server/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)
TEST_SRC   := $(wildcard tests/unit/*.c)

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
APP_OBJ    := $(SERVER_SRC:%.c=$(BUILD)/%.o) $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN   := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test clean
all: $(BUILD)/asr $(TEST_BIN)

$(BUILD)/libasr.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/asr: $(APP_OBJ) $(BUILD)/libasr.a
	$(CC) $(OPT) -o $@ $(APP_OBJ) $(BUILD)/libasr.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libasr.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libasr.a $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

test: all
	BUILD=$(BUILD) bash tests/run.sh

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(APP_OBJ:.o=.d)
