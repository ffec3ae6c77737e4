# Build, package and test the Loki log-driver plugin. `make help` lists targets.
SHELL := /bin/bash
ARCH ?= amd64
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# Local name of the plugin, used with --log-driver.
ALIAS ?= loki
# Repository for push/upgrade: one tag per architecture (plugins have no multi-arch manifests).
REPOSITORY ?= 127.0.0.1:5000/loki-logdriver
TAG ?= $(VERSION)-$(ARCH)
REMOTE ?= $(REPOSITORY):$(TAG)
# The plugin's packaging home: `make rootfs` copies the manifest (config.json, at
# the root) into it and assembles rootfs/ beside it for ARCH (both ignored by
# git), as Grafana's Makefile does.
PLUGIN_DIR := plugin

# Test targets built for arm64 or armv7 and run under qemu: the unit tests and the
# tests that start the plugin binary (every tests/*.rs but the real-Docker suite).
CROSS_TESTS := --lib --bins $(patsubst tests/%.rs,--test %,$(filter-out tests/e2e.rs,$(wildcard tests/*.rs)))

.PHONY: help build rootfs plugin enable disable install upgrade push uninstall clean test e2e smoke test-arm64 test-armv7 bench soak lint fuzz fuzz-smoke

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'
	@echo "Variables: ARCH=$(ARCH) ALIAS=$(ALIAS) REMOTE=$(REMOTE)"

build: ## Static release binary and plugin/rootfs for ARCH (amd64, arm64, armv7: see rootfs-build)
	ARCH=$(ARCH) ./rootfs-build $(PLUGIN_DIR)

rootfs: build ## Plugin directory plugin/ (config.json + rootfs/ for ARCH)
	@du -sh $(PLUGIN_DIR)/rootfs

plugin: rootfs ## docker plugin create ALIAS from the local build
	docker plugin create $(ALIAS) $(PLUGIN_DIR)

enable: ## docker plugin enable --timeout 0 ALIAS (no 30 s cut of docker logs -f)
	docker plugin enable --timeout 0 $(ALIAS)

disable: ## docker plugin disable ALIAS (refused while containers use it)
	docker plugin disable $(ALIAS)

install: plugin enable ## Create and enable the plugin as ALIAS (default: loki)

push: rootfs ## Create REMOTE (REPOSITORY:VERSION-ARCH) and docker plugin push it
	docker plugin create $(REMOTE) $(PLUGIN_DIR)
	docker plugin push $(REMOTE)
	docker plugin rm $(REMOTE)

# docker plugin upgrade replaces the config, mount sources included (the
# settings of env values survive): the sources set before are set again.
upgrade: push ## Push this build, then disable -f, docker plugin upgrade ALIAS REMOTE (keeping mount sources), enable
	mounts=$$(docker plugin inspect -f '{{range .Config.Mounts}}{{.Name}}.source={{.Source}} {{end}}' $(ALIAS)) && \
	docker plugin disable -f $(ALIAS) && \
	docker plugin upgrade --grant-all-permissions --skip-remote-check $(ALIAS) $(REMOTE) && \
	for mount in $$mounts; do docker plugin set $(ALIAS) "$$mount" || true; done && \
	docker plugin enable --timeout 0 $(ALIAS)

uninstall: ## Disable and remove ALIAS
	-docker plugin disable $(ALIAS)
	docker plugin rm $(ALIAS)

clean: ## Remove build outputs
	cargo clean
	rm -rf build $(PLUGIN_DIR)/rootfs

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

test: ## Every test: unit, fake daemon + fake Loki, real-Docker e2e (on each engine of E2E_ENGINE)
	cargo test

e2e: ## Only the real-Docker end-to-end suite, on E2E_ENGINE=20.10|29|all (tests/e2e-setup prepares it)
	tests/e2e-setup
	cargo test --test e2e

smoke: ## Smoke test of plugin/rootfs's binary for ARCH (under qemu for arm64, armv7): --version, Capabilities
	tests/smoke-binary $(ARCH) $(PLUGIN_DIR)

test-arm64: ## Unit tests and the plugin-binary tests built for arm64, run under qemu (release)
	RUSTFLAGS="$${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_PROFILE_RELEASE_PANIC=unwind \
	  scripts/cross-cargo aarch64-unknown-linux-gnu test --release --locked $(CROSS_TESTS)

test-armv7: ## The same as test-arm64, built for armv7 (32-bit), under qemu-arm-static
	RUSTFLAGS="$${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_PROFILE_RELEASE_PANIC=unwind \
	  scripts/cross-cargo armv7-unknown-linux-gnueabihf test --release --locked $(CROSS_TESTS)

bench: ## Figures: the plugin on a real engine (needs Docker), and a FIFO stress run
	cargo bench --bench engine
	cargo bench --bench pipeline

soak: ## The long fault runs: a 10-minute Loki outage, a container refused (429) for 3 minutes, 200 containers refused for 2 minutes, 1,000,000 lines into a full disk
	LOKI_OUTAGE_SECONDS=600 LOKI_REFUSAL_SECONDS=180 MEMORY_SOAK_SECONDS=120 DISK_FULL_LINES=1000000 cargo test --release --test durability --test lanes -- --nocapture --test-threads=1

FUZZ_SECONDS ?= 600
fuzz-smoke: ## Every fuzz target for 20 s (nightly; installs cargo-fuzz if missing)
	FUZZ_SECONDS=20 scripts/fuzz-smoke

fuzz: ## Every fuzz target for FUZZ_SECONDS each (default 600; FUZZ_TARGETS="a b" to pick)
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz-smoke
