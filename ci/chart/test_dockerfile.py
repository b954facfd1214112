"""The Dockerfile: hadolint, and the properties the image promises, checked statically."""

import os
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
TEXT = DOCKERFILE.read_text()
# Instructions with their continuation lines joined, comments dropped.
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", "\n".join(l for l in TEXT.splitlines() if not l.lstrip().startswith("#"))).splitlines()
    if line.strip()
]
FROMS = [i for i in INSTRUCTIONS if i.upper().startswith("FROM ")]
FINAL = INSTRUCTIONS[INSTRUCTIONS.index(FROMS[-1]):]


def test_hadolint_finds_nothing():
    hadolint = os.environ.get("HADOLINT") or shutil.which("hadolint")
    assert hadolint, "hadolint is installed by ci/suites/60-chart.sh"
    proc = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_multi_stage_with_bases_pinned_by_tag_and_digest():
    assert len(FROMS) >= 2
    for f in FROMS:
        image = f.split()[1]
        assert re.fullmatch(r"[^@\s]+:[\w.-]+@sha256:[0-9a-f]{64}", image), f"not pinned by tag and digest: {f}"
        assert ":latest@" not in image, f
    builder = FROMS[0].split()[1]
    m = re.match(r"rust:(\d+)\.(\d+)(?:\.\d+)?-slim-", builder)
    assert m, builder
    need = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    assert (int(m[1]), int(m[2])) >= tuple(int(x) for x in need.split(".")[:2])


def test_release_build_with_dependencies_cached_first():
    builds = [i for i in INSTRUCTIONS if "cargo build" in i]
    assert len(builds) == 2 and all("--release" in b and "--locked" in b and "--bin pushgateway" in b for b in builds)
    first_build = INSTRUCTIONS.index(builds[0])
    copies_before = [i for i in INSTRUCTIONS[:first_build] if i.startswith("COPY ")]
    assert all("src" not in c for c in copies_before), "only manifests before the dependency build"
    assert any("Cargo.lock" in c for c in copies_before)


# distroless `nonroot`: the user the runtime base defines, and the chart's podSecurityContext.
RUNTIME_USER = "65532"


def test_runtime_is_minimal_non_root_and_exposes_9091():
    assert re.search(r"(distroless|scratch|-slim)", FROMS[-1]), FROMS[-1]
    users = [i for i in FINAL if i.startswith("USER ")]
    assert users and users[-1].split()[1] == f"{RUNTIME_USER}:{RUNTIME_USER}"
    assert "EXPOSE 9091" in FINAL
    entry = [i for i in FINAL if i.startswith("ENTRYPOINT ")]
    assert entry and re.fullmatch(r'ENTRYPOINT \["[^"]*/pushgateway"\]', entry[-1]), entry


def test_data_directory_is_writable_by_the_runtime_user():
    assert any(i.startswith("COPY ") and f"--chown={RUNTIME_USER}:{RUNTIME_USER}" in i and i.rstrip().endswith(" /data")
               for i in FINAL)
    assert any(i.startswith("VOLUME ") and "/data" in i for i in FINAL)


def test_oci_labels():
    labels = " ".join(i for i in FINAL if i.startswith("LABEL "))
    for key in ("version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels
    assert tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["license"] == "Apache-2.0"


def test_the_chart_runs_the_images_user():
    values = yaml.safe_load((REPO / "charts/pushgateway/values.yaml").read_text())
    psc = values["podSecurityContext"]
    assert str(psc["runAsUser"]) == str(psc["runAsGroup"]) == str(psc["fsGroup"]) == RUNTIME_USER


def test_workspace_members_are_in_the_build_context():
    """Every member's manifest is copied, and .dockerignore keeps what the build needs."""
    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    for member in members:
        assert re.search(rf"COPY (\S+ )*{re.escape(member)}/(Cargo.toml)?\s", TEXT + "\n"), member
    ignore = (REPO / ".dockerignore").read_text().split()
    assert "*" in ignore
    for keep in ("!Cargo.toml", "!Cargo.lock", "!gateway/"):
        assert keep in ignore
    # Build output, caches and test artefacts stay out even inside a directory let back in.
    for out in ("**/target", "**/.cache", "**/ci/artifacts"):
        assert out in ignore and ignore.index(out) > ignore.index("!gateway/"), out


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo not installed")
def test_the_dockerfile_manifests_make_a_loadable_workspace(tmp_path):
    """Replays the dependency stage's files: manifests plus stub sources must load as a workspace."""
    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    for name in ("Cargo.toml", "Cargo.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    for member in members:
        (tmp_path / member / "src").mkdir(parents=True)
        shutil.copy(REPO / member / "Cargo.toml", tmp_path / member / "Cargo.toml")
        (tmp_path / member / "src" / "main.rs").write_text("fn main() {}\n")
    proc = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
