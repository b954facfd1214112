# Day-to-day operation of a pushgateway release installed from charts/pushgateway.
#
#   make -f make/ops/pushgateway.mk help
#   make -f make/ops/pushgateway.mk pushgateway-health PUSHGATEWAY_NAMESPACE=monitoring
#   make -f make/ops/pushgateway.mk pushgateway-delete-group JOB=backup LABELS=instance/db1
#   make -f make/ops/pushgateway.mk pushgateway-delete-groups MATCH='{job="batch",instance=~"w.*"}'
#
# The HTTP targets reach the gateway at PUSHGATEWAY_URL when it is set, and otherwise through
# short-lived `kubectl port-forward`s on local ports kubectl picks: health, metrics and status to
# every pod (or POD), delete-group(s) and wipe to the release's Service, after checking that the
# answer comes from a pushgateway. With TLS, basic auth or a route prefix, set PUSHGATEWAY_SCHEME,
# PUSHGATEWAY_CURL_OPTS and PUSHGATEWAY_ROUTE_PREFIX as the chart's NOTES.txt prints them.

## Namespace of the release.
PUSHGATEWAY_NAMESPACE ?= monitoring
## Helm release name.
PUSHGATEWAY_RELEASE ?= pushgateway
## Chart name label (the chart's nameOverride, if you set one).
PUSHGATEWAY_NAME ?= pushgateway
## Direct URL of the gateway (e.g. http://127.0.0.1:9091); skips kubectl.
PUSHGATEWAY_URL ?=
## Route prefix of the gateway (gateway.routePrefix, or the path of gateway.externalUrl), e.g. /pushgateway.
PUSHGATEWAY_ROUTE_PREFIX ?=
## Local port of the port-forwards; empty lets kubectl pick a free one.
PUSHGATEWAY_LOCAL_PORT ?=
## Scheme through the port-forward: http, or https when the gateway serves TLS.
PUSHGATEWAY_SCHEME ?= http
## Extra curl options, e.g. "-k --netrc-file ~/.pushgateway-netrc" (NOTES.txt prints yours).
PUSHGATEWAY_CURL_OPTS ?=
## One pod for health, metrics and status (default: every pod of the release).
POD ?=
## Set to the release name to let pushgateway-wipe (every group) or pushgateway-delete-groups (MATCH) delete.
CONFIRM ?=
## Job of the group to delete (pushgateway-delete-group).
JOB ?=
## Grouping labels of the group to delete, as name/value/name/value.
LABELS ?=
## PromQL selector of the groups to delete (pushgateway-delete-groups), e.g. {job="batch"}.
MATCH ?=
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

_prefix = $(patsubst %/,%,$(PUSHGATEWAY_ROUTE_PREFIX))

# Starts a port-forward to $$target (service/x or pod/x) and sets $$url once kubectl says where it
# listens; fails if kubectl gives up. The forward is stopped on exit (and by _unforward).
define _forward
pf_out=$$(mktemp); trap 'kill $$pf 2>/dev/null; rm -f "$$pf_out"' EXIT; \
$(_kubectl) port-forward "$$target" "$(PUSHGATEWAY_LOCAL_PORT):http" >"$$pf_out" 2>&1 & pf=$$!; \
port=; i=0; \
while [ -z "$$port" ]; do \
  port=$$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$$pf_out" | head -n 1); \
  [ -n "$$port" ] && break; i=$$((i+1)); \
  if [ $$i -ge 100 ] || ! kill -0 $$pf 2>/dev/null; then \
    echo "error: kubectl port-forward to $$target did not come up: $$(cat "$$pf_out")" >&2; exit 1; fi; \
  sleep 0.1; \
done; \
url="$(PUSHGATEWAY_SCHEME)://127.0.0.1:$$port"
endef
_unforward = kill $$pf 2>/dev/null; wait $$pf 2>/dev/null

# Fails unless $$url answers /api/v1/status as a pushgateway does (not some other listener).
_check_gateway = $(_curl) "$$url$(_prefix)/api/v1/status" 2>/dev/null | grep -q '"build_information"' || { \
  echo "error: $$url$(_prefix)/api/v1/status did not answer as a pushgateway: wrong address, or" >&2; \
  echo "       PUSHGATEWAY_ROUTE_PREFIX / PUSHGATEWAY_SCHEME / PUSHGATEWAY_CURL_OPTS do not match the release" >&2; exit 1; }

# Runs the shell command $(1) once with $$url set: PUSHGATEWAY_URL, or a port-forward to the
# release's Service kept open meanwhile. The answer must come from a pushgateway.
define _with_url
if [ -n "$(PUSHGATEWAY_URL)" ]; then \
  url="$(patsubst %/,%,$(PUSHGATEWAY_URL))"; \
else \
  $(_need_kubectl); $(call _find,service); target=$$obj; $(_forward); \
