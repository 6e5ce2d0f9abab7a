#!/usr/bin/env python3
"""A local imitation of the Hugging Face Hub resolve endpoint and of an image host, for tests.

Started by the C++ tests (tests/unit/hub, tests/unit/data) and usable by hand:

    python3 tests/support/fake_hub.py --port-file /tmp/port --repo org/tiny=DIR \
        [--gated org/tiny] [--token SECRET] [--rename old/name=org/tiny] [--images DIR]

It binds 127.0.0.1 on a port chosen by the OS and writes that port to --port-file (atomically).
It exits when its parent process goes away.

For CTest end-to-end tests it can also wrap one command, substituting {hub} (the base URL,
http://127.0.0.1:PORT) in the command's arguments and in template files, and exit with the
command's exit code:

    python3 tests/support/fake_hub.py --images tests/data/images \
        --template pairs.csv.in=/tmp/pairs.csv --exec -- mmembed fetch /tmp/pairs.csv -o /tmp/out

Hub routes (what huggingface_hub's hf_hub_download expects, see spec section F.3):
  HEAD/GET /{repo}/resolve/{revision}/{path}
    revision: "main", the repo's commit (sha1 over its content) or "v1"; else 404 RevisionNotFound
    regular files: 200, ETag = git blob sha1, X-Repo-Commit, Content-Length
    LFS files (*.safetensors, *.bin, *.pt, *.msgpack): 302 to http://localhost:PORT/cdn/<sha256>
      (another host name than 127.0.0.1, like a CDN), X-Linked-Etag = sha256, X-Linked-Size
    missing file: 404 X-Error-Code EntryNotFound (with X-Repo-Commit); unknown repo: 404 RepoNotFound
    gated repo without "Authorization: Bearer TOKEN": 401 X-Error-Code GatedRepo
    renamed repo: 307 with a relative Location to the new name
  GET /cdn/<sha256>: the LFS blob, Range supported (206). With --drop-cdn-once, the first
    full GET of each blob sends the headers and half of the body, then closes the connection.
Image routes:
  /img/<file>        a file of --images (Range supported)
  /html              200 text/html page
  /truncated.jpg     the first 60% of --images/cat_landscape.jpg, served complete as such
  /big.bin           2,000,000 bytes with Content-Length; /big-chunked: same, chunked
  /slow              waits --slow-seconds before answering; /slow-body: headers, then 1 byte/s
  /status/<code>     that status with a short text body
  /redirect/<n>/<file>  n relative redirects, then /img/<file>; /loop: redirects to itself
  /flaky/<file>      first request of each file 503 (Retry-After: 0), then the image
  /drop/<file>       first request sends half of the image and closes; later ones honour Range
  /badrange/<file>   206 with the whole file whatever Range was asked (a broken server)
  /huge-header/line  one 20 MB header line; /huge-header/many: 20 MB in 4 KB header lines
Control:
  GET /__stats       JSON list of {method, path, range, authorization, host} since the last reset
  GET|POST /__reset  clears the list and the one-shot fault state
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".msgpack", ".h5")


class Repo:
    def __init__(self, name, folder):
        self.name = name
        self.files = {}  # path -> bytes
        for root, _, names in os.walk(folder):
            for n in names:
                full = os.path.join(root, n)
                rel = os.path.relpath(full, folder).replace(os.sep, "/")
                with open(full, "rb") as f:
                    self.files[rel] = f.read()
        h = hashlib.sha1(name.encode())
        for rel in sorted(self.files):
            h.update(rel.encode() + b"\0" + hashlib.sha256(self.files[rel]).digest())
        self.commit = h.hexdigest()

    @staticmethod
    def is_lfs(path):
        return path.endswith(LFS_SUFFIXES)

    @staticmethod
    def git_sha1(data):
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class State:
    def __init__(self, args):
        self.args = args
        self.repos = {}
        for spec in args.repo:
            name, folder = spec.split("=", 1)
            self.repos[name] = Repo(name, folder)
        self.gated = set(args.gated)
        self.renamed = dict(s.split("=", 1) for s in args.rename)
        self.blobs = {}
        for repo in self.repos.values():
            for data in repo.files.values():
                self.blobs[hashlib.sha256(data).hexdigest()] = data
        self.lock = threading.Lock()
        self.log = []
        self.seen = set()  # one-shot faults already fired
        self.port = 0

    def once(self, key):
        with self.lock:
            if key in self.seen:
                return False
            self.seen.add(key)
            return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1"

    def log_message(self, fmt, *a):  # quiet
        pass

    @property
    def state(self):
        return self.server.state

    # ---- helpers -------------------------------------------------------------------------
    def record(self):
        entry = {
            "method": self.command,
            "path": urlsplit(self.path).path,
            "range": self.headers.get("Range"),
            "authorization": self.headers.get("Authorization"),
            "host": self.headers.get("Host"),
        }
        with self.state.lock:
            self.state.log.append(entry)

    def reply(self, code, body=b"", headers=None, content_type="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_data(self, data, content_type, drop_half=False):
        rng = self.headers.get("Range")
        start = 0
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.reply(416, b"", {"Content-Range": "bytes */%d" % len(data)})
                return
        code = 206 if start > 0 else 200
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if drop_half:
            self.wfile.write(data[start:start + (len(data) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(data[start:])

    # ---- routes --------------------------------------------------------------------------
    def do_HEAD(self):
        self.route()

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.record()
        if self.path == "/__reset":
            with self.state.lock:
                self.state.log.clear()
                self.state.seen.clear()
            self.reply(200, b"ok")
        else:
            self.reply(404, b"no")

    def route(self):
        path = urlsplit(self.path).path
        if path == "/__stats":
            with self.state.lock:
                body = json.dumps(self.state.log).encode()
            self.reply(200, body, content_type="application/json")
            return
        if path == "/__reset":
            with self.state.lock:
                self.state.log.clear()
                self.state.seen.clear()
            return self.reply(200, b"ok")
        self.record()
        if "/resolve/" in path:
            return self.resolve(path)
        if path.startswith("/cdn/"):
            sha = path[5:]
            data = self.state.blobs.get(sha)
            if data is None:
                return self.reply(404, b"no such blob")
            drop = self.state.args.drop_cdn_once and not self.headers.get("Range") and \
                self.command == "GET" and self.state.once("cdn:" + sha)
            return self.send_data(data, "application/octet-stream", drop_half=drop)
        return self.images(path)

    def resolve(self, path):
        head, _, rest = path[1:].partition("/resolve/")
        repo_name = unquote(head)
        revision, _, filename = rest.partition("/")
        revision, filename = unquote(revision), unquote(filename)
        if repo_name in self.state.renamed:
            new = self.state.renamed[repo_name]
            return self.reply(307, b"moved", {"Location": "/%s/resolve/%s/%s" % (new, rest.split("/")[0], rest.partition("/")[2])})
        repo = self.state.repos.get(repo_name)
        if repo is None:
            return self.reply(404, b"Repository not found", {"X-Error-Code": "RepoNotFound",
                                                             "X-Error-Message": "Repository not found"})
        if repo_name in self.state.gated:
            if self.headers.get("Authorization") != "Bearer " + self.state.args.token:
                return self.reply(401, b"gated", {"X-Error-Code": "GatedRepo",
                                                  "X-Error-Message": "Access to model %s is restricted." % repo_name})
        if revision not in ("main", "v1", repo.commit):
            return self.reply(404, b"Revision not found", {"X-Error-Code": "RevisionNotFound",
                                                           "X-Error-Message": "Invalid rev id: " + revision})
        data = repo.files.get(filename)
        common = {"X-Repo-Commit": repo.commit}
        if data is None:
            common.update({"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
            return self.reply(404, b"Entry not found", common)
        if repo.is_lfs(filename):
            sha = hashlib.sha256(data).hexdigest()
            common.update({
                "X-Linked-Etag": '"%s"' % sha,
                "X-Linked-Size": str(len(data)),
                "ETag": '"%s"' % Repo.git_sha1(b"version https://git-lfs.github.com/spec/v1\n"),
                "Location": "http://localhost:%d/cdn/%s" % (self.state.port, sha),
            })
            return self.reply(302, b"Found. Redirecting", common)
        common["ETag"] = '"%s"' % Repo.git_sha1(data)
        self.send_response(200)
        for k, v in common.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def image_bytes(self, name):
        folder = self.state.args.images
        full = os.path.join(folder or "", os.path.basename(name))
        if not folder or not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()

    @staticmethod
    def type_of(name):
        ext = name.rsplit(".", 1)[-1].lower()
        return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                "webp": "image/webp", "gif": "image/gif"}.get(ext, "application/octet-stream")

    def images(self, path):
        parts = path.strip("/").split("/")
        kind = parts[0]
        if kind == "img" and len(parts) == 2:
            data = self.image_bytes(parts[1])
            if data is None:
                return self.reply(404, b"not found")
            return self.send_data(data, self.type_of(parts[1]))
        if kind == "html":
            return self.reply(200, b"<!DOCTYPE html>\n<html><body>Sign in to view this photo</body></html>\n",
                              content_type="text/html; charset=utf-8")
        if kind == "truncated.jpg":
            data = self.image_bytes("cat_landscape.jpg") or b""
            return self.send_data(data[: len(data) * 6 // 10], "image/jpeg")
        if kind == "big.bin":
            return self.send_data(b"\xff\xd8\xff" + b"\0" * 1999997, "image/jpeg")
        if kind == "big-chunked":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                chunk = b"\xff\xd8\xff" + b"\0" * 65533
                for _ in range(31):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            return
        if kind == "slow":
            time.sleep(self.state.args.slow_seconds)
            return self.reply(200, b"late")
        if kind == "slow-body":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(1.0)
            except OSError:
                pass
            return
        if kind == "status" and len(parts) == 2:
            return self.reply(int(parts[1]), b"status " + parts[1].encode())
        if kind == "redirect" and len(parts) == 3:
            n = int(parts[1])
            target = "/img/" + parts[2] if n <= 1 else "/redirect/%d/%s" % (n - 1, parts[2])
            return self.reply(302, b"", {"Location": target})
        if kind == "loop":
            return self.reply(302, b"", {"Location": "/loop"})
        if kind == "flaky" and len(parts) == 2:
            if self.state.once("flaky:" + parts[1]):
                return self.reply(503, b"busy", {"Retry-After": "0"})
            data = self.image_bytes(parts[1])
            return self.send_data(data, self.type_of(parts[1])) if data else self.reply(404, b"")
        if kind == "badrange" and len(parts) == 2:
            # Answers every request with 206 for the whole file, whatever range was asked.
            data = self.image_bytes(parts[1]) or b""
            self.send_response(206)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Range", "bytes 0-%d/%d" % (len(data) - 1, len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if kind == "huge-header" and len(parts) == 2:
            # 20 MB of response headers: one line, or many lines that are each short.
            try:
                self.send_response(200)
                if parts[1] == "line":
                    self.send_header("X-Huge", "a" * 20_000_000)
                else:
                    for i in range(5000):
                        self.send_header("X-Many-%d" % i, "b" * 4000)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass
            return
        if kind == "drop" and len(parts) == 2:
            data = self.image_bytes(parts[1])
            if data is None:
                return self.reply(404, b"")
            drop = not self.headers.get("Range") and self.state.once("drop:" + parts[1])
            return self.send_data(data, self.type_of(parts[1]), drop_half=drop)
        return self.reply(404, b"not found")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that hang up early (size limits, timeouts) are part of the tests.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def watch_parent(parent):
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.2)


def run_command(server, port, args):
    import subprocess
    base = "http://127.0.0.1:%d" % port
    for spec in args.template:
        src, dst = spec.split("=", 1)
        with open(src) as f:
            text = f.read().replace("{hub}", base)
        with open(dst, "w") as f:
            f.write(text)
    cmd = [a.replace("{hub}", base) for a in args.exec]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    env = dict(os.environ, FAKE_HUB_URL=base)
    try:
        return subprocess.call(cmd, env=env)
    finally:
        server.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port-file", help="where to write the port (required without --exec)")
    ap.add_argument("--template", action="append", default=[],
                    help="IN=OUT: copy IN to OUT replacing {hub} by the base URL (with --exec)")
    ap.add_argument("--exec", action="store_true",
                    help="must be last: run the rest of the command line while serving, then exit "
                         "with its code")
    ap.add_argument("--repo", action="append", default=[], help="NAME=DIR, repeatable")
    ap.add_argument("--gated", action="append", default=[])
    ap.add_argument("--token", default="hf_test_token")
    ap.add_argument("--rename", action="append", default=[], help="OLD=NEW")
    ap.add_argument("--images")
    ap.add_argument("--slow-seconds", type=float, default=5.0)
    ap.add_argument("--drop-cdn-once", action="store_true")
    argv = sys.argv[1:]
    command = None
    if "--exec" in argv:
        at = argv.index("--exec")
        argv, command = argv[:at + 1], [a for a in argv[at + 1:]]
        if command[:1] == ["--"]:
            command = command[1:]
    args = ap.parse_args(argv)
    args.exec = command

    state = State(args)
    server = Server(("127.0.0.1", 0), Handler)
    server.state = state
    state.port = server.server_address[1]
    if args.exec is not None:
        if not args.exec:
            ap.error("--exec needs a command")
        return run_command(server, state.port, args)
    if not args.port_file:
        ap.error("--port-file is required without --exec")
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % state.port)
    os.replace(tmp, args.port_file)
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
