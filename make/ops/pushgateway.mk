# Day-to-day operation of a pushgateway release installed from charts/pushgateway.
#
#   make -f make/ops/pushgateway.mk help
#   make -f make/ops/pushgateway.mk pushgateway-health PUSHGATEWAY_NAMESPACE=monitoring
#   make -f make/ops/pushgateway.mk pushgateway-delete-group JOB=backup LABELS=instance/db1
#
# The HTTP targets (metrics, delete-group, health) reach the gateway at PUSHGATEWAY_URL when it
# is set, and otherwise through a short-lived `kubectl port-forward` to the release's Service.

## Namespace of the release.
PUSHGATEWAY_NAMESPACE ?= monitoring
## Helm release name.
PUSHGATEWAY_RELEASE ?= pushgateway
## Chart name label (the chart's nameOverride, if you set one).
PUSHGATEWAY_NAME ?= pushgateway
## Direct URL of the gateway (e.g. http://127.0.0.1:9091); skips the port-forward.
PUSHGATEWAY_URL ?=
## Local port of the port-forward.
PUSHGATEWAY_LOCAL_PORT ?= 9091
## Scheme through the port-forward: http, or https when the gateway serves TLS.
PUSHGATEWAY_SCHEME ?= http
## Extra curl options, e.g. "-u user:password" or "-k".
PUSHGATEWAY_CURL_OPTS ?=
## Job of the group to delete (pushgateway-delete-group).
JOB ?=
## Grouping labels of the group to delete, as name/value/name/value.
LABELS ?=
## Lines of log per pod (pushgateway-logs).
TAIL ?= 200
## Set to 1 to follow the logs.
FOLLOW ?=
## How long pushgateway-restart waits for the rollout.
TIMEOUT ?= 5m
## kubectl binary.
KUBECTL ?= kubectl
## curl binary.
CURL ?= curl

SHELL := /bin/sh
comma := ,
.DEFAULT_GOAL := help

_selector = app.kubernetes.io/name=$(PUSHGATEWAY_NAME),app.kubernetes.io/instance=$(PUSHGATEWAY_RELEASE)
_kubectl = $(KUBECTL) --namespace $(PUSHGATEWAY_NAMESPACE)
_curl = $(CURL) -fsS $(PUSHGATEWAY_CURL_OPTS)

# Fails unless kubectl can be run.
_need_kubectl = command -v $(KUBECTL) >/dev/null 2>&1 || { \
  echo "error: '$(KUBECTL)' not found on PATH: install kubectl, set KUBECTL=/path/to/kubectl," >&2; \
  echo "       or set PUSHGATEWAY_URL to reach the gateway without the cluster" >&2; exit 1; }

# Sets $$obj to the first object of kind $(1) of the release, or fails saying the release is missing.
_find = out=$$($(_kubectl) get $(1) -l '$(_selector)' -o name 2>&1) || { \
    echo "error: kubectl could not list $(1) in namespace '$(PUSHGATEWAY_NAMESPACE)': $$out" >&2; exit 1; }; \
  obj=$$(printf '%s\n' "$$out" | sed -n '1p'); \
  [ -n "$$obj" ] || { \
    echo "error: release '$(PUSHGATEWAY_RELEASE)' not found in namespace '$(PUSHGATEWAY_NAMESPACE)'" >&2; \
    echo "       (no $(1) labelled $(_selector)); set PUSHGATEWAY_RELEASE / PUSHGATEWAY_NAMESPACE," >&2; \
    echo "       or check kubectl's current context" >&2; exit 1; }

# Runs the shell command $(1) with $$url set: PUSHGATEWAY_URL, or a port-forward kept open meanwhile.
define _with_url
if [ -n "$(PUSHGATEWAY_URL)" ]; then \
  url="$(patsubst %/,%,$(PUSHGATEWAY_URL))"; $(1); \
else \
  $(_need_kubectl); $(call _find,service); \
  $(_kubectl) port-forward "$$obj" "$(PUSHGATEWAY_LOCAL_PORT):http" >/dev/null 2>&1 & pf=$$!; \
  trap 'kill $$pf 2>/dev/null' EXIT; \
  url="$(PUSHGATEWAY_SCHEME)://127.0.0.1:$(PUSHGATEWAY_LOCAL_PORT)"; i=0; \
  until $(CURL) -s -o /dev/null -k $(PUSHGATEWAY_CURL_OPTS) "$$url/"; [ $$? -ne 7 ]; do \
    i=$$((i+1)); \
    if [ $$i -ge 50 ] || ! kill -0 $$pf 2>/dev/null; then \
      echo "error: port-forward to $$obj on local port $(PUSHGATEWAY_LOCAL_PORT) did not come up" >&2; exit 1; fi; \
    sleep 0.2; \
  done; \
  $(1); \