fi; \
$(_check_gateway); $(1)
endef

# Runs the shell command $(1) for each pod of the release (or POD) with $$url and $$where set,
# or once for PUSHGATEWAY_URL; $$rc collects failures.
define _each_pod
rc=0; \
if [ -n "$(PUSHGATEWAY_URL)" ]; then \
  url="$(patsubst %/,%,$(PUSHGATEWAY_URL))"; where=$$url; $(1); \
else \
  $(_need_kubectl); \
  if [ -n "$(POD)" ]; then pods="pod/$(patsubst pod/%,%,$(POD))"; else $(call _find,pod); pods=$$out; fi; \
  for target in $$pods; do \
    where=$$target; $(_forward); $(1); $(_unforward); \
  done; \
fi; \
exit $$rc
endef

.PHONY: help pushgateway-port-forward pushgateway-metrics pushgateway-delete-group \
  pushgateway-delete-groups pushgateway-health pushgateway-status pushgateway-reload pushgateway-wipe pushgateway-logs \
  pushgateway-restart

help: ## Lists the targets and the variables that tune them.
	@echo "usage: make -f $(firstword $(MAKEFILE_LIST)) <target> [VARIABLE=value ...]"
	@echo
	@echo "targets:"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-zA-Z0-9_-]*:.*## / { printf "  %-28s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "variables (default):"
	@awk '/^## / { doc = substr($$0, 4); next } /^[A-Z_]+ \?=/ { def = $$0; sub(/^[A-Z_]+ \?= ?/, "", def); printf "  %-24s %s%s\n", $$1, doc, (def == "" ? "" : " [" def "]") } { doc = "" }' $(MAKEFILE_LIST)

pushgateway-port-forward: ## Forwards PUSHGATEWAY_LOCAL_PORT (default 9091) to the release's Service until Ctrl-C.
	@$(_need_kubectl); $(call _find,service); \
	echo "forwarding $(PUSHGATEWAY_SCHEME)://127.0.0.1:$(or $(PUSHGATEWAY_LOCAL_PORT),9091)$(_prefix)/ to $$obj in $(PUSHGATEWAY_NAMESPACE) (Ctrl-C stops)"; \
	exec $(_kubectl) port-forward "$$obj" "$(or $(PUSHGATEWAY_LOCAL_PORT),9091):http"

pushgateway-metrics: ## Prints what Prometheus scrapes, from the pod that serves the pushed series (POD=<pod> picks one).
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	( n=0; $(call _each_pod,n=$$((n+1)); \
	  if $(_curl) "$$url$(_prefix)/metrics" >"$$tmp/$$n"; then echo "$$where" >"$$tmp/$$n.where"; \
	  else echo "error: GET $(_prefix)/metrics of $$where failed" >&2; rc=1; fi) ) || exit 1; \
	n=$$(ls "$$tmp" | grep -c '\.where$$'); \
	pick=; for f in "$$tmp"/*.where; do m=$${f%.where}; grep -q '^push_time_seconds{' "$$m" && { pick=$$m; break; }; done; \
	[ -n "$$pick" ] || for f in "$$tmp"/*.where; do m=$${f%.where}; grep -q '^pushgateway_replication_leader 1' "$$m" && { pick=$$m; break; }; done; \
	[ -n "$$pick" ] || pick="$$tmp/1"; \
	[ "$$n" -le 1 ] || echo "metrics of $$(cat "$$pick.where") (of $$n pods: the one serving the pushed series)" >&2; \
	cat "$$pick"

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
	$(call _with_url,$(_curl) -X DELETE "$$url$(_prefix)/metrics$$path" && echo "deleted group $$path")

pushgateway-delete-groups: ## Lists the groups MATCH='{job="x"}' selects (dry run); CONFIRM=<release name> deletes them (admin API).
	@[ -n '$(subst ','\'',$(MATCH))' ] || { echo "error: MATCH is required: make -f $(firstword $(MAKEFILE_LIST)) $@ MATCH='{job=\"x\"}' [CONFIRM=$(PUSHGATEWAY_RELEASE)]" >&2; exit 1; }; \
	if [ "$(CONFIRM)" = "$(PUSHGATEWAY_RELEASE)" ]; then dry=false; else dry=true; fi; \
	body=$$(mktemp); trap 'rm -f "$$body"' EXIT; \
	$(call _with_url,code=$$($(CURL) -sS $(PUSHGATEWAY_CURL_OPTS) -o "$$body" -w '%{http_code}' -G -X DELETE \
	    --data-urlencode 'match[]=$(subst ','\'',$(MATCH))' --data-urlencode "dry_run=$$dry" "$$url$(_prefix)/api/v1/groups"); \
	  if [ "$$code" = 403 ] || [ "$$code" = 404 ]; then echo "error: the admin API is off (HTTP $$code): set gateway.enableAdminApi=true" >&2; exit 1; \
	  elif [ "$$code" != 200 ]; then echo "error: DELETE $(_prefix)/api/v1/groups answered HTTP $$code: $$(head -c 500 "$$body")" >&2; exit 1; fi; \
	  n=$$(sed -n 's/.*"matched":\([0-9][0-9]*\).*/\1/p' "$$body"); \
	  grep -o '"labels":{[^}]*}' "$$body" | sed 's/^"labels"://'; \
	  if [ "$$dry" = true ]; then echo "dry run: $$n group(s) match $(subst ','\'',$(MATCH)); nothing deleted. Delete them with CONFIRM=$(PUSHGATEWAY_RELEASE)" >&2; \
	  else echo "deleted $$n group(s) matching $(subst ','\'',$(MATCH))"; fi)

