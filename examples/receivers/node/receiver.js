// A Learnomy webhook receiver for Node.js.
//
//   npm ci && LEARNOMY_WEBHOOK_SECRET=... PORT=8000 node receiver.js
//
// It checks X-Learnomy-Signature (HMAC-SHA256 of the raw body, lowercase hex) with
// crypto.timingSafeEqual, then the Standard Webhooks headers with the `standardwebhooks`
// package, configured with "whsec_" + base64(secret).
"use strict";
const crypto = require("node:crypto");
const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const secret = process.env.LEARNOMY_WEBHOOK_SECRET || "";
const standard = new Webhook("whsec_" + Buffer.from(secret).toString("base64"));

function learnomySignatureOk(rawBody, header) {
  const expected = crypto.createHmac("sha256", secret).update(rawBody).digest();
  const given = Buffer.from(String(header || "").trim(), "hex");
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const rawBody = Buffer.concat(chunks); // verify the raw bytes, before JSON.parse
      if (!learnomySignatureOk(rawBody, req.headers["x-learnomy-signature"])) {
        res.writeHead(401).end("X-Learnomy-Signature does not match");
        return;
      }
      let event;
      try {
        // Also checks webhook-timestamp is within 5 minutes (replay protection).
        event = standard.verify(rawBody.toString("utf8"), req.headers);
      } catch (e) {
        res.writeHead(401).end("Standard Webhooks signature does not match");
        return;
      }
      // Trusted. X-Learnomy-Delivery is stable across retries: use it to skip duplicates.
      console.log("learnomy", event.event, req.headers["x-learnomy-delivery"]);
      res.writeHead(204).end();
    });
  })
  .listen(Number(process.env.PORT || 8000), "127.0.0.1");
