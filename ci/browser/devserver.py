#!/usr/bin/env python3
"""A tiny development server for the web UI, standing in for the Rust side's routes.

It serves gateway/src/web/ui/ the way the gateway does (index.html at <prefix>/ and
<prefix>/status with __PATH_PREFIX__ and __VERSION__ substituted, the assets at
<prefix>/static/<name> with a long cache header and, in the scripts, __VERSION__ substituted) and proxies every other request, path
unchanged, to an upstream Pushgateway (the reference, started with the same route prefix).

    python3 ci/browser/devserver.py --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9091 [--prefix /pgw]
"""
import argparse
import http.client
import http.server
import os
import sys
import urllib.parse

UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "gateway", "src", "web", "ui")
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length"}


def make_handler(prefix, upstream, version, ui_dir):
    up = urllib.parse.urlsplit(upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet unless asked
            if os.environ.get("DEVSERVER_LOG"):
                sys.stderr.write("devserver: " + (fmt % args) + "\n")

        def send_body(self, status, ctype, body, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def ui(self):
            path = urllib.parse.urlsplit(self.path).path
            if self.command not in ("GET", "HEAD"):
                return False
            if path in (prefix + "/", prefix + "/status", prefix or "/"):
                if prefix and path == prefix:
                    self.send_body(301, "text/plain", b"", [("Location", prefix + "/")])
                    return True
                with open(os.path.join(ui_dir, "index.html"), "rb") as f:
                    body = f.read().replace(b"__PATH_PREFIX__", prefix.encode()).replace(b"__VERSION__", version.encode())
                self.send_body(200, "text/html; charset=utf-8", body, [("Cache-Control", "no-cache")])
                return True
            if path.startswith(prefix + "/static/"):
                name = path[len(prefix + "/static/"):]
                ext = os.path.splitext(name)[1]
                if "/" in name or ext not in TYPES or not os.path.exists(os.path.join(ui_dir, name)):
                    self.send_body(404, "text/plain", b"not found\n")
                    return True
                with open(os.path.join(ui_dir, name), "rb") as f:
                    body = f.read()
                if ext == ".js":  # the modules import each other with the version in the URL
                    body = body.replace(b"__VERSION__", version.encode())
                self.send_body(200, TYPES[ext], body, [("Cache-Control", "public, max-age=31536000, immutable")])
                return True
            return False

        def proxy(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
            conn.request(self.command, self.path, body=body, headers=headers)
            res = conn.getresponse()
            data = res.read()
            self.send_response(res.status)
            for k, v in res.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        def handle_any(self):
            if not self.ui():
                self.proxy()

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = handle_any

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:8080")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--version", default="dev")
    ap.add_argument("--ui-dir", default=UI_DIR)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    prefix = args.prefix.rstrip("/")
    server = http.server.ThreadingHTTPServer((host, int(port)), make_handler(prefix, args.upstream, args.version, args.ui_dir))
    server.daemon_threads = True
    print("devserver listening on http://%s:%s%s/" % (host, port, prefix), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
