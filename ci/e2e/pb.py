"""A tiny hand-written encoder of io.prometheus.client.MetricFamily (length-delimited protobuf), the
format the Go client pushes. Only what the tests need; field numbers from metrics.proto."""

import struct

TYPES = {"counter": 0, "gauge": 1, "summary": 2, "untyped": 3, "histogram": 4}
CONTENT_TYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"


def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _ld(field, data):
    return _key(field, 2) + _varint(len(data)) + data


def _str(field, s):
    return _ld(field, s.encode("utf-8"))


def _double(field, v):
    return _key(field, 1) + struct.pack("<d", v)


def _uint(field, v):
    return _key(field, 0) + _varint(v)


def metric(labels=(), gauge=None, counter=None, untyped=None, summary=None, histogram=None, timestamp_ms=None):
    """labels: [(name, value)]; summary: (count, sum, [(q, v)]); histogram: (count, sum, [(le, cumulative)])."""
    out = b"".join(_ld(1, _str(1, k) + _str(2, v)) for k, v in labels)
    if gauge is not None:
        out += _ld(2, _double(1, gauge))
    if counter is not None:
        out += _ld(3, _double(1, counter))
    if summary is not None:
        count, total, quantiles = summary
        body = _uint(1, count) + _double(2, total)
        body += b"".join(_ld(3, _double(1, q) + _double(2, v)) for q, v in quantiles)
        out += _ld(4, body)
    if untyped is not None:
        out += _ld(5, _double(1, untyped))
    if timestamp_ms is not None:
        out += _uint(6, timestamp_ms)
    if histogram is not None:
        count, total, buckets = histogram
        body = _uint(1, count) + _double(2, total)
        body += b"".join(_ld(3, _uint(1, c) + _double(2, le)) for le, c in buckets)
        out += _ld(7, body)
    return out


def family(name, typ, metrics, help=None):
    out = _str(1, name)
    if help is not None:
        out += _str(2, help)
    if typ is not None:
        out += _uint(3, TYPES[typ])
    out += b"".join(_ld(4, m) for m in metrics)
    return out


def delimited(*families):
    return b"".join(_varint(len(f)) + f for f in families)


# ---------------------------------------------------------------- decoding (for scrapes in protobuf)

TYPE_NAMES = {v: k for k, v in TYPES.items()}
TYPE_NAMES[5] = "gaugehistogram"


def _read_varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf):
    """{field number: [values]} of one message: ints for varints, bytes for length-delimited and for
    fixed64/fixed32 (use as_double)."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
        elif wire == 1:
            v, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i : i + n], i + n
        elif wire == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.setdefault(num, []).append(v)
    return out


def as_double(b):
    return struct.unpack("<d", b)[0]


def _one(f, num, conv, default=None):
    return conv(f[num][-1]) if num in f else default


def decode_delimited(data):
    """Parses a delimited MetricFamily stream into a list of dicts:
    {"name", "help", "type", "metrics": [{"labels": {..}, "timestamp_ms", and one of
    "gauge"/"counter"/"untyped": value, "summary": (count, sum, [(q, v)]),
    "histogram": (count, sum, [(upper_bound, cumulative_count)])}]}."""
    out = []
    i = 0
    while i < len(data):
        n, i = _read_varint(data, i)
        f = fields(data[i : i + n])
        i += n
        fam = {
            "name": _one(f, 1, bytes.decode),
            "help": _one(f, 2, bytes.decode),
            "type": TYPE_NAMES.get(_one(f, 3, int, 0), "?"),
            "metrics": [],
        }
        for mb in f.get(4, []):
            m = fields(mb)
            metric = {"labels": {}, "timestamp_ms": _one(m, 6, int)}
            for lb in m.get(1, []):
                lp = fields(lb)
                metric["labels"][_one(lp, 1, bytes.decode, "")] = _one(lp, 2, bytes.decode, "")
            for num, kind in ((2, "gauge"), (3, "counter"), (5, "untyped")):
                if num in m:
                    metric[kind] = _one(fields(m[num][-1]), 1, as_double, 0.0)
            if 4 in m:
                s = fields(m[4][-1])
                qs = [(_one(fields(q), 1, as_double, 0.0), _one(fields(q), 2, as_double, 0.0)) for q in s.get(3, [])]
                metric["summary"] = (_one(s, 1, int, 0), _one(s, 2, as_double, 0.0), qs)
            if 7 in m:
                h = fields(m[7][-1])
                count = _one(h, 4, as_double) if 4 in h else _one(h, 1, int, 0)
                bs = []
                for bb in h.get(3, []):
                    b = fields(bb)
                    c = _one(b, 4, as_double) if 4 in b else _one(b, 1, int, 0)
                    bs.append((_one(b, 2, as_double, 0.0), c))
                metric["histogram"] = (count, _one(h, 2, as_double, 0.0), bs)
            fam["metrics"].append(metric)
        out.append(fam)
    return out
