# patroni-lab. `make up` brings the lab up; `make test` runs the tests against it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# docker compose (v2) when present, else docker-compose (1.29).
COMPOSE := $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi)
# A TTY for `docker exec` only when there is one (CI has none).
EXEC_TTY := $(shell [ -t 0 ] && [ -t 1 ] && echo -it || echo -i)
PATRONICTL := patronictl -c /etc/patroni/patroni.yml
# Rust on the host when there is a cargo (and TOOLS is not 1); otherwise everything Rust runs in
# the tools image (scripts/in-tools.sh), so Docker and make are all a host needs.
TOOLS ?= $(if $(shell command -v cargo),0,1)
# patroni-lab itself runs through scripts/patroni-lab.sh, which makes the same choice.
LAB_TOOL := TOOLS=$(TOOLS) scripts/patroni-lab.sh
ifeq ($(TOOLS),1)
CARGO := scripts/in-tools.sh cargo
TOOLS_IMAGE := tools
else
CARGO := cargo
TOOLS_IMAGE :=
endif

# How long `make switchover` waits for the old leader to stream from the new one.
SWITCHOVER_WAIT ?= 30s

-include .env
COMPOSE_PROJECT_NAME ?= patroni-lab
# The topology: the 2-node lab, or with LAB_NODES=3 (here or in .env) the 3-node overlay.
LAB_NODES ?= 2
COMPOSE_FILE := docker-compose.yml$(if $(filter 3,$(LAB_NODES)),:docker-compose.3nodes.yml)
# Where the host reaches the published ports: LAB_BIND_ADDRESS, or loopback when that is 0.0.0.0.
LAB_HOST ?= $(if $(filter 0.0.0.0,$(LAB_BIND_ADDRESS)),127.0.0.1,$(or $(LAB_BIND_ADDRESS),127.0.0.1))
export

.PHONY: help env build tools up wait list switchover down clean psql bench probe logs ps test test-long unit fmt lint scenarios scenario services profiles profile check-profile compose-v2 browser matrix screenshot soak check-safe check-docker check-ports doctor

help: ## This list
	@grep -hE '^[a-z0-9 %-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  make %-19s %s\n", $$1, $$2}'

env: .env
.env:
	@cp .env.example .env && echo "made .env from .env.example"

