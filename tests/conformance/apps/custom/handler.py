"""Custom handler of the conformance suite's custom-handler app (standard
library only). The host POSTs each invocation to /<function> as
{"Data": {..}, "Metadata": {..}} and reads back
{"Outputs": {..}, "Logs": [..], "ReturnValue": ..}; GET / is the readiness
probe. One function per entry of FUNCTIONS below; each exercises one part
of the protocol, and the tests assert what the host makes of it. Every
function is given the invocation's Data and Metadata plus the HTTP request
the host made (host_req: method, path, headers, and this handler's pid),
which echo sends back."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def as_text(value):
    """A binding value as text: strings as they are, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def http_res(status, body, content_type="text/plain"):
    return {"statusCode": status, "body": body, "headers": {"Content-Type": content_type}}


def hello(data, metadata, host_req):
    return {"Outputs": {"res": http_res(200, "hello")}, "Logs": [], "ReturnValue": None}


# What echo reports of the handler's environment (set by the host).
ENV_SEEN = ("FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_WORKER_RUNTIME", "WEBSITE_HOSTNAME",
            "AzureWebJobsStorage")


def echo(data, metadata, host_req):
    req = data.get("req") or {}
    seen = {k: req.get(k) for k in ("Url", "Method", "Query", "Headers", "Params", "Body")}
    env = {k: os.environ.get(k) for k in ENV_SEEN}
    body = json.dumps({"req": seen, "Metadata": metadata, "HostRequest": host_req,
                       "Env": env})
    return {"Outputs": {"res": http_res(200, body, "application/json")},
            "Logs": [], "ReturnValue": None}


def enqueue(data, metadata, host_req):
    body = as_text((data.get("req") or {}).get("Body"))
    return {"Outputs": {"res": http_res(200, "enqueued 2"), "out": [body, body + "!"]},
            "Logs": ["enqueued 2"], "ReturnValue": None}


def qfn(data, metadata, host_req):
    """"seen:<text>" on chresult; for a text starting with "meta", also the
    trigger Metadata as a second message "meta:<json>"."""
    text = as_text(data.get("item"))
    out = ["seen:" + text]
    if text.startswith("meta"):
        out.append("meta:" + json.dumps(metadata))
    return {"Outputs": {"result": out}, "Logs": [], "ReturnValue": None}


def die(data, metadata, host_req):
    os._exit(3)  # the handler process dies mid-invocation


FUNCTIONS = {"hello": hello, "echo": echo, "enqueue": enqueue, "qfn": qfn, "die": die}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffer each reply and send it in one write (flushed after every
    # request): status line and headers in one segment and the body in a
    # second one would wait ~40 ms per invocation for the host's delayed ACK
    # (Nagle) on the kept-alive connection.
    wbufsize = -1

    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/":
            self.reply(200, "ready", "text/plain")
        else:
            self.reply(404, "not found", "text/plain")

    def do_POST(self):
        body = self.read_body()
        fn = FUNCTIONS.get(self.path.split("?")[0].strip("/"))
        if fn is None:
            self.reply(404, "no such function", "text/plain")
            return
        try:
            payload = json.loads(body or b"{}")
            host_req = {"Method": self.command, "Path": self.path,
                        "Headers": {k: v for k, v in self.headers.items()},
                        "Pid": os.getpid()}
            answer = fn(payload.get("Data") or {}, payload.get("Metadata") or {}, host_req)
        except Exception as e:  # a broken invocation fails, the handler lives on
            self.reply(500, json.dumps({"error": repr(e)}))
            return
        self.reply(200, json.dumps(answer))

    def log_message(self, fmt, *args):
        pass  # the host logs invocations; keep stderr for real problems


def main():
    port = int(os.environ["FUNCTIONS_CUSTOMHANDLER_PORT"])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
