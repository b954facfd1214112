# Developer entry points: build the image, load it into a local cluster, run the tests.
#   make help
#   make image                    # docker, or podman when docker is missing
#   make kind-load KIND_CLUSTER=pushgateway
#   make minikube-load
# Day-2 operation of an installed release: make -f make/ops/pushgateway.mk help

## docker or podman (default: whichever is installed, docker first).
CONTAINER_TOOL ?= $(shell command -v docker >/dev/null 2>&1 && echo docker || echo podman)
## The gateway release the chart deploys by default (Chart.yaml appVersion).
APP_VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/pushgateway/Chart.yaml)
## Image reference built and loaded; the chart's default is pushgateway:<appVersion>.
IMAGE ?= pushgateway:$(APP_VERSION)
## kind cluster to load the image into.
KIND_CLUSTER ?= kind
## minikube profile to load the image into.
MINIKUBE_PROFILE ?= minikube
## Extra options of the image build, e.g. --platform=linux/arm64.
BUILD_OPTS ?=

REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE := $(shell git remote get-url origin 2>/dev/null | sed -e 's|^git@\([^:]*\):|https://\1/|' -e 's|\.git$$||' || true)
# A cluster's containerd reads a name without registry as docker.io/library/…, while podman
# stores it under localhost/: the archive handed to the cluster carries the qualified name.
QUALIFIED_IMAGE := $(shell echo '$(IMAGE)' | awk -F/ '{ if (NF == 1) print "docker.io/library/" $$0; else if ($$1 !~ /[.:]/ && $$1 != "localhost") print "docker.io/" $$0; else print $$0 }')
ARCHIVE := .cache/image/pushgateway-image.tar

.PHONY: help image kind-load minikube-load test

help: ## List the targets and their settings.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort
	@echo; echo "Settings (make VAR=value):"
	@awk '/^## / { doc = substr($$0, 4); next } /^[A-Z_]+ \?=/ && doc { printf "  %-18s %s\n", $$1, doc } { doc = "" }' $(MAKEFILE_LIST)

# The labels are passed twice: as build args for the Dockerfile's LABEL, and as --label because
# podman 4's layer cache ignores build-arg values and would keep the previous build's labels.
image: ## Build the image from the Dockerfile as IMAGE.
	$(CONTAINER_TOOL) build $(BUILD_OPTS) \
	  --build-arg VERSION=$(APP_VERSION) --build-arg REVISION=$(REVISION) --build-arg SOURCE=$(or $(SOURCE),unknown) \
	  --label org.opencontainers.image.version=$(APP_VERSION) --label org.opencontainers.image.revision=$(REVISION) \
	  --label org.opencontainers.image.source=$(or $(SOURCE),unknown) \
	  -t $(IMAGE) -t $(QUALIFIED_IMAGE) .

$(ARCHIVE): FORCE
	@mkdir -p $(dir $@)
	@rm -f $@
	$(CONTAINER_TOOL) save -o $@ $(QUALIFIED_IMAGE)

kind-load: $(ARCHIVE) ## Load the built image into the kind cluster KIND_CLUSTER.
	kind load image-archive $(ARCHIVE) --name $(KIND_CLUSTER)

minikube-load: $(ARCHIVE) ## Load the built image into the minikube profile MINIKUBE_PROFILE.
	minikube image load $(ARCHIVE) --profile $(MINIKUBE_PROFILE)

test: ## Run every test layer (what CI runs).
	ci/test

.PHONY: FORCE
FORCE:
