"""values.yaml documents every key with a `# --` comment (helm-docs style)."""

import re

from conftest import CHART

KEY = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):(.*)$")


def undocumented_keys(text):
    """Keys that neither carry a `# --` comment block nor sit under a documented parent."""
    missing = []
    comment = []          # the comment block right above the current line
    stack = []            # (indent, documented) of the open mappings
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
            continue
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        m = KEY.match(line)
        if not m:            # a list item or a continuation
            comment = []
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = any(c.startswith("# --") for c in comment)
        under_documented = any(d for _, d in stack)
        leaf = m.group(3).strip() != ""
        if leaf and not documented and not under_documented:
            missing.append(m.group(2) if not stack else line.strip())
        stack.append((indent, documented or under_documented))
        comment = []
    return missing


def test_every_value_is_documented():
    missing = undocumented_keys((CHART / "values.yaml").read_text())
    assert not missing, f"keys without a '# --' comment: {missing}"


def test_the_checker_notices_a_missing_comment():
    assert undocumented_keys("# -- ok\na: 1\nb: 2\n") == ["b"]
    assert undocumented_keys("# -- parent\nres:\n  x: 1\n") == []


def empty_defaults_without_example(text):
    """Keys whose default is empty ("", {}, []) and that are not followed by a commented example."""
    lines = text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        m = KEY.match(line)
        if not m or m.group(3).strip() not in ('""', "{}", "[]"):
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not re.match(rf"^{m.group(1)}\s*# (?!--)", following):
            missing.append(line.strip())
    return missing


def test_empty_defaults_show_an_example():
    missing = empty_defaults_without_example((CHART / "values.yaml").read_text())
    assert not missing, f"empty defaults without a commented example below them: {missing}"


def test_the_example_checker_notices_a_missing_example():
    assert empty_defaults_without_example("a: \"\"\n  # a: x\nb: {}\nc: 1\n") == ["b: {}"]
