<?php
/**
 * Plugin Name: Learnomy test hooks (test only)
 * Description: Lets the test suite fire Learnomy hooks, create fixtures, flush the Learnomy Webhooks outbox and read its state over HTTP. Active only when LRN_TEST_HOOKS_KEY is defined; never install it on a real site.
 *
 * Requests (all answer JSON and exit; `key` must equal LRN_TEST_HOOKS_KEY):
 *   POST /?lrn_test=fire&key=K      {"extra_slugs":[…] or {slug:[arg names]} (optional),
 *                                   "max_rows": N (optional: the outbox cap for this request),
 *                                    "calls":[{"hook":"learnomy_course_completed","args":[9,7,42]}]}
 *                                    → {"fired":N}
 *   POST /?lrn_test=fixtures&key=K  {"users":[{"login","email","display_name","role"?,"password"?}],"posts":[{"title","type"}]}
 *                                    (role defaults to subscriber, password to a random one)
 *                                    → {"users":[ids],"posts":[ids]}
 *   GET  /?lrn_test=flush&key=K     → {"sent":N,"refused":N,"pending":N,"error":string|null}
 *   GET  /?lrn_test=state&key=K     → {"outbox_pending","outbox_refused","refused":[{event,reason}],"dropped",
 *                                      "cron_next","options":[…],"tables":[…]}
 *   GET  /?lrn_test=uninstall&key=K → deactivates and uninstalls learnomy-webhooks, then the state.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

if ( ! defined( 'LRN_TEST_HOOKS_KEY' ) || '' === (string) LRN_TEST_HOOKS_KEY ) {
	return;
}

/**
 * Whether this request is an authenticated test request (optionally of one action).
 *
 * @param string|null $action The lrn_test action, or null for any.
 * @return bool
 */
function lrn_test_hooks_request( $action = null ) {
	// phpcs:disable WordPress.Security.NonceVerification.Recommended -- authenticated by the shared key.
	if ( ! isset( $_GET['lrn_test'], $_GET['key'] ) || ! is_string( $_GET['lrn_test'] ) || ! is_string( $_GET['key'] ) ) {
		return false;
	}
	if ( ! hash_equals( (string) LRN_TEST_HOOKS_KEY, wp_unslash( $_GET['key'] ) ) ) {
		return false;
	}
	return null === $action || $action === $_GET['lrn_test'];
	// phpcs:enable
}

/**
 * The request's JSON body as an array.
 *
 * @return array
 */
function lrn_test_hooks_body() {
	static $body = null;
	if ( null === $body ) {
		$decoded = json_decode( (string) file_get_contents( 'php://input' ), true );
		$body    = is_array( $decoded ) ? $decoded : array();
	}
	return $body;
}

/**
 * Answers JSON and ends the request (the shutdown action still runs).
 *
 * @param mixed $value  The answer.
 * @param int   $status HTTP status.
 */
function lrn_test_hooks_answer( $value, $status = 200 ) {
	status_header( $status );
	header( 'Content-Type: application/json; charset=utf-8' );
	header( 'Cache-Control: no-store' );
	echo wp_json_encode( $value );
	exit;
}

/**
 * The state of the Learnomy Webhooks plugin's data, read straight from the database.
 *
 * @return array
 */
function lrn_test_hooks_state() {
	global $wpdb;
	$table  = $wpdb->prefix . 'lrn_webhooks_outbox';
	$exists = $wpdb->get_var( $wpdb->prepare( 'SHOW TABLES LIKE %s', $wpdb->esc_like( $table ) ) ) === $table;
	$state  = array(
		'outbox_pending' => 0,
		'outbox_refused' => 0,
		'refused'        => array(),
		'dropped'        => (int) $wpdb->get_var( $wpdb->prepare( "SELECT option_value FROM {$wpdb->options} WHERE option_name = %s", 'lrn_webhooks_dropped' ) ),
		'cron_next'      => null,
		'options'        => array(),
		'tables'         => array(),
	);
	if ( $exists ) {
		$state['outbox_pending'] = (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$table} WHERE status = 'pending'" );
		$state['outbox_refused'] = (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$table} WHERE status = 'refused'" );
		$rows                    = $wpdb->get_results( "SELECT event, reason FROM {$table} WHERE status = 'refused' ORDER BY id ASC", ARRAY_A );
		foreach ( (array) $rows as $row ) {
			$state['refused'][] = array(
				'event'  => $row['event'],
				'reason' => $row['reason'],
			);
		}
	}
	// The cron array as stored (not a cached copy).
	$cron = maybe_unserialize( $wpdb->get_var( $wpdb->prepare( "SELECT option_value FROM {$wpdb->options} WHERE option_name = %s", 'cron' ) ) );
	if ( is_array( $cron ) ) {
		foreach ( $cron as $timestamp => $hooks ) {
			if ( is_array( $hooks ) && isset( $hooks['lrn_webhooks_flush'] ) ) {
				$state['cron_next'] = null === $state['cron_next'] ? (int) $timestamp : min( $state['cron_next'], (int) $timestamp );
			}
		}
	}
	$state['now']        = time();
	$state['doing_cron'] = get_transient( 'doing_cron' );
	$state['last_error'] = get_option( 'lrn_webhooks_last_error', null );
	$state['backoff']    = get_option( 'lrn_webhooks_backoff', null );
	$state['options'] = array_values( (array) $wpdb->get_col( $wpdb->prepare( "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE %s ORDER BY option_name", '%' . $wpdb->esc_like( 'lrn_webhooks' ) . '%' ) ) );
	$state['tables']  = array_values( (array) $wpdb->get_col( $wpdb->prepare( 'SHOW TABLES LIKE %s', $wpdb->esc_like( $wpdb->prefix . 'lrn_webhooks' ) . '%' ) ) );
	return $state;
}

