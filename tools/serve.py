#!/usr/bin/env python3
"""Serves the explorer's static site on 127.0.0.1: index.html, www/ and weights/, nothing else.

It sends application/wasm for .wasm and the cross-origin isolation headers (COOP/COEP), gzips what
compresses when the browser accepts it (as most web servers do), refuses path traversal (plain or
percent-encoded), and lists no directories. Standard library only.

    python3 tools/serve.py [--port 8000] [--weights DIR] [--bind 127.0.0.1]

--port 0 picks a free port; the first line printed is always "serving http://ADDRESS:PORT/".
--bind 0.0.0.0 shows the page to other machines (a classroom on one network); it warns when it does.
"""

import argparse
import gzip
import http.server
import ipaddress
import os
import posixpath
import sys
import urllib.parse

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".safetensors": "application/octet-stream",
    ".ts": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}

# Compressed when the browser accepts gzip; images are compressed already.
GZIP_TYPES = {".html", ".js", ".mjs", ".css", ".json", ".wasm", ".safetensors", ".svg", ".ts", ".md"}
_gzipped = {}  # (path, mtime, size) -> the gzipped body, so that each file is compressed once


def gzipped(target, body):
    """The file's body, gzipped (level 6, as web servers usually do), computed once per version of the file."""
    stat = os.stat(target)
    key = (target, stat.st_mtime_ns, stat.st_size)
    if key not in _gzipped:
        _gzipped[key] = gzip.compress(body, compresslevel=6, mtime=0)
    return _gzipped[key]


def resolve(url_path, mounts):
    """Maps a request path to a file inside one of the mounts, or returns None (and never escapes a mount)."""
    path = urllib.parse.urlsplit(url_path).path
    # Decode until stable, so that %252e%252e cannot sneak a ".." past the check below.
    for _ in range(4):
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        return None
    if "\\" in path or "\x00" in path or not path.startswith("/"):
        return None
    parts = path.split("/")[1:]
    if any(p in ("..", ".") for p in parts):
        return None
    if path == "/":
        parts = ["index.html"]
    mount, rest = parts[0], parts[1:]
    if mount not in mounts or (mount != "index.html" and not rest):
        return None
    base = mounts[mount]
    target = os.path.realpath(os.path.join(base, *rest)) if rest else os.path.realpath(base)
    allowed = os.path.realpath(base)
    if target != allowed and not target.startswith(allowed + os.sep):
        return None
    return target if os.path.isfile(target) else None


class Handler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD for the mounted files, with the isolation headers on every response."""

    mounts = {}
    server_version = "vae-explorer-serve"
    protocol_version = "HTTP/1.1"  # keep-alive: the page loads a dozen small modules
    # Headers and body go out as two writes; with Nagle's algorithm on, the second waits for the
    # client's delayed ACK (about 40 ms on Linux) on every request after a connection's first.
    disable_nagle_algorithm = True

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def do_GET(self):
        self.respond(with_body=True)

    def do_HEAD(self):
        self.respond(with_body=False)

    def respond(self, with_body):
        target = resolve(self.path, self.mounts)
        if target is None:
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)
            return
        ext = os.path.splitext(target)[1].lower()
        with open(target, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(ext, "application/octet-stream"))
        if ext in GZIP_TYPES:
            self.send_header("Vary", "Accept-Encoding")
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                body = gzipped(target, body)
                self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, fmt, *args):
        if os.environ.get("SERVE_LOG"):
            super().log_message(fmt, *args)


class Server(http.server.ThreadingHTTPServer):
    """The threaded server, quiet when a browser drops a connection it no longer needs."""

    # The default backlog of 5 drops connections when a class opens the page at once (a dropped SYN
    # costs the browser a 1 s retry).
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--weights", default=os.path.join(PROJECT_ROOT, "weights"),
                        help="directory served as /weights/ (default: the project's weights/)")
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    args = parser.parse_args()
    Handler.mounts = {
        "index.html": os.path.join(PROJECT_ROOT, "index.html"),
        "www": os.path.join(PROJECT_ROOT, "www"),
        "weights": os.path.abspath(args.weights),
    }
    try:
        server = Server((args.bind, args.port), Handler)
    except OSError as e:
        print(f"error: cannot listen on {args.bind}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    host = server.server_address[0]
    print(f"serving http://{host}:{server.server_address[1]}/", flush=True)
    if not ipaddress.ip_address(host).is_loopback:
        print(f"warning: listening on {host}: other machines on the network can load the page",
              file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
