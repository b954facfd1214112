"""A small, strict parser of the text exposition format (version 0.0.4) as the gateways write it,
plus the normalisation used to compare two gateways' /metrics.

It keeps what prometheus_client's parser loses: the exact value text (Go writes 1e+06, 1.5e-07),
the order of families, samples and labels, and "no HELP line" versus "empty HELP".
"""

import math
import re
from dataclasses import dataclass, field

# Families that belong to the gateways themselves. Their samples are dropped, except samples with a
# `job` label: those can only come from a push (the gateway's own metrics never carry `job`).
OWN_PREFIXES = ("pushgateway_", "process_", "go_", "promhttp_")
TIMESTAMP_FAMILIES = ("push_time_seconds", "push_failure_time_seconds")

# Lenient on purpose: upstream writes whatever name a protobuf push carried (e.g. "a-b").
_NAME = re.compile(r'[^{}\s"]+')
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class ExpositionError(ValueError):
    pass


@dataclass
class Sample:
    name: str
    labels: tuple  # ((name, value), ...) in exposition order
    value: str  # the exact text
    timestamp: str = None

    @property
    def fvalue(self):
        return float(self.value)


@dataclass
class Family:
    name: str
    type: str = None
    help: str = None  # None: no HELP line
    samples: list = field(default_factory=list)


def _unescape(s, allow_quote):
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s):
                raise ExpositionError(f"dangling backslash in {s!r}")
            n = s[i + 1]
            if n == "\\":
                out.append("\\")
            elif n == "n":
                out.append("\n")
            elif n == '"' and allow_quote:
                out.append('"')
            else:
                raise ExpositionError(f"invalid escape \\{n} in {s!r}")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_sample(line):
    m = _NAME.match(line)
    if not m:
        raise ExpositionError(f"bad sample line {line!r}")
    name = m.group(0)
    i = m.end()
    labels = []
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            if line[i] == "}":
                i += 1
                break
            lm = _LABEL_NAME.match(line, i)
            if not lm or line[lm.end() : lm.end() + 2] != '="':
                raise ExpositionError(f"bad label in {line!r}")
            j = lm.end() + 2
            raw = []
            while line[j] != '"':
                if line[j] == "\\":
                    raw.append(line[j : j + 2])
                    j += 2
                else:
                    raw.append(line[j])
                    j += 1
            labels.append((lm.group(0), _unescape("".join(raw), True)))
            i = j + 1
            if line[i] == ",":
                i += 1
            elif line[i] != "}":
                raise ExpositionError(f"bad label separator in {line!r}")
    if i >= len(line) or line[i] != " ":
        raise ExpositionError(f"missing value in {line!r}")
    rest = line[i + 1 :].split(" ")
    if len(rest) not in (1, 2) or not rest[0]:
        raise ExpositionError(f"bad value in {line!r}")
    float(rest[0])  # must be a float Go can write
    return Sample(name, tuple(labels), rest[0], rest[1] if len(rest) == 2 else None)


def parse(text):
    """Parses an exposition into a list of Family, in order. Raises ExpositionError."""
    if text and not text.endswith("\n"):
        raise ExpositionError("exposition does not end with a newline")
    families = []
    cur = None
    for line in text.split("\n")[:-1] if text else []:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, rest = line[2:6], line[7:]
            name, _, arg = rest.partition(" ")
            if cur is None or cur.name != name:
                cur = Family(name)
                families.append(cur)
            if kind == "HELP":
                cur.help = _unescape(arg, False)
            else:
                cur.type = arg
        elif line.startswith("#") or line == "":
            raise ExpositionError(f"unexpected line {line!r}")
        else:
            try:
                s = _parse_sample(line)
            except IndexError:
                raise ExpositionError(f"truncated sample line {line!r}") from None
            if cur is None:
                cur = Family(s.name)
                families.append(cur)
            cur.samples.append(s)
    return families


def _fkey(value_text):
    v = float(value_text)
    if math.isnan(v):
        return "NaN"
    return v


def _own(name):
    return name.startswith(OWN_PREFIXES)


def normalise(families, drop_help=False):
    """Drops the gateways' own samples and makes timestamps comparable.

    Returns a list of (name, type, help, [(sample name, labels, value text)]), in exposition order,
    with labels in exposition order. push_time_seconds / push_failure_time_seconds values become
    "zero" or "non-zero".
    """
    out = []
    for f in families:
        samples = f.samples
        if _own(f.name):
            samples = [s for s in samples if any(k == "job" for k, _ in s.labels)]
            if not samples:
                continue
        norm = []
        for s in samples:
            value = s.value
            if f.name in TIMESTAMP_FAMILIES:
                value = "zero" if float(value) == 0 else "non-zero"
            norm.append((s.name, s.labels, value, s.timestamp))
        out.append((f.name, f.type, None if drop_help else f.help, norm))
    return out


def _go_sort_key(labels):
    """The key upstream (client_golang's metric sorter) orders a family's metrics by: the number of
    labels, then the label values position by position (labels sorted by name; `le`/`quantile` belong
    to a bucket or quantile line, not to the metric)."""
    own = sorted((k, v) for k, v in labels if k not in ("le", "quantile"))
    return (len(own), tuple(v for _, v in own))


def canonical_ties(normalised):
    """Upstream's order of two metrics whose sort keys are equal (e.g. {x="1"} and {y="1"}) is arbitrary
    (Go's unstable sort over a map). Within each run of consecutive metrics with equal keys, put the
    metrics in label order; every other order is left as it is, so real order differences still show."""
    out = []
    for name, typ, help_, samples in normalised:
        blocks = []  # consecutive lines of one metric (same labels apart from le/quantile)
        for s in samples:
            ident = tuple(sorted((k, v) for k, v in s[1] if k not in ("le", "quantile")))
            if blocks and blocks[-1][0] == ident:
                blocks[-1][1].append(s)
            else:
                blocks.append((ident, [s]))
        result, i = [], 0
        while i < len(blocks):
            j = i
            key = _go_sort_key(blocks[i][0])
            while j + 1 < len(blocks) and _go_sort_key(blocks[j + 1][0]) == key:
                j += 1
            for _, lines in sorted(blocks[i : j + 1], key=lambda b: b[0]):
                result.extend(lines)
            i = j + 1
        out.append((name, typ, help_, result))
    return out


def semantic(normalised):
    """Order-insensitive view: families sorted by name, samples sorted, labels as sorted tuples,
    values as floats (NaN compares equal to NaN)."""
    out = []
    for name, typ, help_, samples in sorted(normalised, key=lambda f: f[0]):
        ss = []
        for sname, labels, value, ts in samples:
            v = value if value in ("zero", "non-zero") else _fkey(value)
            ss.append((sname, tuple(sorted(labels)), repr(v), ts))
        out.append((name, typ, help_, sorted(ss)))
    return out


def render(normalised):
    """Human-readable text of a normalised exposition (for assertion messages)."""
    lines = []
    for name, typ, help_, samples in normalised:
        lines.append(f"# {name} type={typ} help={help_!r}")
        for sname, labels, value, ts in samples:
            lab = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"  {sname}{{{lab}}} {value}" + (f" @{ts}" if ts else ""))
    return "\n".join(lines)


def samples_of(families, name):
    """{frozenset(labels.items()): value text} of every sample called `name`."""
    out = {}
    for f in families:
        for s in f.samples:
            if s.name == name:
                out[frozenset(s.labels)] = s.value
    return out