// The test site never calls out: WordPress's update checks (to api.wordpress.org, which
// WP_HTTP_BLOCK_EXTERNAL refuses anyway, logging a PHP warning each time) are switched off,
// on admin pages and in WP-Cron alike.
foreach ( array(
	array( 'admin_init', '_maybe_update_core' ),
	array( 'admin_init', '_maybe_update_plugins' ),
	array( 'admin_init', '_maybe_update_themes' ),
	array( 'wp_version_check', 'wp_version_check' ),
	array( 'wp_update_plugins', 'wp_update_plugins' ),
	array( 'wp_update_themes', 'wp_update_themes' ),
	array( 'wp_maybe_auto_update', 'wp_maybe_auto_update' ),
	array( 'init', 'wp_schedule_update_checks' ),
	array( 'load-plugins.php', 'wp_update_plugins' ),
	array( 'load-update.php', 'wp_update_plugins' ),
	array( 'load-update-core.php', 'wp_update_plugins' ),
	array( 'load-themes.php', 'wp_update_themes' ),
	array( 'load-update.php', 'wp_update_themes' ),
	array( 'load-update-core.php', 'wp_update_themes' ),
) as $lrn_test_hooks_off ) {
	remove_action( $lrn_test_hooks_off[0], $lrn_test_hooks_off[1] );
}
unset( $lrn_test_hooks_off );

// With Debian's wordpress-l10n installed (a Recommends of wordpress), the login page's language
// menu and Settings > General ask api.wordpress.org for the list of translations; refused by
// WP_HTTP_BLOCK_EXTERNAL, each ask logs a PHP warning. The installed languages are all the test
// site needs, so the list is answered here, with no request.
add_filter(
	'translations_api',
	static function ( $result, $type ) {
		return 'core' === $type ? array( 'translations' => array() ) : $result;
	},
	10,
	2
);

// WordPress 6.1's wp-login.php calls wp_signon() on every visit, also a plain GET of the login
// form, and wp_authenticate() then hands null to sanitize_user() and trim(): PHP 8.1+ logs two
// deprecations per visit. The tests sign a browser in through that form and require an empty
// debug log, so the missing credentials become '' here (the wp_authenticate action passes them
// by reference), which is what older PHP did with the nulls anyway.
add_action(
	'wp_authenticate',
	static function ( &$user_login, &$user_password ) {
		if ( null === $user_login ) {
			$user_login = '';
		}
		if ( null === $user_password ) {
			$user_password = '';
		}
	},
	0,
	2
);

// Extra slugs for learnomy_pro_webhooks_event_slugs come with the fire request; the plugin applies
// the filter once at init (priority 0), before this plugin answers (priority 1).
if ( lrn_test_hooks_request( 'fire' ) ) {
	$lrn_test_hooks_body = lrn_test_hooks_body();
	// "max_rows": the outbox cap for this request (learnomy_webhooks_outbox_max_rows).
	if ( isset( $lrn_test_hooks_body['max_rows'] ) && is_int( $lrn_test_hooks_body['max_rows'] ) ) {
		$lrn_test_hooks_cap = $lrn_test_hooks_body['max_rows'];
		add_filter(
			'learnomy_webhooks_outbox_max_rows',
			static function () use ( $lrn_test_hooks_cap ) {
				return $lrn_test_hooks_cap;
			}
		);
	}
	if ( isset( $lrn_test_hooks_body['extra_slugs'] ) && is_array( $lrn_test_hooks_body['extra_slugs'] ) ) {
		$lrn_test_hooks_extra = $lrn_test_hooks_body['extra_slugs'];
		add_filter(
			'learnomy_pro_webhooks_event_slugs',
			static function ( $slugs ) use ( $lrn_test_hooks_extra ) {
				return array_merge( is_array( $slugs ) ? $slugs : array(), $lrn_test_hooks_extra );
			}
		);
	}
}

