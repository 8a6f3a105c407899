<?php
// A Learnomy webhook receiver in plain PHP.
//
//   LEARNOMY_WEBHOOK_SECRET=... php -S 127.0.0.1:8000 receiver.php
//
// It checks X-Learnomy-Signature (HMAC-SHA256 of the raw body, lowercase hex) in constant time,
// then the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature), which
// add replay protection. Composer's standard-webhooks package does the second check too; this
// file does it by hand so it runs with nothing but php-cli.
//
// Rotating the secret without a failed delivery: while a rotation's overlap runs, the service
// signs X-Learnomy-Signature with the previous secret, X-Learnomy-Signature-Next with the new
// one and webhook-signature with both. Put the new secret in LEARNOMY_WEBHOOK_SECRET_NEXT
// (either secret is then accepted), then move it to LEARNOMY_WEBHOOK_SECRET and drop the old one
// before the overlap ends.

$secrets = array_values(array_filter(array(getenv('LEARNOMY_WEBHOOK_SECRET'), getenv('LEARNOMY_WEBHOOK_SECRET_NEXT'))));
$body = file_get_contents('php://input'); // the raw bytes: verify before any json_decode

function refuse(int $status, string $why): void
{
    http_response_code($status);
    header('Content-Type: text/plain');
    echo $why;
    exit;
}

// 1. The seed's scheme: HMAC-SHA256(secret, raw_body), compared in constant time (with either
//    signature header, during a rotation).
$given = array_filter(array(
    strtolower(trim($_SERVER['HTTP_X_LEARNOMY_SIGNATURE'] ?? '')),
    strtolower(trim($_SERVER['HTTP_X_LEARNOMY_SIGNATURE_NEXT'] ?? '')),
));
$matched = false;
foreach ($secrets as $secret) {
    $expected = hash_hmac('sha256', $body, $secret);
    foreach ($given as $candidate) {
        $matched = $matched || hash_equals($expected, $candidate);
    }
}
if (!$matched) {
    refuse(401, 'X-Learnomy-Signature does not match');
}

// 2. Standard Webhooks: v1,base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")).
$id = $_SERVER['HTTP_WEBHOOK_ID'] ?? '';
$timestamp = $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '';
if (!ctype_digit($timestamp) || abs(time() - (int) $timestamp) > 300) {
    refuse(401, 'webhook-timestamp is missing or more than 5 minutes off');
}
$matched = false;
foreach ($secrets as $secret) {
    $wanted = 'v1,' . base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $secret, true));
    foreach (explode(' ', $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '') as $candidate) {
        $matched = $matched || hash_equals($wanted, $candidate);
    }
}
if (!$matched) {
    refuse(401, 'webhook-signature does not match');
}

// 3. Trusted: handle it. X-Learnomy-Delivery is the same on every retry, so use it to ignore
//    a delivery you have already processed.
$event = json_decode($body, true);
error_log(sprintf('learnomy %s %s', $event['event'] ?? '?', $_SERVER['HTTP_X_LEARNOMY_DELIVERY'] ?? ''));
http_response_code(204);
