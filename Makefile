# Comptoir: `make dev` runs everything locally on the embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: setup lock dev voice-demo offline test lint typecheck unit bench clean layer deploy deploy-gcp widget remove logs \
	package lint-template
WIDGET := web/dist/manifest.json

setup: $(PY_STAMP) $(NODE_STAMP)

# The venv installs the lock, every transitive dependency pinned and checked against its hashes.
$(PY_STAMP): requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required" if sys.version_info < (3, 11) else 0)'
	@echo "Creating the Python environment in $(VENV)/ (first run only)"
	$(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages (a few minutes the first time)..."
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	@touch $@

# After editing requirements*.txt: re-resolve the locks (kept pins stay; LOCK_ARGS=--upgrade
# moves every unpinned dependency to its newest release). requirements-dev.lock holds hashes
# for every platform and Python 3.11+; infra/aws/requirements-aws.lock is resolved for the
# Lambda layer's platform within the dev lock's versions, so the layer runs what was tested.
UV_VERSION := 0.13.9
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --custom-compile-command "make lock" $(LOCK_ARGS)
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(LOCK) --universal --python-version 3.11 -o requirements-dev.lock requirements-dev.txt
	$(LOCK) --python-platform aarch64-manylinux_2_17 --python-version 3.12 \
		-c requirements-dev.lock -o infra/aws/requirements-aws.lock infra/aws/requirements-aws.txt

# npm tools: esbuild (the widget bundle), osls and serverless-offline (deploy and its checks).
$(NODE_STAMP): package.json package-lock.json
	@echo "Installing npm packages: esbuild for the widget, the deploy tools (a minute or two)..."
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The shop widget: web/src -> web/dist (esbuild, minified), rebuilt when a source changes.
widget: $(WIDGET)
$(WIDGET): $(NODE_STAMP) web/build.mjs $(wildcard web/src/*) $(wildcard web/admin/*)
	@echo "Building the widget (web/src -> web/dist)..."
	node web/build.mjs

dev: setup widget
	@echo "Loading the demo shop (Maison Teranga)..."
	$(BIN)/python -m shared seed-demo
	$(BIN)/python -m shared serve

# A WhatsApp voice note answered in text and in voice, on loopback WhatsApp and speech servers
# (tests/voice_demo.py); TTS_PROVIDER=offline speaks the reply with espeak-ng if installed.
voice-demo: setup
	$(BIN)/python -m tests.voice_demo

# The same as dev, said for what it is: everything on the embedded defaults (SQLite, the
# in-process queue, the offline model), no cloud account, no key, no network.
offline: dev

test: setup widget lint typecheck unit

lint:
	$(BIN)/ruff check .

# The deploy scripts are checked apart: they are scripts, not packages, and one of them is
# named after a standard module (infra/aws/secrets.py), which would shadow it in one run.
typecheck:
	$(BIN)/mypy
	$(BIN)/mypy --strict infra/aws/*.py infra/gcp/*.py

unit:
	$(BIN)/python -m pytest

bench: setup widget
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/prompt_tokens.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/turn_overhead.py
	$(BIN)/python bench/widget.py
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/payments.py
	$(BIN)/python bench/conversations.py --mode both
	$(BIN)/python bench/campaigns.py
	$(BIN)/python bench/consolidate.py

# --- Deploy: STAGE (dev, prod...), REGION; OSLS_ARGS passes options to osls (--param=...).
# Google Cloud: GCP_PROJECT (required), GCP_REGION; GCP_ARGS=--dry-run prints every command.
STAGE ?= dev
REGION ?= eu-west-1
GCP_REGION ?= europe-west1

layer: setup
	$(BIN)/python infra/aws/build_layer.py

# What `make deploy` would upload, without an AWS account: the CloudFormation template and the
# function zips in .serverless/. osls asks CloudFormation whether the stack exists (to reuse an
# uploaded layer), so it wants AWS credentials; tests/deploy packages with a loopback stand-in.
package: layer
	npx osls package --stage $(STAGE) --region $(REGION) $(OSLS_ARGS)

# cfn-lint (requirements-dev.txt) on the packaged template; W3005 is osls's own redundant
# DependsOn (tests/deploy/test_aws_package.py).
lint-template: package
	$(BIN)/cfn-lint --ignore-checks W3005 -- .serverless/cloudformation-template-update-stack.json

deploy: layer
	$(MAKE) widget
	$(BIN)/python infra/aws/secrets.py --stage $(STAGE) --region $(REGION) --check
	npx osls deploy --stage $(STAGE) --region $(REGION) $(OSLS_ARGS)
	$(BIN)/python infra/aws/after_deploy.py --stage $(STAGE) --region $(REGION) --publish-web

# Deletes the stage's stack. CloudFormation deletes only an empty bucket, and the stage's hold
# objects (the widget and console, versioned; the catalogue snapshots): remove.py first deletes
# every version in each (not in a bucket the stage retains, as prod does), then osls removes
# the stack.
remove: setup
	$(BIN)/python infra/aws/remove.py --stage $(STAGE) --region $(REGION)
	npx osls remove --stage $(STAGE) --region $(REGION) $(OSLS_ARGS)

# Follows a function's logs (FUNCTION: chat, worker, webhook_whatsapp...; see serverless.yml).
FUNCTION ?= chat
logs:
	npx osls logs -f $(FUNCTION) --stage $(STAGE) --region $(REGION) --tail

deploy-gcp: setup
	@test -n "$(GCP_PROJECT)" || { echo "set GCP_PROJECT=your-project-id" >&2; exit 2; }
	$(MAKE) widget
	$(BIN)/python infra/gcp/deploy.py --project $(GCP_PROJECT) --region $(GCP_REGION) --stage $(STAGE) $(GCP_ARGS)

clean:
	rm -rf $(VENV) node_modules .data .pytest_cache .mypy_cache .ruff_cache \
		infra/aws/.build infra/gcp/.build .serverless web/dist web/widget.js test-artifacts
