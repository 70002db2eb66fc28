"""Custom handler of the conformance suite's forwarding app
(enableForwardingHttpRequest: true; standard library only). The host
forwards the original request, e.g. GET /api/hello?x=1 with its headers, and
relays this plain HTTP reply verbatim: 201, X-Handler: fwd, body
"fwd:" + the query string. GET / is the readiness probe."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, extra=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/":
            self.reply(200, "ready")
        elif url.path == "/api/hello":
            self.reply(201, "fwd:" + url.query, [("X-Handler", "fwd")])
        else:
            self.reply(404, "not found")

    def log_message(self, fmt, *args):
        pass


def main():
    port = int(os.environ["FUNCTIONS_CUSTOMHANDLER_PORT"])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
