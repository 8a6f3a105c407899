// A Learnomy webhook receiver for Node.js.
//
//   npm ci && LEARNOMY_WEBHOOK_SECRET=... PORT=8000 node receiver.js
//
// It checks X-Learnomy-Signature (HMAC-SHA256 of the raw body, lowercase hex) with
// crypto.timingSafeEqual, then the Standard Webhooks headers with the `standardwebhooks`
// package, configured with "whsec_" + base64(secret).
//
// Rotating the secret without a failed delivery: while a rotation's overlap runs, the service
// signs X-Learnomy-Signature with the previous secret, X-Learnomy-Signature-Next with the new
// one and webhook-signature with both. Put the new secret in LEARNOMY_WEBHOOK_SECRET_NEXT
// (either secret is then accepted), then move it to LEARNOMY_WEBHOOK_SECRET and drop the old one
// before the overlap ends.
"use strict";
const crypto = require("node:crypto");
const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const secrets = [process.env.LEARNOMY_WEBHOOK_SECRET, process.env.LEARNOMY_WEBHOOK_SECRET_NEXT].filter(
  (s) => s
);
const standard = secrets.map((s) => new Webhook("whsec_" + Buffer.from(s).toString("base64")));

function learnomySignatureOk(rawBody, headers) {
  const given = ["x-learnomy-signature", "x-learnomy-signature-next"]
    .map((name) => Buffer.from(String(headers[name] || "").trim(), "hex"))
    .filter((g) => g.length > 0);
  return secrets.some((secret) => {
    const expected = crypto.createHmac("sha256", secret).update(rawBody).digest();
    return given.some((g) => g.length === expected.length && crypto.timingSafeEqual(g, expected));
  });
}

// The event if a configured secret verifies the Standard Webhooks headers (this also checks
// webhook-timestamp is within 5 minutes: replay protection), else null.
function standardVerified(rawBody, headers) {
  for (const webhook of standard) {
    try {
      return webhook.verify(rawBody.toString("utf8"), headers);
    } catch (e) {
      // try the next secret
    }
  }
  return null;
}

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const rawBody = Buffer.concat(chunks); // verify the raw bytes, before JSON.parse
      if (!learnomySignatureOk(rawBody, req.headers)) {
        res.writeHead(401).end("X-Learnomy-Signature does not match");
        return;
      }
      const event = standardVerified(rawBody, req.headers);
      if (event === null) {
        res.writeHead(401).end("Standard Webhooks signature does not match");
        return;
      }
      // Trusted. X-Learnomy-Delivery is stable across retries: use it to skip duplicates.
      console.log("learnomy", event.event, req.headers["x-learnomy-delivery"]);
      res.writeHead(204).end();
    });
  })
  .listen(Number(process.env.PORT || 8000), "127.0.0.1");
