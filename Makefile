# SPDX-License-Identifier: GPL-2.0
#
# kvmq: out-of-tree build of the module, its selftests and the test host.
#
#   make               build kvmq/kvmq.ko against Debian's 6.12 headers
#   make check         build everything, boot the test host, run the selftests
#   make check-debug   the same on a debug kernel (lockdep, KASAN, kmemleak, ...)
#   make demo          boot the test host and run the pipeline of three Linux
#                      guests under QEMU (make demo-selftest: selftest guests;
#                      make demo-compare: the pipeline three ways side by side)
#   make bench         boot the test host and print the cost of each message kind
#   make style         checkpatch.pl --strict on the modules and UAPI sources
#   make guest         build the guest driver guest/kvmq_guest.ko and the
#                      static CLI tools/kvmq/kvmq (Documentation/guest.rst)
#   make guest-test    run the CLI's unit tests on this machine
#   make install       install the module for $(KVER) (modules_install)
#   make deps          fetch headers, kernel image, sources, QEMU (apt)
#
# KVER and KDIR select another kernel: make KDIR=/path/to/kernel/build

SHELL := /bin/bash
.DEFAULT_GOAL := all

deps:
	scripts/deps.sh

ENV := . $(CURDIR)/scripts/kvmq-env.sh
KVER ?= $(shell $(ENV) 2>/dev/null && echo $$KVER)
KVMQ_WERROR ?= $(if $(CI),y)

ifeq ($(KVER)$(KDIR),)
# A bare machine: apt has no package lists to resolve KVER from yet.
all modules install selftests style check check-debug demo demo-selftest demo-compare bench guest clean:
	scripts/deps.sh
	$(MAKE) $@
else

KDIR ?= /usr/src/linux-headers-$(KVER)
KSRC ?= $(shell $(ENV) && echo $$KSRC)
export KVER KDIR KSRC

SELFTESTS := tools/testing/selftests/kvmq
GUEST_TOOLS := tools/kvmq
KERNEL_SOURCES := $(filter-out %.mod.c,$(wildcard kvmq/*.c kvmq/*.h \
					 guest/*.c guest/*.h)) \
		  $(wildcard include/uapi/linux/kvmq*.h)

all: modules

# Fetch the headers on first use unless KDIR names an existing tree.
$(KDIR)/Makefile:
	scripts/deps.sh

modules: $(KDIR)/Makefile
	$(MAKE) -C $(KDIR) M=$(CURDIR) KVMQ_WERROR=$(KVMQ_WERROR) modules

install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install

selftests: deps
	$(MAKE) -C $(SELFTESTS) KSRC=$(KSRC) KVMQ_WERROR=$(KVMQ_WERROR)

# The guest side: the driver, against the same headers (the guests run the
# same kernel), and the CLI, linked statically for a busybox initramfs.
guest: deps
	$(MAKE) -C $(KDIR) M=$(CURDIR)/guest KVMQ_WERROR=$(KVMQ_WERROR) modules
	$(MAKE) -C $(GUEST_TOOLS) KVMQ_WERROR=$(KVMQ_WERROR)

guest-test:
	$(MAKE) -C $(GUEST_TOOLS) KVMQ_WERROR=$(KVMQ_WERROR) test

style: deps
	perl $(KSRC)/scripts/checkpatch.pl --no-tree --strict --terse \
		--ignore FILE_PATH_CHANGES -f $(KERNEL_SOURCES)

check: modules selftests guest guest-test
	scripts/klog-idle-test.sh
	scripts/run-tests.sh

demo: modules selftests guest
	scripts/demo.sh

demo-selftest: modules selftests
	scripts/demo.sh kvmq_demo

demo-compare: modules selftests guest
	scripts/demo.sh compare

bench: modules selftests
	scripts/demo.sh kvmq_bench

# The debug lane: the suite, both lanes, on a kernel built from KSRC's
# package with lockdep, KASAN, kmemleak, debug objects, fault injection
# (scripts/debug-kernel.sh, cached).  The module builds against it from a
# copy of its sources, so that kvmq/kvmq.ko stays the one for $(KVER).
DEBUG_BUILD := $(shell $(ENV) && echo $${KVMQ_DEBUG_BUILD:-$$KVMQ_CACHE/debug-build})
DEBUG_KDIR := $(DEBUG_BUILD)/obj
DEBUG_MOD := $(DEBUG_BUILD)/kvmq

check-debug: selftests
	scripts/debug-kernel.sh
	mkdir -p $(DEBUG_MOD)
	rsync -a --delete --exclude-from=.gitignore Kbuild kvmq include $(DEBUG_MOD)/
	$(MAKE) -C $(DEBUG_KDIR) M=$(DEBUG_MOD) KVMQ_WERROR=$(KVMQ_WERROR) modules
	KVMQ_KERNEL=$(DEBUG_KDIR)/arch/x86/boot/bzImage \
	KVMQ_MODULE=$(DEBUG_MOD)/kvmq/kvmq.ko \
	KVMQ_RESULTS=$${KVMQ_RESULTS:-$(DEBUG_BUILD)/results} \
	KVMQ_MEM=$${KVMQ_MEM:-6G} \
	KVMQ_FUZZ_HYPERCALLS=$${KVMQ_FUZZ_HYPERCALLS:-100000} \
	scripts/run-tests.sh $${KVMQ_DEBUG_TESTS:-}

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	$(MAKE) -C $(KDIR) M=$(CURDIR)/guest clean
	$(MAKE) -C $(SELFTESTS) clean
	$(MAKE) -C $(GUEST_TOOLS) clean

endif

.PHONY: all deps modules install selftests style check check-debug demo demo-selftest demo-compare bench \
	guest guest-test clean
