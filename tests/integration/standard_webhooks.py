"""A web hook receiver on 127.0.0.1 that checks psdock's requests with the
Standard Webhooks reference library for Python, as a receiver would.

    python3 standard_webhooks.py SECRET COUNT

Prints `port N`, then one JSON line per request: what the library made of it.
After COUNT requests it replays the first one as an attacker who captured it
would, prints what the library made of each replay, and exits. Answers 204 to
a request the library accepts and 401 to one it rejects.
"""

import datetime
import http.server
import json
import sys
import threading

import standardwebhooks
import standardwebhooks.webhooks


def webhook(secret):
    # The library reads a str as the specification's base64 key (after an
    # optional whsec_), and takes bytes as the key itself: psdock signs with
    # a secret without whsec_ as its bytes.
    if secret.startswith("whsec_"):
        return standardwebhooks.Webhook(secret)
    return standardwebhooks.Webhook(secret.encode())


def verdict(hook, body, headers):
    try:
        hook.verify(body, headers)
        return "accepted"
    except standardwebhooks.webhooks.WebhookVerificationError as e:
        return "rejected: " + str(e)


class Later(datetime.datetime):
    """The library's clock, six minutes on: past its five minutes' tolerance."""

    @classmethod
    def now(cls, tz=None):
        return datetime.datetime.now(tz) + datetime.timedelta(minutes=6)


def replays(hook, first):
    body, headers = first
    out = {"replayed_later": None, "restamped": None, "tampered": None}
    # The same request, sent again once its time has passed.
    standardwebhooks.webhooks.datetime = Later
    try:
        out["replayed_later"] = verdict(hook, body, headers)
    finally:
        standardwebhooks.webhooks.datetime = datetime.datetime
    # ... with its timestamp made fresh: the signature covers it.
    restamped = dict(headers)
    restamped["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 360)
    standardwebhooks.webhooks.datetime = Later
    try:
        out["restamped"] = verdict(hook, body, restamped)
    finally:
        standardwebhooks.webhooks.datetime = datetime.datetime
    # ... or with another body.
    out["tampered"] = verdict(hook, body.replace(b'"status":"', b'"status":"x'), headers)
    return out


def main():
    secret, count = sys.argv[1], int(sys.argv[2])
    hook = webhook(secret)
    seen = []
    done = threading.Event()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            result = verdict(hook, body, headers)
            self.send_response(204 if result == "accepted" else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with lock:
                seen.append((body, headers))
                line = {
                    "verdict": result,
                    "status": json.loads(body)["ps"]["status"],
                    "id": headers.get("webhook-id"),
                    "timestamp": headers.get("webhook-timestamp"),
                    "x-psdock-signature": headers.get("x-psdock-signature"),
                }
                print(json.dumps(line), flush=True)
                if len(seen) == count:
                    done.set()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("port", server.server_address[1], flush=True)
    if not done.wait(30):
        print(json.dumps({"error": "timed out", "seen": len(seen)}), flush=True)
        sys.exit(1)
    print(json.dumps(replays(hook, seen[0])), flush=True)


main()
