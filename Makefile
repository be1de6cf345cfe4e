# orderflow: one Makefile, dependencies from pkg-config, everything built
# under build/ (build/san-<list>/ for sanitizer builds).

PKGS      = rdkafka sqlite3 libcjson libmicrohttpd
TEST_PKGS = cmocka
PREFIX   ?= /usr/local
# The release; `orderflow --version` adds the git revision it was built from.
VERSION   = 0.9.0
DESTDIR  ?=
CC       ?= cc

WARN = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wformat=2
ifeq ($(WERROR),1)
WARN += -Werror
endif

ifneq ($(SANITIZE),)
B       ?= build/san-$(subst $(comma),-,$(SANITIZE))
SANFLAGS = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
           -fno-sanitize-recover=all
else
B       ?= build
endif
comma := ,

CPPFLAGS += -Iinclude -D_GNU_SOURCE -MMD -MP
CFLAGS   += -std=c11 -g -O2 $(WARN) $(SANFLAGS) \
            $(shell pkg-config --cflags $(PKGS))
LDFLAGS  += $(SANFLAGS)
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lm -lpthread

LIB_SRCS = src/error.c src/log.c src/timestamp.c src/event.c src/idfilter.c \
           src/event_fast.c \
           src/event_general.c \
           src/json.c src/lathist.c src/dbwatch.c src/cursor.c \
           src/kafka.c \
           src/store.c src/store_batch.c src/store_apply.c src/store_runs.c \
           src/store_prune.c src/store_query.c \
           src/store_swap.c src/metrics.c \
           src/projector.c src/projector_consumer.c src/projector_metrics.c \
           src/projector_partitions.c \
           src/print.c \
           src/broker.c \
           src/sqldb.c src/appdb.c src/outbox.c src/outbox_view.c src/uuid.c \
           src/relay.c src/relay_wait.c src/relay_metrics.c \
           src/rebuild.c src/cli.c src/cli_opt.c
BIN_SRCS = src/main.c $(wildcard src/cmd_*.c)
TESTS    = $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))
# the tools of the tests on real Kafka (tests/kafka/)
KAFKA_TOOLS = $(B)/tests/kafka/kadmin $(B)/tests/kafka/tcpproxy

# schema/<name>.sql, in the order of_schema_<name>[] is written
SCHEMAS  = readmodel appdb

LIB_OBJS = $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRCS)) $(B)/obj/schema.o \
           $(B)/obj/version.o
BIN_OBJS = $(patsubst src/%.c,$(B)/obj/%.o,$(BIN_SRCS))

.PHONY: all test test-kafka test-faults bench fuzz valgrind demo clean install \
        lint uninstall check-install FORCE
all: $(B)/orderflow $(TESTS)

$(B)/orderflow: $(BIN_OBJS) $(B)/liborderflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/liborderflow.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The binary carries its schema: each schema/<name>.sql becomes the
# NUL-terminated byte array of_schema_<name>[] of one generated file (od
# keeps this free of xxd), compiled once into the library and declared in
# src/schema.h.
$(B)/gen/schema.c: $(patsubst %,schema/%.sql,$(SCHEMAS))
	@mkdir -p $(dir $@)
	{ echo '#include "schema.h"'; \
	  for s in $(SCHEMAS); do \
	    echo "const char of_schema_$$s[] = {"; \
	    od -An -v -tx1 schema/$$s.sql | \
	      sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	    echo "0x00};"; \
	  done; } > $@.tmp && mv $@.tmp $@

# of_version[] and of_git_revision[] (include/orderflow/version.h): the
# file is written when make reads this Makefile, and only when its text
# changes, so a new commit rebuilds version.o alone and an unchanged tree
# leaves make nothing to do. Outside a git checkout the revision is
# "unknown".
GIT_REV := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
GIT_REV := $(GIT_REV)$(shell test "$(GIT_REV)" = unknown || \
             git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
VERSION_C = \#include "orderflow/version.h"\nconst char of_version[] = \
            "$(VERSION)";\nconst char of_git_revision[] = "$(GIT_REV)";
$(shell mkdir -p $(B)/gen && printf '$(VERSION_C)\n' > $(B)/gen/version.c.new \
        && { cmp -s $(B)/gen/version.c.new $(B)/gen/version.c || \
             mv $(B)/gen/version.c.new $(B)/gen/version.c; }; \
        rm -f $(B)/gen/version.c.new)

$(B)/obj/version.o: $(B)/gen/version.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/obj/schema.o: $(B)/gen/schema.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc $(CFLAGS) -c -o $@ $<

$(B)/tests/%: tests/%.c $(B)/tests/testutil.o $(B)/liborderflow.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) \
	  $(shell pkg-config --cflags $(TEST_PKGS)) -o $@ $< $(filter %.o,$^) \
	  $(LDFLAGS) $(B)/liborderflow.a $(LDLIBS) \
	  $(shell pkg-config --libs $(TEST_PKGS))

