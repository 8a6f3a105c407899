<?php
// Runs the WordPress bridge outside WordPress, with the few WordPress functions it uses
// implemented on PHP streams, then fires a hook the way Learnomy does.
//   LEARNOMY_WEBHOOKS_URL=… LEARNOMY_WEBHOOKS_TOKEN=… php run.php

define('LEARNOMY_WEBHOOKS_STANDALONE', true);
define('LEARNOMY_WEBHOOKS_URL', getenv('LEARNOMY_WEBHOOKS_URL'));
define('LEARNOMY_WEBHOOKS_TOKEN', getenv('LEARNOMY_WEBHOOKS_TOKEN'));

$hooks = [];
function add_action($name, $callback, $priority = 10, $args = 1) { global $hooks; $hooks[$name][] = $callback; }
function do_action($name, ...$args) { global $hooks; foreach ($hooks[$name] ?? [] as $cb) { $cb(...$args); } }
function wp_json_encode($value) { return json_encode($value); }
function is_wp_error($thing) { return $thing instanceof WP_Error; }
class WP_Error { public $message; function __construct($m) { $this->message = $m; } }
function wp_remote_retrieve_response_code($r) { return $r['response']['code']; }
function wp_remote_retrieve_body($r) { return $r['body']; }
function wp_remote_post($url, $args) {
    $headers = '';
    foreach ($args['headers'] as $k => $v) { $headers .= "$k: $v\r\n"; }
    $context = stream_context_create(['http' => [
        'method' => 'POST', 'header' => $headers, 'content' => $args['body'],
        'timeout' => $args['timeout'], 'ignore_errors' => true,
    ]]);
    $body = @file_get_contents($url, false, $context);
    if ($body === false) { return new WP_Error('request failed'); }
    preg_match('#HTTP/\S+ (\d+)#', $http_response_header[0], $m);
    return ['response' => ['code' => (int) $m[1]], 'body' => $body];
}

require __DIR__ . '/../../examples/wordpress/learnomy-webhooks-bridge.php';

do_action('learnomy_course_completed', 9, 7, 42);
do_action('learnomy_course_completed', 9, 7, 42); // fired twice: the idempotency key dedupes
$again = learnomy_webhooks_emit('quiz_passed', ['attempt_id' => 1203, 'user_id' => 7, 'quiz_id' => 57, 'score' => 85]);
echo json_encode($again), "\n";