# On a host without cargo (TOOLS=1) the tools image is one of the images: `make test` then
# starts testing at once.
build: .env check-docker ## Build the images (makes the Debian base image here if none can be pulled)
	@mkdir -p docker/local-ca && rm -f docker/local-ca/*.crt
	@cp /usr/local/share/ca-certificates/*.crt docker/local-ca/ 2>/dev/null || true
	@base=$$(scripts/base-image.sh) && echo "base image: $$base" && \
	  BASE_IMAGE=$$base $(COMPOSE) build
	@if [ "$(TOOLS)" = 1 ]; then $(MAKE) --no-print-directory tools; fi

tools: .env ## Build the tools image (cargo, patroni-lab, Docker CLI + Compose v2) for hosts without Rust
	@mkdir -p docker/local-ca && rm -f docker/local-ca/*.crt
	@cp /usr/local/share/ca-certificates/*.crt docker/local-ca/ 2>/dev/null || true
	@base=$$(scripts/base-image.sh) && \
	  out=$$(docker build -q --target tools --build-arg BASE_IMAGE=$$base -t patroni-lab/tools:latest -f docker/Dockerfile . 2>&1) || \
	  { echo "$$out" >&2; echo "make tools: the build failed (above)" >&2; exit 1; }; \
	  echo "tools image: patroni-lab/tools:latest"

browser: ## Build the browser image (headless Chromium from Debian) the HTML-report test opens pages in
	@base=$$(scripts/base-image.sh) && \
	  out=$$(docker build -q --build-arg BASE_IMAGE=$$base -t patroni-lab/browser:latest -f docker/browser.Dockerfile . 2>&1) || \
	  { echo "$$out" >&2; echo "make browser: the build failed (above)" >&2; exit 1; }; \
	  echo "browser image: patroni-lab/browser:latest"

# Before anything slow: a PROFILE that names no file.
check-profile:
	@if [ -n "$(PROFILE)" ] && [ ! -f "profiles/$(PROFILE).ini" ]; then \
	  echo "unknown profile '$(PROFILE)': make profiles lists them" >&2; exit 2; fi

compose-v2: tools ## Install Docker Compose v2 as a CLI plugin for this user (from Debian's package, via the tools image)
	@scripts/compose-v2.sh

# Before anything slow: ports published beyond this machine with the passwords everyone knows.
BIND_IS_LOOPBACK := $(filter 127.% ::1 localhost,$(LAB_BIND_ADDRESS))
DEFAULT_SECRETS := $(strip $(if $(filter postgres,$(POSTGRES_PASSWORD)),POSTGRES_PASSWORD) \
  $(if $(filter replicator,$(REPLICATION_PASSWORD)),REPLICATION_PASSWORD) \
  $(if $(filter patroni,$(PATRONI_API_PASSWORD)),PATRONI_API_PASSWORD))
check-safe: .env
	@$(if $(and $(LAB_BIND_ADDRESS),$(if $(BIND_IS_LOOPBACK),,beyond),$(DEFAULT_SECRETS)),$(error refusing to publish the lab on LAB_BIND_ADDRESS=$(LAB_BIND_ADDRESS) with the default $(DEFAULT_SECRETS): set new values in .env (or LAB_BIND_ADDRESS=127.0.0.1)))true

# Before anything slow: a Docker daemon that answers (else `make build` would start making a
# base image it cannot load).
check-docker:
	@$(if $(shell docker info >/dev/null 2>&1 && echo ok),,$(error Docker is not reachable (docker info failed): start the Docker daemon, or check DOCKER_HOST and that you may use its socket))true

# Before anything slow: a port the lab publishes that another program holds (named with the
# variable that moves it). $(shell) sees only the original environment, so .env's values are
# passed in.
PORT_CONFLICT = $(shell LAB_BIND_ADDRESS='$(LAB_BIND_ADDRESS)' ETCD_BIND_ADDRESS='$(ETCD_BIND_ADDRESS)' \
  COMPOSE_FILE='$(COMPOSE_FILE)' scripts/check-ports.sh)
check-ports: .env
	@$(if $(PORT_CONFLICT),$(error $(PORT_CONFLICT)))true

# The Compose that made the lab's containers (the major versions of their labels), and this one
# (`compose version --short`). When the lab has containers another major version made (a lab the
# host's Compose v1 made, `make up` run by a test in the tools image's v2), this Compose would
# recreate every one of them: it adopts them as they are instead — no build, no recreation, only
# missing containers made. Asked only when `up` is a goal.
ifneq ($(filter up,$(MAKECMDGOALS)),)
LAB_MADE_BY := $(shell docker ps -a --filter label=com.docker.compose.project=$(COMPOSE_PROJECT_NAME) --format '{{.Label "com.docker.compose.version"}}' 2>/dev/null | sed 's/^v//; s/\..*//' | sort -u)
THIS_COMPOSE := $(shell $(COMPOSE) version --short 2>/dev/null)
ADOPT := $(if $(THIS_COMPOSE),$(filter-out $(firstword $(subst ., ,$(patsubst v%,%,$(THIS_COMPOSE)))),$(LAB_MADE_BY)))
endif

up: check-profile check-safe check-docker check-ports $(if $(ADOPT),,build) ## Start the lab; returns once a write through 127.0.0.1:5432 succeeds (PROFILE=fast applies a profile)
	$(if $(ADOPT),@echo "some of the lab's containers were made by Compose $(ADOPT).x and this is $(THIS_COMPOSE): adopting them as they are (no build and no recreation)")
	$(COMPOSE) up -d$(if $(ADOPT), --no-recreate)
	@scripts/wait-ready.sh $(COMPOSE)
	@if [ -n "$(PROFILE)" ]; then $(MAKE) --no-print-directory profile NAME=$(PROFILE); fi