fi
endef

.PHONY: help pushgateway-port-forward pushgateway-metrics pushgateway-delete-group \
  pushgateway-health pushgateway-logs pushgateway-restart

help: ## Lists the targets and the variables that tune them.
	@echo "usage: make -f $(firstword $(MAKEFILE_LIST)) <target> [VARIABLE=value ...]"
	@echo
	@echo "targets:"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-zA-Z0-9_-]*:.*## / { printf "  %-28s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "variables (default):"
	@awk '/^## / { doc = substr($$0, 4); next } /^[A-Z_]+ \?=/ { def = $$0; sub(/^[A-Z_]+ \?= ?/, "", def); printf "  %-24s %s%s\n", $$1, doc, (def == "" ? "" : " [" def "]") } { doc = "" }' $(MAKEFILE_LIST)

pushgateway-port-forward: ## Forwards PUSHGATEWAY_LOCAL_PORT to the release's Service until Ctrl-C.
	@$(_need_kubectl); $(call _find,service); \
	echo "forwarding $(PUSHGATEWAY_SCHEME)://127.0.0.1:$(PUSHGATEWAY_LOCAL_PORT) to $$obj in $(PUSHGATEWAY_NAMESPACE) (Ctrl-C stops)"; \
	exec $(_kubectl) port-forward "$$obj" "$(PUSHGATEWAY_LOCAL_PORT):http"

pushgateway-metrics: ## Prints everything the gateway exposes to Prometheus (GET /metrics).
	@$(call _with_url,$(_curl) "$$url/metrics")

pushgateway-delete-group: ## Deletes one group: JOB=<job> [LABELS=name/value/...].
	@[ -n "$(JOB)" ] || { echo "error: JOB is required: make -f $(firstword $(MAKEFILE_LIST)) $@ JOB=<job> [LABELS=name/value/...]" >&2; exit 1; }; \
	seg() { \
	  case "$$2" in \
	    '') printf '/%s@base64/=' "$$1" ;; \
	    *[!A-Za-z0-9_.~:-]*) printf '/%s@base64/%s' "$$1" "$$(printf '%s' "$$2" | base64 | tr -d '\n=' | tr '+/' '-_')" ;; \
	    *) printf '/%s/%s' "$$1" "$$2" ;; \
	  esac; }; \
	path=$$(seg job '$(subst ','\'',$(JOB))'); \
	labels='$(subst ','\'',$(LABELS))'; set -f; old_ifs=$$IFS; IFS=/; set -- $$labels; IFS=$$old_ifs; set +f; \
	if [ $$(( $$# % 2 )) -ne 0 ]; then \
	  echo "error: LABELS must be name/value pairs, got '$(LABELS)'" >&2; exit 1; fi; \
	while [ $$# -gt 0 ]; do path="$$path$$(seg "$$1" "$$2")"; shift 2; done; \
	$(call _with_url,$(_curl) -X DELETE "$$url/metrics$$path" && echo "deleted group $$path")

pushgateway-health: ## Checks GET /-/healthy and GET /-/ready; fails unless both answer 200.
	@$(call _with_url,rc=0; \
	  if $(_curl) -o /dev/null "$$url/-/healthy"; then echo "healthy: ok ($$url/-/healthy)"; else echo "healthy: FAILED ($$url/-/healthy)"; rc=1; fi; \
	  if $(_curl) -o /dev/null "$$url/-/ready"; then echo "ready:   ok ($$url/-/ready)"; else echo "ready:   FAILED ($$url/-/ready)"; rc=1; fi; \
	  exit $$rc)

pushgateway-logs: ## Prints the gateway pods' logs (TAIL lines each; FOLLOW=1 follows).
	@$(_need_kubectl); $(call _find,pod); \
	exec $(_kubectl) logs -l '$(_selector)' --container pushgateway --prefix --tail=$(TAIL) \
	  --max-log-requests=20 $(if $(FOLLOW),--follow)

pushgateway-restart: ## Restarts the gateway pods (kubectl rollout restart) and waits for the rollout.
	@$(_need_kubectl); $(call _find,deployment$(comma)statefulset); \
	$(_kubectl) rollout restart "$$obj" && \
	$(_kubectl) rollout status "$$obj" --timeout=$(TIMEOUT)
