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