wait: ## Wait until a write through 127.0.0.1:5432 succeeds
	@scripts/wait-ready.sh $(COMPOSE)

list: ## patronictl list (through whichever node is running)
	@node=$$(docker ps --format '{{.Names}}' | grep -m1 -E '^patroni[0-9]+$$') || { echo "no patroni container is running: make up" >&2; exit 1; }; \
	  docker exec $(EXEC_TTY) $$node $(PATRONICTL) list

# Returns only once the old leader streams from the new one (Patroni #1251: stopping the new
# leader before that leaves two timelines with one ID), saying how long that took; else the
# doctor's findings (PATRONI.md, "After a switchover").
switchover: $(TOOLS_IMAGE) ## Planned switchover to the replica, forced (no prompt); waits until the old leader streams from the new one
	@node=$$(docker ps --format '{{.Names}}' | grep -m1 -E '^patroni[0-9]+$$') || { echo "no patroni container is running: make up" >&2; exit 1; }; \
	  docker exec $(EXEC_TTY) $$node $(PATRONICTL) switchover --force
	@$(LAB_TOOL) doctor --wait-whole $(SWITCHOVER_WAIT)

down: ## Stop and remove the containers (data is kept)
	$(COMPOSE) down --remove-orphans

clean: ## Remove containers and all data volumes (of either topology)
	COMPOSE_FILE=docker-compose.yml:docker-compose.3nodes.yml $(COMPOSE) down --volumes --remove-orphans

services: # The lab's service names, one per line (for scripts)
	@$(COMPOSE) config --services

ps: ## Containers and their health
	$(COMPOSE) ps

logs: ## Follow all services' logs
	$(COMPOSE) logs -f --tail 100

psql: ## psql through HAProxy (127.0.0.1:5432)
	@PGPASSWORD=$(POSTGRES_PASSWORD) scripts/pg-client.sh psql -h $(LAB_HOST) -p 5432 -U $(POSTGRES_USER) postgres

BENCH_ARGS ?= -T 60 -P 10 -C -c 4 --max-tries=10
bench: ## The seed's pgbench through 5432 (BENCH_ARGS="-T 700 -P 10 -C --max-tries=10")
	PGPASSWORD=$(POSTGRES_PASSWORD) scripts/pg-client.sh pgbench -i -q -h $(LAB_HOST) -p 5432 -U $(POSTGRES_USER) postgres
	PGPASSWORD=$(POSTGRES_PASSWORD) scripts/pg-client.sh pgbench $(BENCH_ARGS) -h $(LAB_HOST) -p 5432 -U $(POSTGRES_USER) postgres

probe: ## The probe against HAProxy, from a container on the lab network (ARGS="-T 2m --mode persistent --html r.html")
	@scripts/probe.sh $(ARGS)

scenarios: $(TOOLS_IMAGE) ## List the fault scenarios, what each does and expects
	@$(LAB_TOOL) scenario list

profiles: $(TOOLS_IMAGE) ## List the settings profiles (profiles/*.ini) and what each changes
	@$(LAB_TOOL) profile list

profile: $(TOOLS_IMAGE) ## Apply a profile to the running lab (make profile NAME=fast), or show the active one (no NAME)
	@if [ -n "$(NAME)" ]; then $(LAB_TOOL) profile apply $(NAME); else $(LAB_TOOL) profile show; fi

# RUNS unset: the scenario's own count (1, or --phases N's N from ARGS).
scenario: $(TOOLS_IMAGE) ## A fault scenario, graded (make scenario NAME=switchover RUNS=5 ARGS="--secs 8"); reports in probe-out/
	@[ -n "$(NAME)" ] || { echo "say which scenario: make scenario NAME=<name> (make scenarios lists them)" >&2; exit 2; }
	@mkdir -p probe-out
	$(LAB_TOOL) scenario run $(NAME) $(if $(RUNS),--runs $(RUNS)) --json probe-out/scenario-$(NAME).json --html probe-out/scenario-$(NAME).html $(ARGS)

scenario-%: ## The same as make scenario NAME=%
	@$(MAKE) --no-print-directory scenario NAME=$*

EVENTS ?= 50
soak: $(TOOLS_IMAGE) ## Faults at random through one probe run (EVENTS=50 PROFILE=sync SEED=7); report in probe-out/soak.*
	@mkdir -p probe-out
	$(LAB_TOOL) soak --events $(EVENTS) $(if $(PROFILE),--profile $(PROFILE)) $(if $(SEED),--seed $(SEED)) \
	  --json probe-out/soak.json --html probe-out/soak.html $(ARGS)

MATRIX_PROFILES ?= seed,default,fast,sync,failsafe
# MATRIX_SCENARIOS unset: the faults that declare themselves matrix rows (patroni-lab matrix --help).
MATRIX_SCENARIOS ?=
MATRIX_RUNS ?= 3
doctor: $(TOOLS_IMAGE) ## Name every known bad state of the live cluster, with evidence and repair (ARGS=--repair)
	$(LAB_TOOL) doctor $(ARGS)

matrix: $(TOOLS_IMAGE) ## Scenarios x profiles (MATRIX_PROFILES=a,b MATRIX_SCENARIOS=x,y MATRIX_RUNS=3); table in probe-out/matrix/
	$(LAB_TOOL) matrix --profiles $(MATRIX_PROFILES) $(if $(MATRIX_SCENARIOS),--scenarios $(MATRIX_SCENARIOS)) --runs $(MATRIX_RUNS) $(ARGS)

screenshot: browser ## Draw probe-out/matrix/matrix.html to docs/img/matrix.png (headless Chromium)
	@[ -f probe-out/matrix/matrix.html ] || { echo "no probe-out/matrix/matrix.html: run make matrix first" >&2; exit 2; }
	@docker run --rm --network none --user $$(id -u):$$(id -g) -v "$$PWD:/work" patroni-lab/browser:latest \
	  --window-size=1400,1100 --screenshot=/work/docs/img/matrix.png file:///work/probe-out/matrix/matrix.html 2>/dev/null
	@echo "docs/img/matrix.png"

# The lab suites (crates/patroni-lab/tests/, one file per area; faults/ a module per fault),
# run one after another on the one running lab; each suite's wall time is printed. The long fault runs are marked
# `#[ignore = "long: ..."]`: `make test-long` runs them (CI runs both).
SUITES := $(basename $(notdir $(wildcard crates/patroni-lab/tests/*.rs))) \
  $(patsubst crates/patroni-lab/tests/%/main.rs,%,$(wildcard crates/patroni-lab/tests/*/main.rs))
define run_suites
	@set -e; all=$$(date +%s); \
	for suite in unit $(SUITES); do \
	  start=$$(date +%s); \
	  if [ $$suite = unit ]; then which="--lib --bins"; else which="--test $$suite"; fi; \
	  $(CARGO) test --workspace $$which -- --test-threads=1 $(1); \
	  echo "== suite $$suite: $$(( $$(date +%s) - start )) s"; \
	done; \
	echo "== make $@: $$(( $$(date +%s) - all )) s"
endef

test: $(TOOLS_IMAGE) browser ## Every test a change needs: unit tests and the lab suites (needs `make up`); wall time per suite
	$(call run_suites,)

test-long: $(TOOLS_IMAGE) browser ## The long fault runs (`#[ignore = "long: ..."]`) that `make test` leaves out; CI runs them
	$(call run_suites,--ignored)

unit: $(TOOLS_IMAGE) ## Every test that needs no lab (unit tests and the CLI's)
	$(CARGO) test --workspace --lib --bins --test cli

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
