<?php
/**
 * Plugin Name: Learnomy Webhooks Bridge
 * Description: Reports Learnomy LMS events to a learnomy-webhooks service, which delivers them
 *              to every subscribed webhook.
 *
 * Configure in wp-config.php:
 *   define('LEARNOMY_WEBHOOKS_URL', 'https://webhooks.example.org');
 *   define('LEARNOMY_WEBHOOKS_TOKEN', 'lwh_…'); // a token with scope events:write
 */

if (!defined('ABSPATH') && !defined('LEARNOMY_WEBHOOKS_STANDALONE')) {
    exit;
}

/**
 * POSTs one event to /api/v1/events. The idempotency key makes a retried request (a timeout,
 * a double-fired hook) create nothing new for 24 h.
 */
function learnomy_webhooks_emit(string $event, array $data, ?string $idempotency_key = null)
{
    $body = ['event' => $event, 'data' => (object) $data];
    if ($idempotency_key !== null) {
        $body['idempotency_key'] = $idempotency_key;
    }
    $response = wp_remote_post(rtrim(LEARNOMY_WEBHOOKS_URL, '/') . '/api/v1/events', [
        'headers' => [
            'Authorization' => 'Bearer ' . LEARNOMY_WEBHOOKS_TOKEN,
            'Content-Type' => 'application/json',
        ],
        'body' => wp_json_encode($body),
        'timeout' => 5,
    ]);
    if (is_wp_error($response) || wp_remote_retrieve_response_code($response) !== 202) {
        error_log('learnomy-webhooks: could not report ' . $event);
        return false;
    }
    return json_decode(wp_remote_retrieve_body($response), true)['data'] ?? false;
}

add_action('learnomy_student_enrolled', function ($enrollment_id, $user_id, $course_id) {
    learnomy_webhooks_emit('student_enrolled', compact('enrollment_id', 'user_id', 'course_id'), "student_enrolled-$enrollment_id");
}, 10, 3);

add_action('learnomy_course_completed', function ($enrollment_id, $user_id, $course_id) {
    learnomy_webhooks_emit('course_completed', compact('enrollment_id', 'user_id', 'course_id'), "course_completed-$enrollment_id");
}, 10, 3);

add_action('learnomy_quiz_passed', function ($attempt_id, $user_id, $quiz_id, $score) {
    learnomy_webhooks_emit('quiz_passed', compact('attempt_id', 'user_id', 'quiz_id', 'score'), "quiz_passed-$attempt_id");
}, 10, 4);

add_action('learnomy_certificate_issued', function ($certificate_id, $user_id, $course_id) {
    learnomy_webhooks_emit('certificate_issued', compact('certificate_id', 'user_id', 'course_id'), "certificate_issued-$certificate_id");
}, 10, 3);

add_action('learnomy_order_completed', function ($order_id, $user_id) {
    learnomy_webhooks_emit('order_completed', compact('order_id', 'user_id'), "order_completed-$order_id");
}, 10, 2);