pushgateway-health: ## Checks GET /-/healthy and GET /-/ready of every pod; fails unless all answer 200.
	@$(call _each_pod, \
	  for check in healthy ready; do \
	    body=$$($(CURL) -sS $(PUSHGATEWAY_CURL_OPTS) -o - -w '\n%{http_code}' "$$url$(_prefix)/-/$$check" 2>&1); \
	    code=$$(printf '%s' "$$body" | tail -n 1); \
	    label=$$(printf '%-8s' "$$check:"); \
	    if [ "$$code" = 200 ]; then echo "$$label ok ($$where $(_prefix)/-/$$check)"; \
	    else echo "$$label FAILED ($$where $(_prefix)/-/$$check): $$(printf '%s' "$$body" | sed '$$d' | head -c 300)"; rc=1; fi; \
	  done)

pushgateway-status: ## Prints what /api/v1/status says (version, flags, start time) for every pod.
	@$(call _each_pod, \
	  echo "# $$where"; \
	  if ! $(_curl) "$$url$(_prefix)/api/v1/status"; then echo "error: GET $(_prefix)/api/v1/status of $$where failed" >&2; rc=1; fi; echo)

pushgateway-reload: ## Re-reads the configuration file on every pod (POST /-/reload; needs gateway.enableLifecycle).
	@$(call _each_pod, \
	  body=$$($(CURL) -sS $(PUSHGATEWAY_CURL_OPTS) -o - -w '\n%{http_code}' -X POST "$$url$(_prefix)/-/reload" 2>&1); \
	  code=$$(printf '%s' "$$body" | tail -n 1); \
	  if [ "$$code" = 200 ]; then echo "reloaded ($$where)"; \
	  elif [ "$$code" = 403 ] && printf '%s' "$$body" | grep -qi lifecycle; then \
	    echo "FAILED ($$where): the lifecycle API is off: set gateway.enableLifecycle=true" >&2; rc=1; \
	  else echo "FAILED ($$where): HTTP $$code: $$(printf '%s' "$$body" | sed '$$d' | head -c 300)" >&2; rc=1; fi)

pushgateway-wipe: ## Deletes EVERY group (admin API; needs gateway.enableAdminApi): CONFIRM=<release name>.
	@[ "$(CONFIRM)" = "$(PUSHGATEWAY_RELEASE)" ] || { \
	  echo "error: this deletes every group of release '$(PUSHGATEWAY_RELEASE)'; confirm with CONFIRM=$(PUSHGATEWAY_RELEASE)" >&2; exit 1; }; \
	$(call _with_url,code=$$($(CURL) -sS $(PUSHGATEWAY_CURL_OPTS) -o /dev/null -w '%{http_code}' -X PUT "$$url$(_prefix)/api/v1/admin/wipe"); \
	  if [ "$$code" -ge 200 ] 2>/dev/null && [ "$$code" -lt 300 ]; then echo "wiped every group of release '$(PUSHGATEWAY_RELEASE)'"; \
	  elif [ "$$code" = 404 ] || [ "$$code" = 403 ]; then echo "error: the admin API is off (HTTP $$code): set gateway.enableAdminApi=true" >&2; exit 1; \
	  else echo "error: PUT $(_prefix)/api/v1/admin/wipe answered HTTP $$code" >&2; exit 1; fi)

pushgateway-logs: ## Prints the gateway pods' logs (TAIL lines each; FOLLOW=1 follows).
	@$(_need_kubectl); $(call _find,pod); \
	exec $(_kubectl) logs -l '$(_selector)' --container pushgateway --prefix --tail=$(TAIL) \
	  --max-log-requests=20 $(if $(FOLLOW),--follow)

pushgateway-restart: ## Restarts the gateway pods (kubectl rollout restart) and waits for the rollout.
	@$(_need_kubectl); $(call _find,deployment$(comma)statefulset); \
	$(_kubectl) rollout restart "$$obj" && \
	$(_kubectl) rollout status "$$obj" --timeout=$(TIMEOUT)
