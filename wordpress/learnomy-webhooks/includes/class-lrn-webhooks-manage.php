<?php
/**
 * Learnomy Settings > Webhooks: the usage counter, the Add New Webhook form (or the Pro notice),
 * the webhooks table and its actions, through the service's API.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * The webhooks part of the plugin's page, its admin-post actions and its admin-ajax Test.
 * Everything works without JavaScript; assets/admin.js adds Copy, Regenerate, Select all, the
 * confirmation prompts and the Test outcome without a reload.
 */
class Learnomy_Webhooks_Manage {

	/** URLs longer than this are cut in the table (the full URL is in the tooltip). */
	const URL_SHOWN = 60;

	/** A webhook with more events than this lists them on demand. */
	const BADGES_SHOWN = 4;

	/** Seconds the form state and Test outcomes wait for the next page view. */
	const STATE_TTL = 300;

	/** The characters of a generated secret key. */
	const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

	/**
	 * Registers the admin-post and admin-ajax actions.
	 */
	public static function register() {
		foreach ( array( 'add', 'update', 'test', 'status', 'delete' ) as $action ) {
			add_action( 'admin_post_lrn_webhooks_' . $action, array( __CLASS__, 'handle_' . $action ) );
		}
		add_action( 'wp_ajax_lrn_webhooks_test', array( __CLASS__, 'ajax_test' ) );
		add_action( 'wp_ajax_lrn_webhooks_preview', array( __CLASS__, 'ajax_preview' ) );
	}

	/**
	 * The body formats the service offers, by name, with their labels.
	 *
	 * @return array
	 */
	public static function formats() {
		return array(
			'learnomy'    => __( 'Learnomy JSON (signed payload)', 'learnomy-webhooks' ),
			'slack'       => __( 'Slack', 'learnomy-webhooks' ),
			'discord'     => __( 'Discord', 'learnomy-webhooks' ),
			'teams'       => __( 'Microsoft Teams', 'learnomy-webhooks' ),
			'google_chat' => __( 'Google Chat', 'learnomy-webhooks' ),
			'template'    => __( 'Custom template', 'learnomy-webhooks' ),
		);
	}

	/**
	 * The format of the POST body: a known name, else the Learnomy payload.
	 *
	 * @return string
	 */
	private static function posted_format() {
		$format = self::posted( 'format' );
		return array_key_exists( $format, self::formats() ) ? $format : 'learnomy';
	}

	/**
	 * The delivery orders the service offers, by name, with their labels.
	 *
	 * @return array<string,string>
	 */
	public static function orderings() {
		return array(
			'none'   => __( 'No order (fastest)', 'learnomy-webhooks' ),
			'by_key' => __( 'In order per learner', 'learnomy-webhooks' ),
		);
	}

	/**
	 * The delivery order posted: a known name, else none.
	 *
	 * @return string
	 */
	private static function posted_ordering() {
		$ordering = self::posted( 'ordering' );
		return array_key_exists( $ordering, self::orderings() ) ? $ordering : 'none';
	}

	/**
	 * The template of the POST body, as typed (line breaks and quotes kept: the service checks
	 * it and answers what is wrong, with the line).
	 *
	 * @return string
	 */
	private static function posted_template() {
		// phpcs:disable WordPress.Security.NonceVerification.Missing,WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- checked by the guard; a template must reach the service as typed (sanitize_textarea_field would drop tags), which validates it and inserts values as JSON.
		if ( ! isset( $_POST['template'] ) || ! is_string( $_POST['template'] ) ) {
			return '';
		}
		return substr( str_replace( "\0", '', wp_unslash( $_POST['template'] ) ), 0, 16384 );
		// phpcs:enable
	}

	/**
	 * The body preview (admin-ajax): what the chosen format sends for an event's example data.
	 */
	public static function ajax_preview() {
		self::ajax_guard( 'lrn_webhooks_preview' );
		$event = self::posted( 'event' );
		if ( ! preg_match( '/^[a-z][a-z0-9_]{0,63}$/', $event ) ) {
			$event = 'course_completed';
		}
		$body = Learnomy_Webhooks_Api::preview( self::posted_format(), self::posted_template(), $event );
		if ( is_wp_error( $body ) ) {
			wp_send_json_error( array( 'text' => self::preview_error( $body ) ), 200 );
		}
		wp_send_json_success( array( 'text' => $body ) );
	}

	/**
	 * Why a preview cannot be shown, in the words of the service.
	 *
	 * @param WP_Error $error The API's error.
	 * @return string
	 */
	private static function preview_error( $error ) {
		$lines = array();
		foreach ( Learnomy_Webhooks_Api::field_errors( $error ) as $problem ) {
			/* translators: 1: the field (format, template), 2: what is wrong */
			$lines[] = sprintf( __( 'The %1$s cannot be used: %2$s', 'learnomy-webhooks' ), $problem['field'], $problem['message'] );
		}
		return $lines ? implode( "\n", $lines ) : $error->get_error_message();
	}

	/**
	 * A fresh secret key: 32 characters of [A-Za-z0-9] from PHP's CSPRNG.
	 *
	 * @return string
	 */
	public static function generate_secret() {
		$max    = strlen( self::SECRET_ALPHABET ) - 1;
		$secret = '';
		for ( $i = 0; $i < 32; $i++ ) {
			$secret .= self::SECRET_ALPHABET[ random_int( 0, $max ) ];
		}
		return $secret;
	}

	/**
	 * The plugin's page with query arguments.
	 *
	 * @param array  $args     Query arguments.
	 * @param string $fragment Fragment without '#', or ''.
	 * @return string
	 */
	public static function url( $args = array(), $fragment = '' ) {
		$url = add_query_arg( array_map( 'rawurlencode', $args ), Learnomy_Webhooks_Admin::page_url() );
		return '' === $fragment ? $url : $url . '#' . $fragment;
	}

	/**
	 * A string from the query string ('' when absent).
	 *
	 * @param string $name Parameter name.
	 * @return string
	 */
	public static function query_arg( $name ) {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only view parameters, validated by the caller.
		return isset( $_GET[ $name ] ) && is_string( $_GET[ $name ] ) ? sanitize_text_field( wp_unslash( $_GET[ $name ] ) ) : '';
	}

	/**
	 * A string from the POST body ('' when absent), unslashed, control characters removed.
	 *
	 * @param string $name Field name.
	 * @return string
	 */
	private static function posted( $name ) {
		// phpcs:disable WordPress.Security.NonceVerification.Missing,WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- checked by the guard; URLs and secrets must reach the service as typed (sanitize_text_field would drop "%xx" runs), and it validates them.
		if ( ! isset( $_POST[ $name ] ) || ! is_string( $_POST[ $name ] ) ) {
			return '';
		}
		return trim( (string) preg_replace( '/[\x00-\x1F\x7F]/', '', wp_unslash( $_POST[ $name ] ) ) );
		// phpcs:enable
	}

	/**
	 * The event slugs of the POST body.
	 *
	 * @return array
	 */
	private static function posted_events() {
		// phpcs:ignore WordPress.Security.NonceVerification.Missing,WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- checked by the guard; each value is matched against the slug pattern below.
		$raw    = isset( $_POST['events'] ) && is_array( $_POST['events'] ) ? wp_unslash( $_POST['events'] ) : array();
		$events = array();
		foreach ( $raw as $slug ) {
			if ( is_string( $slug ) && preg_match( '/^[a-z][a-z0-9_]{0,63}$/', $slug ) ) {
				$events[] = $slug;
			}
		}
		return array_values( array_unique( $events ) );
	}

	/**
	 * The webhook id of the POST body ('' when absent or malformed).
	 *
	 * @return string
	 */
	private static function posted_id() {
		$id = self::posted( 'id' );
		return Learnomy_Webhooks_Api::is_webhook_id( $id ) ? $id : '';
	}