add_action(
	'init',
	static function () {
		foreach ( array(
			'lrn_course' => 'Courses',
			'lrn_lesson' => 'Lessons',
			'lrn_quiz'   => 'Quizzes',
			'lrn_path'   => 'Learning paths',
		) as $type => $label ) {
			register_post_type(
				$type,
				array(
					'label'   => $label,
					'public'  => true,
					'rewrite' => array( 'slug' => str_replace( 'lrn_', '', $type ) ),
				)
			);
		}
	},
	0
);

add_action(
	'init',
	static function () {
		if ( ! lrn_test_hooks_request() ) {
			return;
		}
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- checked above.
		$action = sanitize_key( wp_unslash( $_GET['lrn_test'] ) );
		$body   = lrn_test_hooks_body();

		switch ( $action ) {
			case 'fire':
				$fired = 0;
				$calls = isset( $body['calls'] ) && is_array( $body['calls'] ) ? $body['calls'] : array();
				foreach ( $calls as $call ) {
					if ( ! is_array( $call ) || ! isset( $call['hook'] ) || ! is_string( $call['hook'] ) ) {
						continue;
					}
					$args = isset( $call['args'] ) && is_array( $call['args'] ) ? array_values( $call['args'] ) : array();
					do_action( $call['hook'], ...$args );
					++$fired;
				}
				lrn_test_hooks_answer( array( 'fired' => $fired ) );
				break;

			case 'fixtures':
				$users = array();
				foreach ( isset( $body['users'] ) && is_array( $body['users'] ) ? $body['users'] : array() as $user ) {
					$login = isset( $user['login'] ) ? (string) $user['login'] : 'user' . wp_rand();
					$id    = wp_insert_user(
						array(
							'user_login'   => $login,
							'user_email'   => isset( $user['email'] ) ? (string) $user['email'] : $login . '@example.com',
							'display_name' => isset( $user['display_name'] ) ? (string) $user['display_name'] : $login,
							'user_pass'    => isset( $user['password'] ) ? (string) $user['password'] : wp_generate_password( 24 ),
							'role'         => isset( $user['role'] ) ? sanitize_key( (string) $user['role'] ) : 'subscriber',
						)
					);
					if ( is_wp_error( $id ) ) {
						lrn_test_hooks_answer( array( 'error' => $id->get_error_message() ), 400 );
					}
					$users[] = (int) $id;
				}
				$posts = array();
				foreach ( isset( $body['posts'] ) && is_array( $body['posts'] ) ? $body['posts'] : array() as $post ) {
					$id = wp_insert_post(
						array(
							'post_title'  => isset( $post['title'] ) ? (string) $post['title'] : 'Untitled',
							'post_type'   => isset( $post['type'] ) ? (string) $post['type'] : 'post',
							'post_status' => 'publish',
						),
						true
					);
					if ( is_wp_error( $id ) ) {
						lrn_test_hooks_answer( array( 'error' => $id->get_error_message() ), 400 );
					}
					$posts[] = (int) $id;
				}
				lrn_test_hooks_answer(
					array(
						'users' => $users,
						'posts' => $posts,
					)
				);
				break;

			case 'flush':
				if ( ! function_exists( 'learnomy_webhooks_flush' ) ) {
					lrn_test_hooks_answer( array( 'error' => 'learnomy-webhooks is not active' ), 409 );
				}
				lrn_test_hooks_answer( learnomy_webhooks_flush() );
				break;

			case 'state':
				lrn_test_hooks_answer( lrn_test_hooks_state() );
				break;

			case 'uninstall':
				require_once ABSPATH . 'wp-admin/includes/plugin.php';
				require_once ABSPATH . 'wp-admin/includes/file.php';
				$plugin = 'learnomy-webhooks/learnomy-webhooks.php';
				deactivate_plugins( $plugin ); // Not silent: runs the deactivation hook.
				uninstall_plugin( $plugin );
				lrn_test_hooks_answer( lrn_test_hooks_state() );
				break;

			default:
				lrn_test_hooks_answer( array( 'error' => 'unknown lrn_test action' ), 400 );
		}
	},
	1
);
