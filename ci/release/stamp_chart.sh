#!/usr/bin/env bash
# Stamps a copy of the chart for a release: version and appVersion from the tag, and the image
# pointing at the published image by repository and digest (the digest wins over the tag, so a
# moved tag cannot change what the chart runs). Used by .github/workflows/release.yml; the image
# layer (ci/suites/65-image.sh) runs it on a copy and renders the result.
#   ci/release/stamp_chart.sh CHART_DIR VERSION IMAGE_REPOSITORY sha256:DIGEST
set -euo pipefail
chart="$1" version="$2" repository="$3" digest="$4"

[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || { echo "stamp_chart: not a semantic version: $version" >&2; exit 1; }
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "stamp_chart: not a sha256 digest: $digest" >&2; exit 1; }
[[ "$repository" =~ ^[a-z0-9./_-]+$ ]] || { echo "stamp_chart: not an image repository: $repository" >&2; exit 1; }

# Replaces the one line matching $2 in file $1 with $3, and fails unless exactly one matched.
replace_line() {
  local file="$1" pattern="$2" line="$3" count
  count=$(grep -cE "$pattern" "$file" || true)
  [ "$count" = 1 ] || { echo "stamp_chart: $count lines of $file match $pattern, expected 1" >&2; exit 1; }
  sed -i -E "s|$pattern|$line|" "$file"
}

replace_line "$chart/Chart.yaml" '^version: .*$' "version: $version"
replace_line "$chart/Chart.yaml" '^appVersion: .*$' "appVersion: \"$version\""
# The gateway's own image block is the only one indented by two spaces (Redis' is nested deeper).
replace_line "$chart/values.yaml" '^  repository: pushgateway$' "  repository: $repository"
# The tag names the version (the version label shows it); the digest is what runs.
replace_line "$chart/values.yaml" '^  tag: ""$' "  tag: \"$version\""
replace_line "$chart/values.yaml" '^  digest: ""$' "  digest: $digest"