# The fixtures every test program links (tests/testutil.c).
$(B)/tests/testutil.o: tests/testutil.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) \
	  $(shell pkg-config --cflags $(TEST_PKGS)) -c -o $@ $<

# test_property's parts (tests/prop/), compiled like the tests and linked
# into it; named here so that make keeps them (no intermediate files).
PROP_OBJS = $(patsubst tests/%.c,$(B)/tests/%.o,$(wildcard tests/prop/*.c))
$(B)/tests/test_property: $(PROP_OBJS)

$(B)/tests/prop/%.o: tests/prop/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) \
	  $(shell pkg-config --cflags $(TEST_PKGS)) -c -o $@ $<

$(B)/bench/%: tests/bench/%.c $(B)/liborderflow.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS) $(B)/liborderflow.a \
	  $(LDLIBS)

test: all
	B=$(B) tests/run.sh

valgrind: all
	B=$(B) tests/valgrind.sh

# The layout rules: file and function lengths, .clang-format (tests/lint.sh).
lint:
	tests/lint.sh

# The fault suite (tests/faults/): kills, SQLite and broker faults; a few
# minutes. The long projector-kill scenario first, beside the others.
FAULTS = projector_kill relay_kill sqlite_faults failover broker_faults \
         rebuild_kill
test-faults: $(B)/orderflow
	B=$(B) TEST_JOBS=$${FAULTS_JOBS:-2} TEST_TIMEOUT=$${FAULTS_TIMEOUT:-400} \
	  tests/run.sh $(patsubst %,tests/faults/%.sh,$(FAULTS))

# BROKER=kafka: on real Apache Kafka (tests/kafka/broker.sh); BROKER=both:
# the embedded broker, then Kafka, in one run.
BROKER ?= embedded
bench: $(B)/orderflow $(B)/bench/bench_store $(B)/bench/bench_latency \
       $(KAFKA_TOOLS)
	B=$(B) BENCH_BROKER=$(BROKER) tests/bench.sh

# The same command-line tests on a real Apache Kafka cluster
# (tests/kafka/broker.sh, fetched from Maven Central once into build/kafka/
# by tests/kafka/fetch.sh: needs Java 17 and Maven), and what only a real
# broker shows (tests/kafka/cases/). `orderflow broker`'s own test stays on
# the embedded one.
KAFKA_TESTS = $(filter-out tests/cli/broker.sh,$(wildcard tests/cli/*.sh)) \
              $(wildcard tests/kafka/cases/*.sh)
test-kafka: $(B)/orderflow $(KAFKA_TOOLS)
	tests/kafka/fetch.sh >/dev/null
	B=$(B) OF_TEST_BROKER=$(CURDIR)/tests/kafka/broker.sh \
	  OF_TEST_BROKER_WAIT=180 TEST_JOBS=$${TEST_JOBS:-2} \
	  tests/run.sh $(or $(T),$(KAFKA_TESTS))

# libFuzzer (clang): build/fuzz/fuzz_<name> from tests/fuzz/fuzz_<name>.c;
# `make fuzz` runs each for FUZZ_SECONDS on a corpus under build/fuzz/
# grown from tests/fuzz/seeds/<name>/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS    = -std=c11 -g -O1 $(WARN) -Wno-gnu-statement-expression \
                -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all \
                $(shell pkg-config --cflags $(PKGS))
FUZZ_TARGETS  = $(patsubst tests/fuzz/%.c,build/fuzz/%,\
                  $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJS     = $(patsubst src/%.c,build/fuzz/obj/%.o,$(LIB_SRCS)) \
                build/fuzz/obj/schema.o build/fuzz/obj/version.o

build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link \
	  -c -o $@ $<

build/fuzz/obj/schema.o: $(B)/gen/schema.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -Isrc $(FUZZ_FLAGS) \
	  -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/obj/version.o: $(B)/gen/version.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link \
	  -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ \
	  $(filter %.c %.o,$^) \
	  $(LDLIBS)

fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	  n=$${t#build/fuzz/fuzz_}; mkdir -p build/fuzz/corpus-$$n; \
	  echo "== $$t for $(FUZZ_SECONDS) s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crash-$$n- \
	    build/fuzz/corpus-$$n tests/fuzz/seeds/$$n || exit 1; \
	done

demo: $(B)/orderflow
	$(B)/orderflow demo

clean:
	rm -rf build

# ---- install, uninstall, check-install
# GNU-style directories under PREFIX, each overridable, all below DESTDIR
# (a packager's staging root). systemd reads units from
# /usr/lib/systemd/system and /usr/local/lib/systemd/system, and
# systemd-sysusers reads /usr/lib/sysusers.d and /usr/local/lib/sysusers.d
# (systemd-analyze unit-paths, systemd-sysusers --cat-config), so
# PREFIX/lib/... suits both /usr and /usr/local; for another PREFIX, point
# SYSTEMDUNITDIR and SYSUSERSDIR at /etc/systemd/system and /etc/sysusers.d.
# bash-completion looks in DIR/bash-completion/completions for each DIR of
# XDG_DATA_DIRS (default /usr/local/share:/usr/share).
BINDIR         ?= $(PREFIX)/bin
DATADIR        ?= $(PREFIX)/share
MANDIR         ?= $(DATADIR)/man
DOCDIR         ?= $(DATADIR)/doc/orderflow
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
BASHCOMPDIR    ?= $(DATADIR)/bash-completion/completions

# What install copies from the tree: the pages and docs other people write
# are taken as they are (wildcards); uninstall removes the same names.
# README.md and docs/ keep their places relative to each other under
# DOCDIR, so that their links between each other still work.
MAN_PAGES = $(wildcard man/*.1)
DOCS      = $(wildcard docs/*.md)
EXAMPLES  = contrib/projector.env.example contrib/relay.env.example \
            contrib/kafka.properties.example
UNITS     = orderflow-projector@.service orderflow-relay@.service
GEN_UNITS = $(patsubst %,$(B)/contrib/%,$(UNITS))

# The units name the installed binary and files: contrib/UNIT.in with
# @BINDIR@, @DOCDIR@ and @SYSUSERSDIR@ replaced. $(B)/contrib/dirs holds
# those three and changes only when they do, so a `make install
# PREFIX=/usr` after a build for /usr/local writes the units again and
# nothing else.
INSTALL_DIRS = printf '%s\n' '$(BINDIR)' '$(DOCDIR)' '$(SYSUSERSDIR)'
$(B)/contrib/dirs: FORCE
	@$(INSTALL_DIRS) | cmp -s - $@ || \
	  { mkdir -p $(dir $@) && $(INSTALL_DIRS) >$@; }

$(B)/contrib/%: contrib/%.in $(B)/contrib/dirs
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
	  -e 's|@SYSUSERSDIR@|$(SYSUSERSDIR)|g' $< >$@.tmp && mv $@.tmp $@

FORCE:

# install needs only the binary and the units: after `make`, a `sudo make
# install` with the same PREFIX writes nothing under $(B).
install: $(B)/orderflow $(GEN_UNITS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(DOCDIR)/examples \
	  $(DESTDIR)$(SYSTEMDUNITDIR) \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(B)/orderflow $(DESTDIR)$(BINDIR)/orderflow
	$(if $(MAN_PAGES),install -m 644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/)
	install -m 644 README.md $(DESTDIR)$(DOCDIR)/
	$(if $(DOCS),install -m 644 $(DOCS) $(DESTDIR)$(DOCDIR)/docs/)
	install -m 644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/
	install -m 644 $(GEN_UNITS) $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -m 644 contrib/orderflow.sysusers.conf \
	  $(DESTDIR)$(SYSUSERSDIR)/orderflow.conf
	install -m 644 contrib/orderflow.bash-completion \
	  $(DESTDIR)$(BASHCOMPDIR)/orderflow

# Exactly the files install writes, then DOCDIR and its folders if they
# are empty; never a shared folder.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/orderflow \
	  $(patsubst man/%,$(DESTDIR)$(MANDIR)/man1/%,$(MAN_PAGES)) \
	  $(DESTDIR)$(DOCDIR)/README.md \
	  $(patsubst %,$(DESTDIR)$(DOCDIR)/%,$(DOCS)) \
	  $(patsubst contrib/%,$(DESTDIR)$(DOCDIR)/examples/%,$(EXAMPLES)) \
	  $(patsubst %,$(DESTDIR)$(SYSTEMDUNITDIR)/%,$(UNITS)) \
	  $(DESTDIR)$(SYSUSERSDIR)/orderflow.conf \
	  $(DESTDIR)$(BASHCOMPDIR)/orderflow
	rmdir $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(DOCDIR)/examples \
	  $(DESTDIR)$(DOCDIR) 2>/dev/null || :

# The packaging check (tests/install.sh): install into a scratch DESTDIR
# with PREFIX=/usr and /usr/local, verify the tree, the binary, the pages,
# the units and the sysusers file, uninstall, verify nothing is left.
check-install: $(B)/orderflow
	B=$(B) MAKE=$(MAKE) tests/install.sh

# Header dependencies (-MMD -MP) of everything compiled: the library, the
# binary, the test programs and their tools, the benchmark, the fuzzers.
-include $(wildcard $(B)/obj/*.d $(B)/tests/*.d $(B)/tests/prop/*.d \
                    $(B)/tests/kafka/*.d $(B)/bench/*.d build/fuzz/*.d \
                    build/fuzz/obj/*.d)
