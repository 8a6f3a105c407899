"""A Learnomy webhook receiver in Python (standard library + the standardwebhooks package).

    pip install standardwebhooks
    LEARNOMY_WEBHOOK_SECRET=... PORT=8000 python3 receiver.py

It checks X-Learnomy-Signature (HMAC-SHA256 of the raw body, lowercase hex) with
hmac.compare_digest, then the Standard Webhooks headers with the standardwebhooks package,
configured with "whsec_" + base64(secret).

Rotating the secret without a failed delivery: while a rotation's overlap runs, the service
signs X-Learnomy-Signature with the previous secret, X-Learnomy-Signature-Next with the new one
and webhook-signature with both. Put the new secret in LEARNOMY_WEBHOOK_SECRET_NEXT (either
secret is then accepted), then move it to LEARNOMY_WEBHOOK_SECRET and drop the old one before
the overlap ends.
"""

import base64
import hashlib
import hmac
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook

SECRETS = [
    s
    for s in (
        os.environ.get("LEARNOMY_WEBHOOK_SECRET", ""),
        os.environ.get("LEARNOMY_WEBHOOK_SECRET_NEXT", ""),
    )
    if s
]
STANDARD = [Webhook("whsec_" + base64.b64encode(s.encode()).decode()) for s in SECRETS]


def learnomy_signature_ok(raw_body: bytes, headers) -> bool:
    given = [
        (headers.get(name) or "").strip().lower()
        for name in ("X-Learnomy-Signature", "X-Learnomy-Signature-Next")
    ]
    for secret in SECRETS:
        expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, g) for g in given if g):
            return True
    return False


def standard_signature_ok(raw_body: bytes, headers) -> bool:
    for webhook in STANDARD:
        try:
            # Also checks webhook-timestamp is within 5 minutes (replay protection).
            webhook.verify(raw_body, headers)
            return True
        except Exception:
            pass
    return False


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw_body = self.rfile.read(length)  # verify the raw bytes, before json.loads
        if not learnomy_signature_ok(raw_body, self.headers):
            return self.answer(401, b"X-Learnomy-Signature does not match")
        if not standard_signature_ok(raw_body, {k.lower(): v for k, v in self.headers.items()}):
            return self.answer(401, b"Standard Webhooks signature does not match")
        event = json.loads(raw_body)
        # Trusted. X-Learnomy-Delivery is stable across retries: use it to skip duplicates.
        print("learnomy", event["event"], self.headers.get("X-Learnomy-Delivery"), flush=True)
        self.answer(204, b"")

    def answer(self, status: int, body: bytes):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver).serve_forever()