	/**
	 * Stops an admin-ajax handler unless the user may manage options and the nonce is right.
	 *
	 * @param string $action The nonce action.
	 */
	private static function ajax_guard( $action ) {
		if ( ! current_user_can( Learnomy_Webhooks_Admin::CAP ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage Learnomy Webhooks.', 'learnomy-webhooks' ), 403 );
		}
		check_ajax_referer( $action );
	}

	/**
	 * A per-user transient's name.
	 *
	 * @param string $what 'form' or 'tests'.
	 * @return string
	 */
	private static function state_key( $what ) {
		return 'lrn_webhooks_' . $what . '_' . get_current_user_id();
	}

	/**
	 * Keeps what the form sent (never the secret) and the errors for the next page view.
	 *
	 * @param array $state mode, id, url, events, errors (field => message), general.
	 */
	private static function keep_form( $state ) {
		set_transient( self::state_key( 'form' ), $state, self::STATE_TTL );
	}

	/**
	 * The form state kept for this page view (and forgets it), if it matches the form shown.
	 *
	 * @param string $mode 'add' or 'edit'.
	 * @param string $id   The webhook being edited ('' when adding).
	 * @return array|null
	 */
	private static function take_form( $mode, $id ) {
		$key   = self::state_key( 'form' );
		$state = get_transient( $key );
		if ( ! is_array( $state ) ) {
			return null;
		}
		delete_transient( $key );
		$state_mode = isset( $state['mode'] ) ? $state['mode'] : '';
		$state_id   = isset( $state['id'] ) ? $state['id'] : '';
		if ( $state_mode !== $mode || $state_id !== $id ) {
			return null;
		}
		return array(
			'url'      => isset( $state['url'] ) && is_string( $state['url'] ) ? $state['url'] : '',
			'events'   => isset( $state['events'] ) && is_array( $state['events'] ) ? $state['events'] : array(),
			'format'   => isset( $state['format'] ) && is_string( $state['format'] ) ? $state['format'] : 'learnomy',
			'template' => isset( $state['template'] ) && is_string( $state['template'] ) ? $state['template'] : '',
			'ordering' => isset( $state['ordering'] ) && is_string( $state['ordering'] ) ? $state['ordering'] : 'none',
			'errors'   => isset( $state['errors'] ) && is_array( $state['errors'] ) ? $state['errors'] : array(),
			'general'  => isset( $state['general'] ) && is_string( $state['general'] ) ? $state['general'] : '',
		);
	}

	/**
	 * The service's problems sorted by the field they are about: url, events, secret, or general.
	 *
	 * @param WP_Error $error An error of the API.
	 * @return array{errors:array,general:string}
	 */
	private static function sort_errors( $error ) {
		$errors  = array();
		$general = array();
		$code    = Learnomy_Webhooks_Api::problem_code( $error );
		foreach ( Learnomy_Webhooks_Api::field_errors( $error ) as $problem ) {
			$field   = $problem['field'];
			$message = $problem['message'];
			if ( 'url' === $field ) {
				if ( 'url_not_allowed' === $code ) {
					/* translators: %s: why the service refuses the URL, e.g. "10.0.0.1 is in a blocked range: 10.0.0.0/8 (private network)" */
					$text = sprintf( __( 'This URL is not allowed: %s. Private IP addresses, localhost and reserved ranges are rejected (SSRF protection).', 'learnomy-webhooks' ), rtrim( $message, '.' ) );
				} else {
					/* translators: %s: what is wrong with the URL, e.g. "must use https://" */
					$text = sprintf( __( 'The delivery URL %s.', 'learnomy-webhooks' ), rtrim( $message, '.' ) );
				}
				$key = 'url';
			} elseif ( 0 === strpos( $field, 'events' ) ) {
				$key  = 'events';
				$text = 'events' === $field ? ucfirst( rtrim( $message, '.' ) ) . '.' : sprintf(
					/* translators: %s: what is wrong with an event, e.g. "\"nope\" is not an event of the catalogue" */
					__( 'Events: %s.', 'learnomy-webhooks' ),
					rtrim( $message, '.' )
				);
			} elseif ( 'ordering' === $field ) {
				$key  = 'ordering';
				$text = ucfirst( rtrim( $message, '.' ) ) . '.';
			} elseif ( 'format' === $field || 'template' === $field ) {
				$key = $field;
				/* translators: %s: what is wrong, e.g. "line 2: unexpected end of input" */
				$text = 'template' === $field ? sprintf( __( 'The template cannot be used: %s', 'learnomy-webhooks' ), $message ) : ucfirst( $message );
			} elseif ( 'secret' === $field ) {
				$key = 'secret';
				/* translators: %s: what is wrong with the key, e.g. "must be between 16 and 128 characters long" */
				$text = sprintf( __( 'The secret key %s. A new key has been filled in.', 'learnomy-webhooks' ), rtrim( $message, '.' ) );
			} else {
				$general[] = $field . ': ' . $message;
				continue;
			}
			$errors[ $key ] = isset( $errors[ $key ] ) ? $errors[ $key ] . ' ' . $text : $text;
		}
		if ( ! $errors && ! $general ) {
			if ( 'url_not_allowed' === $code ) {
				/* translators: %s: why the service refuses the URL */
				$errors['url'] = sprintf( __( 'This URL is not allowed: %s', 'learnomy-webhooks' ), $error->get_error_message() );
			} else {
				$general[] = $error->get_error_message();
			}
		}
		return array(
			'errors'  => $errors,
			'general' => implode( ' ', $general ),
		);
	}

	/**
	 * Add Webhook: creates the webhook with the form's secret, then back to the page (the new
	 * row is in the table). On a problem, back to the form with the errors beside the fields.
	 */
	public static function handle_add() {
		Learnomy_Webhooks_Admin::guard( 'lrn_webhooks_add' );
		$url    = self::posted( 'url' );
		$events = self::posted_events();
		$secret = self::posted( 'secret' );
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked by the guard.
		if ( ! empty( $_POST['select_all'] ) ) {
			$catalogue = Learnomy_Webhooks_Api::catalogue();
			if ( ! is_wp_error( $catalogue ) ) {
				$events = wp_list_pluck( $catalogue, 'slug' );
			}
		}
		$state = array(
			'mode'     => 'add',
			'id'       => '',
			'url'      => substr( $url, 0, 4096 ),
			'events'   => $events,
			'format'   => self::posted_format(),
			'template' => self::posted_template(),
			'ordering' => self::posted_ordering(),
			'errors'   => array(),
			'general'  => '',
		);
		if ( '' === $secret ) {
			$state['errors']['secret'] = __( 'The secret key is empty. A new key has been filled in: copy it, then click Add Webhook again.', 'learnomy-webhooks' );
			self::keep_form( $state );
			self::redirect( self::url( array(), 'lrn-webhooks-form-panel' ) );
		}
		$created = Learnomy_Webhooks_Api::create( $url, $events, $secret, $state['format'], $state['template'], $state['ordering'] );
		if ( is_wp_error( $created ) ) {
			if ( 'plan_limit_reached' === Learnomy_Webhooks_Api::problem_code( $created ) ) {
				Learnomy_Webhooks_Admin::flash( 'error', $created->get_error_message() . ' ' . __( 'Upgrade to Learnomy Pro for unlimited webhooks.', 'learnomy-webhooks' ) );
				self::redirect( self::url() );
			}
			$sorted           = self::sort_errors( $created );
			$state['errors']  = $sorted['errors'];
			$state['general'] = $sorted['general'];
			self::keep_form( $state );
			self::redirect( self::url( array(), 'lrn-webhooks-form-panel' ) );
		}
		$id = isset( $created['id'] ) && is_string( $created['id'] ) ? $created['id'] : '';
		Learnomy_Webhooks_Admin::flash(
			'success',
			sprintf(
				/* translators: %s: the delivery URL */
				__( 'Webhook added: events are sent to %s from now on. Keep the secret key you copied; it is not shown again.', 'learnomy-webhooks' ),
				$url
			)
		);
		self::redirect( self::url( array(), Learnomy_Webhooks_Api::is_webhook_id( $id ) ? 'lrn-webhook-' . $id : '' ) );
	}

	/**
	 * Save Changes on the Edit form: URL and events; the secret is preserved (not sent).
	 */
	public static function handle_update() {
		$id = self::posted_id();
		Learnomy_Webhooks_Admin::guard( 'lrn_webhooks_update_' . $id );
		if ( '' === $id ) {
			self::redirect( self::url() );
		}
		$url    = self::posted( 'url' );
		$events = self::posted_events();
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked by the guard.
		if ( ! empty( $_POST['select_all'] ) ) {
			$catalogue = Learnomy_Webhooks_Api::catalogue();
			if ( ! is_wp_error( $catalogue ) ) {
				$events = wp_list_pluck( $catalogue, 'slug' );
			}
		}
		$format   = self::posted_format();
		$ordering = self::posted_ordering();
		$fields   = array(
			'url'      => $url,
			'events'   => $events,
			'format'   => $format,
			'ordering' => $ordering,
		);
		if ( 'template' === $format ) {
			$fields['template'] = self::posted_template();
		}
		$updated = Learnomy_Webhooks_Api::update( $id, $fields );
		if ( is_wp_error( $updated ) ) {
			$code = Learnomy_Webhooks_Api::problem_code( $updated );
			if ( 'not_found' === $code ) {
				Learnomy_Webhooks_Admin::flash( 'error', __( 'That webhook no longer exists.', 'learnomy-webhooks' ) );
				self::redirect( self::url() );
			}
			$sorted = self::sort_errors( $updated );
			self::keep_form(
				array(
					'mode'     => 'edit',
					'id'       => $id,
					'url'      => substr( $url, 0, 4096 ),
					'events'   => $events,
					'format'   => $format,
					'template' => self::posted_template(),
					'ordering' => $ordering,
					'errors'   => $sorted['errors'],
					'general'  => $sorted['general'],
				)
			);
			self::redirect( self::url( array( 'edit' => $id ), 'lrn-webhooks-form-panel' ) );
		}
		Learnomy_Webhooks_Admin::flash( 'success', __( 'Webhook updated. Its secret key is unchanged.', 'learnomy-webhooks' ) );
		self::redirect( self::url( array(), 'lrn-webhook-' . $id ) );
	}

	/**
	 * Test (without JavaScript): sends a ping and shows the outcome in the webhook's row.
	 */
	public static function handle_test() {
		$id = self::posted_id();
		Learnomy_Webhooks_Admin::guard( 'lrn_webhooks_test_' . $id );
		if ( '' === $id ) {
			self::redirect( self::url() );
		}
		$outcome = self::run_test( $id );
		$key     = self::state_key( 'tests' );
		$tests   = get_transient( $key );
		$tests   = is_array( $tests ) ? $tests : array();
		$tests[ $id ] = $outcome;
		set_transient( $key, $tests, self::STATE_TTL );
		self::redirect( self::url( array(), 'lrn-webhook-' . $id ) );
	}

	/**
	 * Test (with JavaScript, admin-ajax): the same, answered as JSON for the row.
	 */
	public static function ajax_test() {
		$id = self::posted_id();
		self::ajax_guard( 'lrn_webhooks_test_' . $id );
		if ( '' === $id ) {
			wp_send_json_error( array( 'text' => __( 'There is no such webhook.', 'learnomy-webhooks' ) ), 404 );
		}
		wp_send_json_success( self::run_test( $id ) );
	}

	/**
	 * Sends the test and says what happened: `{delivered: bool, text: string}`.
	 *
	 * @param string $id Webhook id.
	 * @return array
	 */
	private static function run_test( $id ) {
		$result = Learnomy_Webhooks_Api::test( $id );
		if ( is_wp_error( $result ) ) {
			return array(
				'delivered' => false,
				/* translators: %s: why the test could not run */
				'text'      => sprintf( __( 'The test could not run: %s', 'learnomy-webhooks' ), $result->get_error_message() ),
			);
		}
		return array(
			'delivered' => $result['delivered'],
			'text'      => self::test_text( $result ),
		);
	}

	/**
	 * "Delivered · HTTP 200 · 12 ms" or "Failed · <error or HTTP code> · 12 ms".
	 *
	 * @param array $result A Test answer.
	 * @return string
	 */
	public static function test_text( $result ) {
		$ms = number_format_i18n( $result['duration_ms'] );
		if ( $result['delivered'] ) {
			if ( null === $result['status_code'] ) {
				/* translators: %s: duration in milliseconds */
				return sprintf( __( 'Delivered · %s ms', 'learnomy-webhooks' ), $ms );
			}
			/* translators: 1: HTTP status code, 2: duration in milliseconds */
			return sprintf( __( 'Delivered · HTTP %1$d · %2$s ms', 'learnomy-webhooks' ), $result['status_code'], $ms );
		}
		if ( null !== $result['error'] ) {
			$reason = $result['error'];
		} elseif ( null !== $result['status_code'] ) {
			/* translators: %d: HTTP status code */
			$reason = sprintf( __( 'HTTP %d', 'learnomy-webhooks' ), $result['status_code'] );
		} else {
			$reason = __( 'no answer', 'learnomy-webhooks' );
		}
		/* translators: 1: the error or HTTP status, 2: duration in milliseconds */
		return sprintf( __( 'Failed · %1$s · %2$s ms', 'learnomy-webhooks' ), $reason, $ms );
	}

	/**
	 * Pause, Resume, Disable (after a confirmation) and Re-activate.
	 */
	public static function handle_status() {
		$id = self::posted_id();
		Learnomy_Webhooks_Admin::guard( 'lrn_webhooks_status_' . $id );
		$status = self::posted( 'status' );
		if ( '' === $id || ! in_array( $status, array( 'active', 'paused', 'disabled' ), true ) ) {
			self::redirect( self::url() );
		}
		if ( 'disabled' === $status && '1' !== self::posted( 'confirmed' ) ) {
			self::redirect(
				self::url(
					array(
						'view'    => 'confirm',
						'do'      => 'disable',
						'webhook' => $id,
					)
				)
			);
		}
		$updated = Learnomy_Webhooks_Api::update( $id, array( 'status' => $status ) );
		if ( is_wp_error( $updated ) ) {
			Learnomy_Webhooks_Admin::flash( 'error', $updated->get_error_message() );
		} else {
			$messages = array(
				'active'   => __( 'Webhook is now Active: held deliveries are sent again.', 'learnomy-webhooks' ),
				'paused'   => __( 'Webhook is now Paused: new events wait until you resume it.', 'learnomy-webhooks' ),
				'disabled' => __( 'Webhook is now Disabled: its queued deliveries were cancelled and new events are not sent to it.', 'learnomy-webhooks' ),
			);
			Learnomy_Webhooks_Admin::flash( 'success', $messages[ $status ] );
		}
		self::redirect( self::url( array(), 'lrn-webhook-' . $id ) );
	}

	/**
	 * Delete (after a confirmation: the browser's prompt, or the confirmation screen).
	 */
	public static function handle_delete() {
		$id = self::posted_id();
		Learnomy_Webhooks_Admin::guard( 'lrn_webhooks_delete_' . $id );
		if ( '' === $id ) {
			self::redirect( self::url() );
		}
		if ( '1' !== self::posted( 'confirmed' ) ) {
			self::redirect(
				self::url(
					array(
						'view'    => 'confirm',
						'do'      => 'delete',
						'webhook' => $id,
					)
				)
			);
		}
		$deleted = Learnomy_Webhooks_Api::delete( $id );
		if ( is_wp_error( $deleted ) ) {
			Learnomy_Webhooks_Admin::flash( 'error', $deleted->get_error_message() );
		} else {
			Learnomy_Webhooks_Admin::flash( 'success', __( 'Webhook deleted. No further deliveries are sent to its URL.', 'learnomy-webhooks' ) );
		}
		self::redirect( self::url() );
	}

	/**
	 * Redirects (POST-redirect-GET) and stops.
	 *
	 * @param string $url Where to.
	 */
	private static function redirect( $url ) {
		wp_safe_redirect( $url );
		exit;
	}

	/**
	 * A time of the API (RFC 3339) in the site's format and time zone, or "Never".
	 *
	 * @param mixed $rfc3339 The time, or null.
	 * @return string
	 */
	public static function when( $rfc3339 ) {
		if ( ! is_string( $rfc3339 ) || '' === $rfc3339 ) {
			return __( 'Never', 'learnomy-webhooks' );
		}
		try {
			$time = new DateTimeImmutable( $rfc3339 );
		} catch ( Exception $e ) {
			return $rfc3339;
		}
		return Learnomy_Webhooks_Admin::format_time( $time->getTimestamp() );
	}

	/**
	 * A `<time>` element: the site's format, the exact UTC time on hover.
	 *
	 * @param mixed $rfc3339 The time, or null.
	 * @return string HTML.
	 */
	public static function time_html( $rfc3339 ) {
		if ( ! is_string( $rfc3339 ) || '' === $rfc3339 ) {
			return esc_html__( 'Never', 'learnomy-webhooks' );
		}
		try {
			$time = new DateTimeImmutable( $rfc3339 );
		} catch ( Exception $e ) {
			return esc_html( $rfc3339 );
		}
		$utc = $time->setTimezone( new DateTimeZone( 'UTC' ) );
		return '<time datetime="' . esc_attr( $utc->format( 'Y-m-d\TH:i:s\Z' ) ) . '" title="' . esc_attr( $utc->format( 'Y-m-d H:i:s' ) . ' UTC' ) . '">' . esc_html( Learnomy_Webhooks_Admin::format_time( $time->getTimestamp() ) ) . '</time>';
	}

	/**
	 * The first `$max` characters, with an ellipsis when cut.
	 *
	 * @param string $text Text.
	 * @param int    $max  Characters.
	 * @return string
	 */
	public static function truncate( $text, $max ) {
		if ( mb_strlen( $text, 'UTF-8' ) <= $max ) {
			return $text;
		}
		return mb_substr( $text, 0, $max - 1, 'UTF-8' ) . '…';
	}

	/**
	 * A webhook status in words.
	 *
	 * @param string $status active, paused, disabled or failed.
	 * @return string
	 */
	public static function status_label( $status ) {
		$labels = array(
			'active'   => __( 'Active', 'learnomy-webhooks' ),
			'paused'   => __( 'Paused', 'learnomy-webhooks' ),
			'disabled' => __( 'Disabled', 'learnomy-webhooks' ),
			'failed'   => __( 'Failed', 'learnomy-webhooks' ),
		);
		return isset( $labels[ $status ] ) ? $labels[ $status ] : $status;
	}

	/**
	 * Event labels by slug, from the catalogue.
	 *
	 * @param array $catalogue The catalogue.
	 * @return array
	 */
	public static function labels( $catalogue ) {
		$labels = array( 'ping' => __( 'Test (ping)', 'learnomy-webhooks' ) );
		foreach ( $catalogue as $entry ) {
			$labels[ $entry['slug'] ] = $entry['label'];
		}
		return $labels;
	}

	/**
	 * "2 of 3 webhooks used" on Free, "N webhooks" on Pro.
	 *
	 * @param array $usage used, limit, plan.
	 * @return string
	 */
	public static function usage_text( $usage ) {
		if ( null !== $usage['limit'] ) {
			return sprintf(
				/* translators: 1: webhooks configured, 2: webhooks the plan allows */
				_n( '%1$s of %2$s webhook used', '%1$s of %2$s webhooks used', (int) $usage['limit'], 'learnomy-webhooks' ),
				number_format_i18n( $usage['used'] ),
				number_format_i18n( $usage['limit'] )
			);
		}
		return sprintf(
			/* translators: %s: number of webhooks */
			_n( '%s webhook', '%s webhooks', (int) $usage['used'], 'learnomy-webhooks' ),
			number_format_i18n( $usage['used'] )
		);
	}

	/**
	 * The page's title and its tabs (Webhooks, Learnomy Pro).
	 *
	 * @param string      $current    'webhooks' or 'pro'.
	 * @param string|null $usage_text The usage counter, or null when unknown.
	 */
	public static function render_header( $current, $usage_text ) {
		echo '<div class="lrn-webhooks-header">';
		echo '<h1 class="wp-heading-inline">' . esc_html__( 'Webhooks', 'learnomy-webhooks' ) . '</h1>';
		if ( null !== $usage_text ) {
			echo ' <span class="lrn-webhooks-usage" id="lrn-webhooks-usage">' . esc_html( $usage_text ) . '</span>';
		}
		echo '</div>';
		echo '<hr class="wp-header-end" />';
		$tabs = array(
			'webhooks' => array( __( 'Webhooks', 'learnomy-webhooks' ), self::url() ),
			'pro'      => array( __( 'Learnomy Pro', 'learnomy-webhooks' ), self::url( array( 'view' => 'pro' ) ) ),
		);
		echo '<nav class="nav-tab-wrapper lrn-webhooks-tabs" aria-label="' . esc_attr__( 'Learnomy Webhooks sections', 'learnomy-webhooks' ) . '">';
		foreach ( $tabs as $key => $tab ) {
			$active = $key === $current;
			echo '<a class="nav-tab' . ( $active ? ' nav-tab-active' : '' ) . '" href="' . esc_url( $tab[1] ) . '"' . ( $active ? ' aria-current="page"' : '' ) . '>' . esc_html( $tab[0] ) . '</a>';
		}
		echo '</nav>';
	}

	/**
	 * An error notice for an API error (not configured, down, token refused…).
	 *
	 * @param WP_Error $error The error.
	 */
	public static function render_error( $error ) {
		echo '<div class="notice notice-error inline lrn-webhooks-service-error" role="alert"><p>' . esc_html( $error->get_error_message() ) . '</p></div>';
	}

	/**
	 * The Webhooks view: header with the usage counter, the form or the Pro notice, the table.
	 * The Connection and Outbox sections follow (rendered by the caller).
	 */
	public static function render_main() {
		$list      = Learnomy_Webhooks_Api::webhooks();
		$catalogue = is_wp_error( $list ) ? $list : Learnomy_Webhooks_Api::catalogue();
		self::render_header( 'webhooks', is_wp_error( $list ) ? null : self::usage_text( $list['usage'] ) );
		Learnomy_Webhooks_Admin::render_flash();
		echo '<p class="lrn-webhooks-lead">' . esc_html__( 'Outgoing webhooks POST a signed JSON payload to an external URL every time a chosen Learnomy event occurs: Zapier, your CRM, a custom backend, or any HTTPS endpoint.', 'learnomy-webhooks' ) . '</p>';
		if ( is_wp_error( $catalogue ) ) {
			self::render_error( $catalogue );
			return;
		}
		$webhooks = $list['data'];
		$usage    = $list['usage'];

		$editing = null;
		$edit_id = self::query_arg( 'edit' );
		if ( '' !== $edit_id ) {
			foreach ( $webhooks as $webhook ) {
				if ( $webhook['id'] === $edit_id ) {
					$editing = $webhook;
				}
			}
			if ( null === $editing ) {
				echo '<div class="notice notice-warning inline"><p>' . esc_html__( 'That webhook no longer exists.', 'learnomy-webhooks' ) . '</p></div>';
			}
		}
		$can_add = null === $usage['limit'] || $usage['used'] < $usage['limit'];
		if ( null !== $editing || $can_add ) {
			self::render_form( $editing, $catalogue );
		} else {
			self::render_pro_limit( $usage );
		}
		self::render_table( $webhooks, $catalogue, 'pro' === $usage['plan'] );
	}

	/**
	 * The notice that replaces the form at the Free limit.
	 *
	 * @param array $usage used, limit, plan.
	 */
	private static function render_pro_limit( $usage ) {
		echo '<div class="notice notice-info inline lrn-webhooks-pro-notice" id="lrn-webhooks-pro-notice">';
		echo '<p><span class="lrn-webhooks-pro-badge">' . esc_html__( 'Pro', 'learnomy-webhooks' ) . '</span> <strong>' . esc_html(
			sprintf(
				/* translators: %s: number of webhooks the Free plan allows */
				_n( 'You have used all %s webhook slot of the Free plan.', 'You have used all %s webhook slots of the Free plan.', (int) $usage['limit'], 'learnomy-webhooks' ),
				number_format_i18n( $usage['limit'] )
			)
		) . '</strong></p>';
		echo '<p>' . esc_html(
			sprintf(
				/* translators: %s: number of webhooks the Free plan allows */
				__( 'Pro feature. Available in Learnomy Pro. The Free plan allows %s webhooks; upgrade to Learnomy Pro for unlimited webhooks: it removes the cap so you can configure as many outgoing webhooks as needed.', 'learnomy-webhooks' ),
				number_format_i18n( $usage['limit'] )
			)
		) . '</p>';
		echo '<p><a class="button" href="' . esc_url( self::url( array( 'view' => 'pro' ) ) ) . '">' . esc_html__( 'See the Pro Features page', 'learnomy-webhooks' ) . '</a></p>';
		echo '</div>';
	}

	/**
	 * An error beside a field.
	 *
	 * @param string $id      The element id (aria-describedby points at it).
	 * @param string $message The error, or '' for none.
	 */
	private static function field_error( $id, $message ) {
		if ( '' !== $message ) {
			echo '<p class="lrn-webhooks-field-error" id="' . esc_attr( $id ) . '"><span class="dashicons dashicons-warning" aria-hidden="true"></span> ' . esc_html( $message ) . '</p>';
		}
	}

	/**
	 * The Add New Webhook form, or the Edit form of `$editing`.
	 *
	 * @param array|null $editing   The webhook being edited, or null.
	 * @param array      $catalogue The catalogue.
	 */
	private static function render_form( $editing, $catalogue ) {
		$mode  = null === $editing ? 'add' : 'edit';
		$id    = null === $editing ? '' : $editing['id'];
		$state = self::take_form( $mode, $id );
		$url   = null !== $state ? $state['url'] : ( null === $editing ? '' : $editing['url'] );
		$ticks = null !== $state ? $state['events'] : ( null === $editing ? array() : $editing['events'] );
		$errs  = null !== $state ? $state['errors'] : array();
		if ( null !== $state ) {
			$format   = $state['format'];
			$template = $state['template'];
			$ordering = $state['ordering'];
		} else {
			$format   = null !== $editing && isset( $editing['format'] ) && is_string( $editing['format'] ) ? $editing['format'] : 'learnomy';
			$template = null !== $editing && isset( $editing['template'] ) && is_string( $editing['template'] ) ? $editing['template'] : '';
			$ordering = null !== $editing && isset( $editing['ordering'] ) && is_string( $editing['ordering'] ) ? $editing['ordering'] : 'none';
		}
		$error = function ( $field ) use ( $errs ) {
			return isset( $errs[ $field ] ) && is_string( $errs[ $field ] ) ? $errs[ $field ] : '';
		};

		$groups = array();
		foreach ( $catalogue as $entry ) {
			$groups[ $entry['group'] ][] = $entry;
		}

		echo '<section class="lrn-webhooks-panel" id="lrn-webhooks-form-panel" aria-labelledby="lrn-webhooks-form-title">';
		echo '<h2 id="lrn-webhooks-form-title">' . esc_html( 'add' === $mode ? __( 'Add New Webhook', 'learnomy-webhooks' ) : __( 'Edit Webhook', 'learnomy-webhooks' ) ) . '</h2>';
		if ( null !== $state && '' !== $state['general'] ) {
			echo '<div class="notice notice-error inline" role="alert"><p>' . esc_html( $state['general'] ) . '</p></div>';
		}
		if ( $errs ) {
			echo '<div class="notice notice-error inline" id="lrn-webhooks-form-errors" role="alert"><p>' . esc_html__( 'The webhook was not saved. Correct the fields marked below.', 'learnomy-webhooks' ) . '</p></div>';
		}
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '" id="lrn-webhooks-form" novalidate="novalidate">';
		if ( 'add' === $mode ) {
			echo '<input type="hidden" name="action" value="lrn_webhooks_add" />';
			wp_nonce_field( 'lrn_webhooks_add', '_wpnonce', false );
		} else {
			echo '<input type="hidden" name="action" value="lrn_webhooks_update" />';
			echo '<input type="hidden" name="id" value="' . esc_attr( $id ) . '" />';
			wp_nonce_field( 'lrn_webhooks_update_' . $id, '_wpnonce', false );
		}
		echo '<table class="form-table" role="presentation"><tbody>';

		// Delivery URL.
		$url_error = $error( 'url' );
		echo '<tr><th scope="row"><label for="lrn-webhooks-delivery-url">' . esc_html__( 'Delivery URL', 'learnomy-webhooks' ) . '</label></th><td>';
		echo '<input type="url" id="lrn-webhooks-delivery-url" name="url" class="lrn-webhooks-input code" required="required" maxlength="2048" spellcheck="false" autocomplete="off" placeholder="https://hooks.zapier.com/hooks/catch/…" value="' . esc_attr( $url ) . '" aria-describedby="lrn-webhooks-delivery-url-help' . ( '' !== $url_error ? ' lrn-webhooks-delivery-url-error' : '' ) . '"' . ( '' !== $url_error ? ' aria-invalid="true"' : '' ) . ' />';
		self::field_error( 'lrn-webhooks-delivery-url-error', $url_error );
		echo '<p class="description" id="lrn-webhooks-delivery-url-help">' . esc_html__( 'The HTTPS endpoint that will receive the POST. Must be a valid URL. Private IP addresses, localhost and reserved ranges are rejected.', 'learnomy-webhooks' ) . '</p>';
		echo '</td></tr>';

		// Events to Send.
		$events_error = $error( 'events' );
		echo '<tr><th scope="row" id="lrn-webhooks-events-title">' . esc_html__( 'Events to Send', 'learnomy-webhooks' ) . '</th><td>';
		echo '<fieldset class="lrn-webhooks-events" aria-labelledby="lrn-webhooks-events-title" aria-describedby="lrn-webhooks-events-help' . ( '' !== $events_error ? ' lrn-webhooks-events-error' : '' ) . '">';
		self::field_error( 'lrn-webhooks-events-error', $events_error );
		echo '<p class="description" id="lrn-webhooks-events-help">' . esc_html__( 'Check every event type you want this webhook to fire on.', 'learnomy-webhooks' ) . '</p>';
		// Rendered unchecked: without JavaScript, ticking it means "every event"; the script
		// keeps it in step with the boxes.
		echo '<p class="lrn-webhooks-select-all"><label><input type="checkbox" id="lrn-webhooks-select-all" name="select_all" value="1" /> ' . esc_html__( 'Select all', 'learnomy-webhooks' ) . '</label></p>';
		echo '<div class="lrn-webhooks-groups">';
		foreach ( $groups as $group => $entries ) {
			echo '<fieldset class="lrn-webhooks-group"><legend>' . esc_html( '' === $group ? __( 'Other', 'learnomy-webhooks' ) : $group ) . '</legend>';
			foreach ( $entries as $entry ) {
				$checked = in_array( $entry['slug'], $ticks, true );
				echo '<label title="' . esc_attr( $entry['description'] ) . '"><input type="checkbox" name="events[]" value="' . esc_attr( $entry['slug'] ) . '"' . checked( $checked, true, false ) . ' /> ' . esc_html( $entry['label'] );
				if ( $entry['pro'] ) {
					echo ' <span class="lrn-webhooks-pro-badge lrn-webhooks-pro-badge-small">' . esc_html__( 'Pro', 'learnomy-webhooks' ) . '</span>';
				}
				echo '</label>';
			}
			echo '</fieldset>';
		}
		echo '</div></fieldset></td></tr>';

		self::render_format_row( $format, $template, $error( 'format' ), $error( 'template' ), $catalogue, $ticks );
		self::render_ordering_row( $ordering, $error( 'ordering' ) );

		// Secret Key.
		echo '<tr><th scope="row">';
		if ( 'add' === $mode ) {
			$secret_error = $error( 'secret' );
			echo '<label for="lrn-webhooks-secret">' . esc_html__( 'Secret Key', 'learnomy-webhooks' ) . '</label></th><td>';
			echo '<div class="lrn-webhooks-secret-row">';
			echo '<input type="text" id="lrn-webhooks-secret" name="secret" class="lrn-webhooks-input code" value="' . esc_attr( self::generate_secret() ) . '" autocomplete="off" spellcheck="false" maxlength="128" aria-describedby="lrn-webhooks-secret-help' . ( '' !== $secret_error ? ' lrn-webhooks-secret-error' : '' ) . '"' . ( '' !== $secret_error ? ' aria-invalid="true"' : '' ) . ' />';
			echo '<span class="lrn-webhooks-secret-buttons hide-if-no-js">';
			echo '<button type="button" class="button" id="lrn-webhooks-regenerate" data-lrn-action="regenerate" data-lrn-target="lrn-webhooks-secret" aria-label="' . esc_attr__( 'Regenerate the secret key', 'learnomy-webhooks' ) . '"><span class="dashicons dashicons-update" aria-hidden="true"></span> ' . esc_html__( 'Regenerate', 'learnomy-webhooks' ) . '</button>';
			echo '<button type="button" class="button" id="lrn-webhooks-copy" data-lrn-action="copy" data-lrn-target="lrn-webhooks-secret" aria-label="' . esc_attr__( 'Copy the secret key', 'learnomy-webhooks' ) . '"><span class="dashicons dashicons-clipboard" aria-hidden="true"></span> ' . esc_html__( 'Copy', 'learnomy-webhooks' ) . '</button>';
			echo '</span>';
			echo '<span class="lrn-webhooks-secret-status" id="lrn-webhooks-secret-status" role="status" aria-live="polite"></span>';
			echo '</div>';
			self::field_error( 'lrn-webhooks-secret-error', $secret_error );
			echo '<p class="description lrn-webhooks-warning" id="lrn-webhooks-secret-help">' . esc_html__( 'A random 32-character key is pre-filled; receivers use it to verify the X-Learnomy-Signature header.', 'learnomy-webhooks' ) . ' <strong>' . esc_html__( 'Copy it now. For security, it is not shown again after you save.', 'learnomy-webhooks' ) . '</strong></p>';
		} else {
			echo esc_html__( 'Secret Key', 'learnomy-webhooks' ) . '</th><td>';
			echo '<p class="lrn-webhooks-secret-kept">' . esc_html__( 'The secret key is preserved: editing does not change it, and it is not shown again. If you lost it, delete the webhook and create a new one.', 'learnomy-webhooks' ) . '</p>';
		}
		echo '</td></tr>';
		echo '</tbody></table>';

		echo '<p class="submit">';
		if ( 'add' === $mode ) {
			echo '<button type="submit" class="button button-primary" id="lrn-webhooks-submit">' . esc_html__( 'Add Webhook', 'learnomy-webhooks' ) . '</button>';
		} else {
			echo '<button type="submit" class="button button-primary" id="lrn-webhooks-submit">' . esc_html__( 'Save Changes', 'learnomy-webhooks' ) . '</button> ';
			echo '<a class="button" href="' . esc_url( self::url() ) . '">' . esc_html__( 'Cancel', 'learnomy-webhooks' ) . '</a>';
		}
		echo '</p>';
		echo '</form></section>';
	}

	/**
	 * The Delivery order row: any order, or one learner's events one at a time in the order
	 * they happened (the service's `ordering`; the plugin keys each event by its learner).
	 *
	 * @param string $ordering The order chosen.
	 * @param string $error    What is wrong with it ('' if nothing).
	 */
	private static function render_ordering_row( $ordering, $error ) {
		echo '<tr><th scope="row"><label for="lrn-webhooks-ordering">' . esc_html__( 'Delivery order', 'learnomy-webhooks' ) . '</label></th><td>';
		echo '<select id="lrn-webhooks-ordering" name="ordering" aria-describedby="lrn-webhooks-ordering-help' . ( '' !== $error ? ' lrn-webhooks-ordering-error' : '' ) . '"' . ( '' !== $error ? ' aria-invalid="true"' : '' ) . '>';
		foreach ( self::orderings() as $name => $label ) {
			echo '<option value="' . esc_attr( $name ) . '"' . selected( $ordering, $name, false ) . '>' . esc_html( $label ) . '</option>';
		}
		echo '</select>';
		self::field_error( 'lrn-webhooks-ordering-error', $error );
		echo '<p class="description" id="lrn-webhooks-ordering-help">' . esc_html__( 'In order per learner: the events about one learner are sent one at a time, in the order they happened, each after the previous one was delivered (or failed for good), so a CRM sees an enrolment before its completion. Events about different learners still go out side by side. Choose it only if your receiver needs it: one failing event holds back that learner\'s later events until it is retried.', 'learnomy-webhooks' ) . '</p>';
		echo '</td></tr>';
	}

	/**
	 * The Body format row: the format, the template (shown for a custom template) and a preview
	 * of the body with an event's example data, asked of the service — again by the script
	 * whenever the format, the template or the event changes.
	 *
	 * @param string $format         The format chosen.
	 * @param string $template       The template typed.
	 * @param string $format_error   What is wrong with the format ('' if nothing).
	 * @param string $template_error What is wrong with the template ('' if nothing).
	 * @param array  $catalogue      The catalogue.
	 * @param array  $ticks          The events checked.
	 */
	private static function render_format_row( $format, $template, $format_error, $template_error, $catalogue, $ticks ) {
		$slugs = wp_list_pluck( $catalogue, 'slug' );
		$event = 'course_completed';
		foreach ( $ticks as $slug ) {
			if ( in_array( $slug, $slugs, true ) ) {
				$event = $slug;
				break;
			}
		}
		$preview = Learnomy_Webhooks_Api::preview( $format, $template, $event );
		$failed  = is_wp_error( $preview );
		echo '<tr><th scope="row"><label for="lrn-webhooks-format">' . esc_html__( 'Body format', 'learnomy-webhooks' ) . '</label></th><td>';
		echo '<select id="lrn-webhooks-format" name="format" aria-describedby="lrn-webhooks-format-help"' . ( '' !== $format_error ? ' aria-invalid="true"' : '' ) . '>';
		foreach ( self::formats() as $name => $label ) {
			echo '<option value="' . esc_attr( $name ) . '"' . selected( $format, $name, false ) . '>' . esc_html( $label ) . '</option>';
		}
		echo '</select>';
		self::field_error( 'lrn-webhooks-format-error', $format_error );
		echo '<p class="description" id="lrn-webhooks-format-help">' . esc_html__( 'Learnomy JSON is the signed payload your own endpoint verifies. For Slack, Discord, Microsoft Teams or Google Chat, paste that app\'s incoming webhook URL above: it gets a readable message ("Jane Doe completed Introduction to Pottery") in its own format. A custom template builds any body.', 'learnomy-webhooks' ) . '</p>';
		echo '<div id="lrn-webhooks-template-field"' . ( 'template' !== $format && '' === $template_error ? ' hidden="hidden"' : '' ) . '>';
		echo '<p><label for="lrn-webhooks-template">' . esc_html__( 'Template', 'learnomy-webhooks' ) . '</label></p>';
		echo '<textarea id="lrn-webhooks-template" name="template" class="large-text code" rows="8" spellcheck="false" maxlength="16384" aria-describedby="lrn-webhooks-template-help"' . ( '' !== $template_error ? ' aria-invalid="true"' : '' ) . '>' . esc_textarea( $template ) . '</textarea>';
		self::field_error( 'lrn-webhooks-template-error', $template_error );
		echo '<p class="description" id="lrn-webhooks-template-help">' . esc_html__( 'MiniJinja over the event: id, event, created_at, site_url, data, label, sentence, link. Values are inserted as JSON, quotes included, e.g. {"text": {{ sentence }}}.', 'learnomy-webhooks' ) . '</p>';
		echo '</div>';
		echo '<div class="lrn-webhooks-preview" data-lrn-nonce="' . esc_attr( wp_create_nonce( 'lrn_webhooks_preview' ) ) . '">';
		echo '<p><label for="lrn-webhooks-preview-event">' . esc_html__( 'Preview with the example data of', 'learnomy-webhooks' ) . '</label> ';
		echo '<select id="lrn-webhooks-preview-event">';
		foreach ( $catalogue as $entry ) {
			echo '<option value="' . esc_attr( $entry['slug'] ) . '"' . selected( $event, $entry['slug'], false ) . '>' . esc_html( $entry['label'] ) . '</option>';
		}
		echo '</select></p>';
		echo '<pre id="lrn-webhooks-preview" class="lrn-webhooks-preview-body' . ( $failed ? ' is-bad' : '' ) . '" tabindex="0" aria-live="polite">' . esc_html( $failed ? self::preview_error( $preview ) : $preview ) . '</pre>';
		echo '</div>';
		echo '</td></tr>';
	}

	/**
	 * A one-button form for a webhook's action, posting to admin-post.php.
	 *
	 * @param string $action  lrn_webhooks_<action>.
	 * @param string $id      Webhook id.
	 * @param string $label   Button label.
	 * @param array  $fields  Extra hidden fields.
	 * @param string $confirm A confirmation question ('' for none).
	 * @param string $classes Button classes.
	 */
	private static function action_form( $action, $id, $label, $fields = array(), $confirm = '', $classes = 'button button-small' ) {
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '" class="lrn-webhooks-inline lrn-webhooks-' . esc_attr( $action ) . '-form"' . ( '' !== $confirm ? ' data-lrn-confirm="' . esc_attr( $confirm ) . '"' : '' ) . '>';
		echo '<input type="hidden" name="action" value="' . esc_attr( 'lrn_webhooks_' . $action ) . '" />';
		echo '<input type="hidden" name="id" value="' . esc_attr( $id ) . '" />';
		foreach ( $fields as $name => $value ) {
			echo '<input type="hidden" name="' . esc_attr( $name ) . '" value="' . esc_attr( $value ) . '" />';
		}
		if ( '' !== $confirm ) {
			echo '<input type="hidden" name="confirmed" value="" />';
		}
		echo '<input type="hidden" name="_wpnonce" value="' . esc_attr( wp_create_nonce( 'lrn_webhooks_' . $action . '_' . $id ) ) . '" />';
		echo '<button type="submit" class="' . esc_attr( $classes ) . '">' . esc_html( $label ) . '</button>';
		echo '</form>';
	}

	/**
	 * The confirmation question for deleting a webhook.
	 *
	 * @param string $url The webhook's URL.
	 * @return string
	 */
	private static function delete_question( $url ) {
		/* translators: %s: the webhook's URL */
		return sprintf( __( 'Delete the webhook to %s? This permanently removes it and stops all future deliveries to that URL; its queued deliveries are cancelled.', 'learnomy-webhooks' ), $url );
	}

	/**
	 * The confirmation question for disabling a webhook.
	 *
	 * @param string $url The webhook's URL.
	 * @return string
	 */
	private static function disable_question( $url ) {
		/* translators: %s: the webhook's URL */
		return sprintf( __( 'Disable the webhook to %s? This cancels its queued deliveries (they show as Failed, "webhook disabled"), and new events are not sent to it until you re-activate it.', 'learnomy-webhooks' ), $url );
	}

	/**
	 * The events of a webhook as badges; many events are listed on demand.
	 *
	 * @param array $events    Subscribed slugs.
	 * @param array $labels    Labels by slug.
	 * @param int   $all_count Events in the catalogue.
	 */
	private static function render_events( $events, $labels, $all_count ) {
		$badges = '<ul class="lrn-webhooks-badges">';
		foreach ( $events as $slug ) {
			$slug    = (string) $slug;
			$badges .= '<li class="lrn-webhooks-badge" title="' . esc_attr( $slug ) . '">' . esc_html( isset( $labels[ $slug ] ) ? $labels[ $slug ] : $slug ) . '</li>';
		}
		$badges .= '</ul>';
		$known   = count( array_intersect( $events, array_keys( $labels ) ) );
		if ( count( $events ) <= self::BADGES_SHOWN ) {
			echo $badges; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped above.
			return;
		}
		$summary = $all_count > 0 && $known >= $all_count
			/* translators: %s: number of events */
			? sprintf( __( 'All events (%s)', 'learnomy-webhooks' ), number_format_i18n( count( $events ) ) )
			/* translators: %s: number of events */
			: sprintf( _n( '%s event', '%s events', count( $events ), 'learnomy-webhooks' ), number_format_i18n( count( $events ) ) );
		echo '<details class="lrn-webhooks-events-more"><summary>' . esc_html( $summary ) . '</summary>' . $badges . '</details>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped above.
	}

	/**
	 * The webhooks table.
	 *
	 * @param array $webhooks  Webhooks.
	 * @param array $catalogue The catalogue.
	 * @param bool  $pro       Whether the plan has the Delivery Log.
	 */
	private static function render_table( $webhooks, $catalogue, $pro ) {
		$labels = self::labels( $catalogue );
		$key    = self::state_key( 'tests' );
		$tests  = get_transient( $key );
		if ( is_array( $tests ) ) {
			delete_transient( $key );
		} else {
			$tests = array();
		}

		echo '<section class="lrn-webhooks-list" aria-labelledby="lrn-webhooks-table-title">';
		echo '<h2 id="lrn-webhooks-table-title">' . esc_html__( 'Configured webhooks', 'learnomy-webhooks' ) . '</h2>';
		if ( ! $webhooks ) {
			echo '<p class="lrn-webhooks-empty">' . esc_html__( 'No webhooks yet. Add one above to start sending events.', 'learnomy-webhooks' ) . '</p></section>';
			return;
		}
		echo '<div class="lrn-webhooks-table-wrap">';
		echo '<table class="widefat striped lrn-webhooks-table" id="lrn-webhooks-table"><thead><tr>';
		echo '<th scope="col" class="column-url">' . esc_html__( 'URL', 'learnomy-webhooks' ) . '</th>';
		echo '<th scope="col" class="column-events">' . esc_html__( 'Events', 'learnomy-webhooks' ) . '</th>';
		echo '<th scope="col" class="column-status">' . esc_html__( 'Status', 'learnomy-webhooks' ) . '</th>';
		echo '<th scope="col" class="column-last">' . esc_html__( 'Last Triggered', 'learnomy-webhooks' ) . '</th>';
		echo '<th scope="col" class="column-actions">' . esc_html__( 'Actions', 'learnomy-webhooks' ) . '</th>';
		echo '</tr></thead><tbody>';
		foreach ( $webhooks as $webhook ) {
			$id     = $webhook['id'];
			$status = $webhook['status'];
			echo '<tr id="' . esc_attr( 'lrn-webhook-' . $id ) . '" data-webhook="' . esc_attr( $id ) . '">';
			echo '<td class="column-url"><span class="lrn-webhooks-url code" title="' . esc_attr( $webhook['url'] ) . '">' . esc_html( self::truncate( $webhook['url'], self::URL_SHOWN ) ) . '</span></td>';
			echo '<td class="column-events">';
			self::render_events( array_map( 'strval', $webhook['events'] ), $labels, count( $catalogue ) );
			echo '</td>';
			echo '<td class="column-status"><span class="' . esc_attr( 'lrn-webhooks-status lrn-webhooks-status-' . sanitize_html_class( $status ) ) . '">' . esc_html( self::status_label( $status ) ) . '</span>';
			if ( 'failed' === $status ) {
				$since  = isset( $webhook['status_changed_at'] ) ? self::when( $webhook['status_changed_at'] ) : '';
				$reason = isset( $webhook['status_reason'] ) && is_string( $webhook['status_reason'] ) ? $webhook['status_reason'] : '';
				echo '<p class="lrn-webhooks-status-note">' . esc_html(
					'' === $reason
						/* translators: %s: date and time */
						? sprintf( __( 'Since %s.', 'learnomy-webhooks' ), $since )
						/* translators: 1: date and time, 2: why the webhook failed */
						: sprintf( __( 'Since %1$s: %2$s', 'learnomy-webhooks' ), $since, $reason )
				) . '</p>';
			}
			self::render_activity( $webhook );
			echo '</td>';
			echo '<td class="column-last">' . self::time_html( isset( $webhook['last_triggered_at'] ) ? $webhook['last_triggered_at'] : null ) . '</td>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped by time_html().
			echo '<td class="column-actions"><div class="lrn-webhooks-row-actions">';
			echo '<a class="button button-small" href="' . esc_url( self::url( array( 'edit' => $id ), 'lrn-webhooks-form-panel' ) ) . '" aria-label="' . esc_attr(
				/* translators: %s: the webhook's URL */
				sprintf( __( 'Edit the webhook to %s', 'learnomy-webhooks' ), $webhook['url'] )
			) . '">' . esc_html__( 'Edit', 'learnomy-webhooks' ) . '</a>';
			self::action_form( 'test', $id, __( 'Test', 'learnomy-webhooks' ) );
			if ( 'active' === $status ) {
				self::action_form( 'status', $id, __( 'Pause', 'learnomy-webhooks' ), array( 'status' => 'paused' ) );
				self::action_form( 'status', $id, __( 'Disable', 'learnomy-webhooks' ), array( 'status' => 'disabled' ), self::disable_question( $webhook['url'] ) );
			} elseif ( 'paused' === $status ) {
				self::action_form( 'status', $id, __( 'Resume', 'learnomy-webhooks' ), array( 'status' => 'active' ) );
				self::action_form( 'status', $id, __( 'Disable', 'learnomy-webhooks' ), array( 'status' => 'disabled' ), self::disable_question( $webhook['url'] ) );
			} else {
				self::action_form( 'status', $id, __( 'Re-activate', 'learnomy-webhooks' ), array( 'status' => 'active' ) );
			}
			if ( $pro ) {
				echo '<a class="button button-small lrn-webhooks-view-log" href="' . esc_url(
					self::url(
						array(
							'view'    => 'log',
							'webhook' => $id,
						)
					)
				) . '">' . esc_html__( 'View log', 'learnomy-webhooks' ) . '</a>';
			}
			self::action_form( 'delete', $id, __( 'Delete', 'learnomy-webhooks' ), array(), self::delete_question( $webhook['url'] ), 'button button-small button-link-delete' );
			echo '</div>';
			$test = isset( $tests[ $id ] ) && is_array( $tests[ $id ] ) ? $tests[ $id ] : null;
			$kind = null === $test ? '' : ( ! empty( $test['delivered'] ) ? ' is-ok' : ' is-bad' );
			echo '<p class="lrn-webhooks-test-result' . esc_attr( $kind ) . '" role="status" aria-live="polite">' . esc_html( null === $test ? '' : (string) $test['text'] ) . '</p>';
			echo '</td></tr>';
		}
		echo '</tbody></table></div></section>';
	}

	/**
	 * What a webhook's recent deliveries say, under its status (the service's `activity`):
	 * a Failing badge while an Active webhook's receiver fails, the last delivery's outcome
	 * ("Last delivery failed · HTTP 500 · 2 mins ago"), and how many deliveries a Paused or
	 * Failed webhook holds. The same decisions as the service's own console, on every plan.
	 *
	 * @param array $webhook The webhook as the API returns it.
	 */
	private static function render_activity( $webhook ) {
		$activity = isset( $webhook['activity'] ) && is_array( $webhook['activity'] ) ? $webhook['activity'] : null;
		if ( null === $activity ) {
			return;
		}
		$failing = ! empty( $activity['failing'] );
		if ( $failing && 'active' === $webhook['status'] ) {
			echo ' <span class="lrn-webhooks-status lrn-webhooks-status-failing" title="' . esc_attr__( 'Recent deliveries failed; retries continue', 'learnomy-webhooks' ) . '">' . esc_html__( 'Failing', 'learnomy-webhooks' ) . '</span>';
		}
		$last = isset( $activity['last_attempt_at'] ) && is_string( $activity['last_attempt_at'] ) ? strtotime( $activity['last_attempt_at'] ) : false;
		if ( false === $last ) {
			echo '<p class="lrn-webhooks-outcome">' . esc_html__( 'No deliveries yet', 'learnomy-webhooks' ) . '</p>';
		} else {
			/* translators: %s: a time span such as "2 mins" */
			$ago = sprintf( __( '%s ago', 'learnomy-webhooks' ), human_time_diff( $last, time() ) );
			if ( ! $failing ) {
				/* translators: %s: how long ago, e.g. "2 mins ago" */
				echo '<p class="lrn-webhooks-outcome is-ok">' . esc_html( sprintf( __( 'Last delivery succeeded · %s', 'learnomy-webhooks' ), $ago ) ) . '</p>';
			} else {
				$code   = isset( $activity['last_failure_status_code'] ) && is_numeric( $activity['last_failure_status_code'] ) ? (int) $activity['last_failure_status_code'] : null;
				$error  = isset( $activity['last_failure_error'] ) && is_string( $activity['last_failure_error'] ) ? $activity['last_failure_error'] : '';
				$reason = null !== $code
					/* translators: %d: HTTP status code */
					? sprintf( __( 'HTTP %d', 'learnomy-webhooks' ), $code )
					: self::truncate( $error, 80 );
				$text = '' === $reason
					/* translators: %s: how long ago, e.g. "2 mins ago" */
					? sprintf( __( 'Last delivery failed · %s', 'learnomy-webhooks' ), $ago )
					/* translators: 1: HTTP status or error, 2: how long ago, e.g. "2 mins ago" */
					: sprintf( __( 'Last delivery failed · %1$s · %2$s', 'learnomy-webhooks' ), $reason, $ago );
				echo '<p class="lrn-webhooks-outcome is-bad">' . esc_html( $text ) . '</p>';
			}
		}
		$queued = isset( $activity['queued'] ) ? (int) $activity['queued'] : 0;
		if ( $queued > 0 && in_array( $webhook['status'], array( 'paused', 'failed' ), true ) ) {
			$shown = $queued > 100000 ? '100,000+' : number_format_i18n( $queued );
			/* translators: %s: number of deliveries */
			echo '<p class="lrn-webhooks-held">' . esc_html( sprintf( _n( 'Holding %s delivery', 'Holding %s deliveries', $queued, 'learnomy-webhooks' ), $shown ) ) . '</p>';
		}
	}

	/**
	 * The confirmation screen for Delete and Disable (used without JavaScript).
	 */
	public static function render_confirm() {
		$do = self::query_arg( 'do' );
		$id = self::query_arg( 'webhook' );
		self::render_header( 'webhooks', null );
		$webhook = Learnomy_Webhooks_Api::webhook( $id );
		if ( is_wp_error( $webhook ) ) {
			self::render_error( $webhook );
			echo '<p><a href="' . esc_url( self::url() ) . '">' . esc_html__( 'Back to Webhooks', 'learnomy-webhooks' ) . '</a></p>';
			return;
		}
		$delete = 'delete' === $do;
		echo '<section class="lrn-webhooks-panel lrn-webhooks-confirm" aria-labelledby="lrn-webhooks-confirm-title">';
		echo '<h2 id="lrn-webhooks-confirm-title">' . esc_html( $delete ? __( 'Delete this webhook?', 'learnomy-webhooks' ) : __( 'Disable this webhook?', 'learnomy-webhooks' ) ) . '</h2>';
		echo '<p>' . esc_html( $delete ? self::delete_question( $webhook['url'] ) : self::disable_question( $webhook['url'] ) ) . '</p>';
		$action = $delete ? 'delete' : 'status';
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
		echo '<input type="hidden" name="action" value="' . esc_attr( 'lrn_webhooks_' . $action ) . '" />';
		echo '<input type="hidden" name="id" value="' . esc_attr( $webhook['id'] ) . '" />';
		echo '<input type="hidden" name="confirmed" value="1" />';
		if ( ! $delete ) {
			echo '<input type="hidden" name="status" value="disabled" />';
		}
		echo '<input type="hidden" name="_wpnonce" value="' . esc_attr( wp_create_nonce( 'lrn_webhooks_' . $action . '_' . $webhook['id'] ) ) . '" />';
		echo '<p class="submit"><button type="submit" class="button button-primary">' . esc_html( $delete ? __( 'Delete webhook', 'learnomy-webhooks' ) : __( 'Disable webhook', 'learnomy-webhooks' ) ) . '</button> ';
		echo '<a class="button" href="' . esc_url( self::url( array(), 'lrn-webhook-' . $webhook['id'] ) ) . '">' . esc_html__( 'Cancel', 'learnomy-webhooks' ) . '</a></p>';
		echo '</form></section>';
	}

	/**
	 * The Learnomy Pro tab: what Pro adds (DESIGN §2), and the plan the service runs.
	 */
	public static function render_pro() {
		$list = Learnomy_Webhooks_Api::webhooks();
		self::render_header( 'pro', is_wp_error( $list ) ? null : self::usage_text( $list['usage'] ) );
		Learnomy_Webhooks_Admin::render_flash();
		echo '<section class="lrn-webhooks-panel lrn-webhooks-pro" id="lrn-webhooks-pro" aria-labelledby="lrn-webhooks-pro-title">';
		echo '<h2 id="lrn-webhooks-pro-title"><span class="lrn-webhooks-pro-badge">' . esc_html__( 'Pro', 'learnomy-webhooks' ) . '</span> ' . esc_html__( 'Pro Features: what Learnomy Pro adds to webhooks', 'learnomy-webhooks' ) . '</h2>';
		if ( ! is_wp_error( $list ) ) {
			echo '<p><strong>' . esc_html(
				'pro' === $list['usage']['plan']
					? __( 'Your Learnomy Webhooks service runs the Pro plan: everything below is available.', 'learnomy-webhooks' )
					: __( 'Your Learnomy Webhooks service runs the Free plan.', 'learnomy-webhooks' )
			) . '</strong></p>';
		}
		echo '<table class="widefat striped lrn-webhooks-plans"><thead><tr><th scope="col">' . esc_html__( 'Feature', 'learnomy-webhooks' ) . '</th><th scope="col">' . esc_html__( 'Free', 'learnomy-webhooks' ) . '</th><th scope="col">' . esc_html__( 'Pro', 'learnomy-webhooks' ) . '</th></tr></thead><tbody>';
		$rows = array(
			array( __( 'Webhooks', 'learnomy-webhooks' ), __( 'Up to 3', 'learnomy-webhooks' ), __( 'Unlimited', 'learnomy-webhooks' ) ),
			array( __( 'Events', 'learnomy-webhooks' ), __( 'Core Learnomy events (enrolments, progress, quizzes, certificates, orders…)', 'learnomy-webhooks' ), __( 'Core events, plus lifecycle events of learning paths, assignments, cohorts, spaces and gifts, and events added with the learnomy_pro_webhooks_event_slugs filter', 'learnomy-webhooks' ) ),
			array( __( 'Webhook Delivery Log', 'learnomy-webhooks' ), __( 'No', 'learnomy-webhooks' ), __( 'A per-webhook history of every outbound delivery, response code and retry, with each attempt and the payload sent', 'learnomy-webhooks' ) ),
			array( __( 'Redeliver', 'learnomy-webhooks' ), __( 'No', 'learnomy-webhooks' ), __( 'Send any delivery again from its log entry, and replay failed deliveries by time window', 'learnomy-webhooks' ) ),
			array( __( 'Signed payloads, retries, Test, Pause / Disable', 'learnomy-webhooks' ), __( 'Yes', 'learnomy-webhooks' ), __( 'Yes', 'learnomy-webhooks' ) ),
		);
		foreach ( $rows as $row ) {
			echo '<tr><th scope="row">' . esc_html( $row[0] ) . '</th><td>' . esc_html( $row[1] ) . '</td><td>' . esc_html( $row[2] ) . '</td></tr>';
		}
		echo '</tbody></table>';
		echo '<p>' . esc_html__( 'Webhooks created on Pro keep working if the plan later becomes Free; only adding more is blocked while more than 3 exist.', 'learnomy-webhooks' ) . '</p>';
		echo '<p>' . esc_html__( 'The plan is a setting of the Learnomy Webhooks service (plan = "pro" in its configuration), which comes with a Learnomy Pro licence.', 'learnomy-webhooks' ) . '</p>';
		echo '<p><a class="button" href="' . esc_url( self::url() ) . '">' . esc_html__( 'Back to Webhooks', 'learnomy-webhooks' ) . '</a></p>';
		echo '</section>';
	}
}
