"""The GitHub workflows (actionlint, pinned actions) and the release's chart stamping."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))
HELM = os.environ["HELM"]
DIGEST = "sha256:" + "ab" * 32


ACTIONLINT = os.path.join(os.path.dirname(sys.executable), "actionlint")


def actionlint(*files):
    assert os.path.exists(ACTIONLINT), "actionlint is installed by ci/suites/65-image.sh"
    assert shutil.which("shellcheck"), "shellcheck makes actionlint check the run: scripts"
    return subprocess.run([ACTIONLINT, "-no-color", *map(str, files)], capture_output=True, text=True, cwd=REPO)


def test_actionlint_with_shellcheck_finds_nothing():
    assert {w.name for w in WORKFLOWS} >= {"ci.yml", "release.yml"}
    proc = actionlint(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((REPO / ".github/workflows/ci.yml").read_text().replace(
        "run: sudo --preserve-env=PATH,HOME,RUSTUP_HOME,CARGO_HOME ci/test",
        "run: cd ${{ github.head_ref }} && ls $UNQUOTED"))
    proc = actionlint(broken)
    assert proc.returncode != 0
    assert "github.head_ref" in proc.stdout and "SC2086" in proc.stdout, proc.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_third_party_actions_are_pinned_by_commit(workflow):
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", workflow.read_text(), re.M)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), f"not pinned by commit SHA: {action}"
        assert re.search(r"#\s*v\d", comment), f"{action}: say which release the SHA is, in a comment"


def test_the_release_builds_both_platforms_signs_and_attests():
    release = yaml.safe_load((REPO / ".github/workflows/release.yml").read_text())
    steps = [s for job in release["jobs"].values() for s in job["steps"]]
    build = next(s for s in steps if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max"
    assert any("cosign sign --yes" in s.get("run", "") for s in steps)
    assert release["jobs"]["image"]["permissions"]["id-token"] == "write"
    assert any("ci/release/stamp_chart.sh" in s.get("run", "") for s in steps)
    assert any("helm push" in s.get("run", "") and "oci://ghcr.io/" in s["run"] for s in steps)


def render(chart):
    out = subprocess.run([HELM, "template", "t", str(chart)], capture_output=True, text=True, check=True).stdout
    return list(yaml.safe_load_all(out))


def test_the_stamped_chart_runs_the_published_image_and_keeps_its_comments(tmp_path):
    chart = tmp_path / "pushgateway"
    shutil.copytree(REPO / "charts/pushgateway", chart)
    subprocess.run([REPO / "ci/release/stamp_chart.sh", chart, "1.2.3", "ghcr.io/someone/pushgateway", DIGEST], check=True)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert (meta["version"], meta["appVersion"]) == ("1.2.3", "1.2.3")
    deployment = next(d for d in render(chart) if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/someone/pushgateway@{DIGEST}"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.2.3"
    # Only the stamped lines changed: the values file keeps its documentation.
    before = (REPO / "charts/pushgateway/values.yaml").read_text().splitlines()
    after = (chart / "values.yaml").read_text().splitlines()
    assert len(before) == len(after)
    assert [(a, b) for a, b in zip(before, after) if a != b] == [
        ("  repository: pushgateway", "  repository: ghcr.io/someone/pushgateway"),
        ('  tag: ""', '  tag: "1.2.3"'),
        ('  digest: ""', f"  digest: {DIGEST}"),
    ]
    # The in-repo chart is untouched and keeps building on the local image.
    app_version = yaml.safe_load((REPO / "charts/pushgateway/Chart.yaml").read_text())["appVersion"]
    local = next(d for d in render(REPO / "charts/pushgateway") if d and d["kind"] == "Deployment")
    assert local["spec"]["template"]["spec"]["containers"][0]["image"] == f"pushgateway:{app_version}"


@pytest.mark.parametrize("args", [
    ("v1.2.3", "ghcr.io/someone/pushgateway", DIGEST),
    ("1.2.3", "ghcr.io/someone/pushgateway", "latest"),
    ("1.2.3", "ghcr.io/Someone/pushgateway;rm", DIGEST),
])
def test_stamping_refuses_what_is_not_a_version_a_digest_or_a_repository(tmp_path, args):
    chart = tmp_path / "pushgateway"
    shutil.copytree(REPO / "charts/pushgateway", chart)
    proc = subprocess.run([REPO / "ci/release/stamp_chart.sh", chart, *args], capture_output=True, text=True)
    assert proc.returncode != 0 and "stamp_chart:" in proc.stderr
    assert (chart / "values.yaml").read_text() == (REPO / "charts/pushgateway/values.yaml").read_text()
