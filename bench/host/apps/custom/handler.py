"""The benchmark's custom handler: the 'hello' function, Python standard library only.

Invocation mode:  POST /hello      -> {"Outputs":{"res":{"statusCode":200,"body":"hello"}},...}
Forwarding mode:  GET  /api/hello  -> 200 text/plain "hello"
Readiness:        GET  /           -> 200
HTTP/1.1 with Content-Length on every answer, so the host's connections stay alive,
and TCP_NODELAY: http.server writes the headers and the body separately, and with
Nagle on, the body waits for the ACK of the headers, which the client delays by
~40 ms (Go's and Node's servers set TCP_NODELAY by default).
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INVOKE = json.dumps({"Outputs": {"res": {"statusCode": 200, "body": "hello"}},
                     "Logs": [], "ReturnValue": None}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def do_GET(self):
        self._drain()
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, b"", "text/plain")
        elif path == "/api/hello":
            self._send(200, b"hello", "text/plain")
        else:
            self._send(404, b"", "text/plain")

    def do_POST(self):
        self._drain()
        if self.path.split("?", 1)[0] == "/hello":
            self._send(200, INVOKE, "application/json")
        else:
            self._send(404, b"", "text/plain")

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("FUNCTIONS_CUSTOMHANDLER_PORT", "8080"))
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
