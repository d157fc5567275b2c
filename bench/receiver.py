#!/usr/bin/env python3
"""A webhook receiver for the benchmarks: answers every POST with 204 and
appends one JSON line per request to OUT: arrival time (Unix seconds, the
same clock Lookout stamps runs with), the webhook type and the component.

Usage: bench/receiver.py PORT OUT     (stops by itself after 15 minutes)
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        at = time.time()
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()
        try:
            doc = json.loads(body)
            kind = doc.get("type")
            comp = doc.get("incident", {}).get("component", {}).get("id")
        except ValueError:
            kind, comp = None, None
        line = json.dumps({"at": at, "type": kind, "component": comp})
        with LOCK, open(OUT, "a") as f:
            f.write(line + "\n")

    def log_message(self, *args) -> None:
        pass


LOCK = threading.Lock()
OUT = sys.argv[2]

if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook)
    threading.Timer(900, server.shutdown).start()
    server.serve_forever()
