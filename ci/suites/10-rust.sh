#!/usr/bin/env bash
# Layer 1: formatting, lints, and the self-contained cargo tests (unit + black-box HTTP).
# ci-lane: cpu
set -euo pipefail
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
