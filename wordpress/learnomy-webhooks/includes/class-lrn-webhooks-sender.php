<?php
/**
 * Sending: moves outbox rows to the service in batches, with back-off while it is down.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * Flushes the outbox: from WP-Cron, from "Send now", and after the response of a request that
 * stored events (only where fastcgi_finish_request exists and no back-off is in force).
 */
class Learnomy_Webhooks_Sender {

	/** Most events in one request. */
	const MAX_EVENTS = 500;

	/** Most bytes of events JSON in one request (the service takes 256 KiB bodies). */
	const MAX_BATCH_BYTES = 204800;

	/** A row whose JSON is larger than this is set aside as refused. */
	const MAX_ROW_BYTES = 256000;

	/** Option: array( 'time' => int, 'message' => string ) of the last failure. */
	const LAST_ERROR_OPTION = 'lrn_webhooks_last_error';

	/** Option: time of the last batch the service accepted. */
	const LAST_SUCCESS_OPTION = 'lrn_webhooks_last_success';

	/** Option: array( 'until' => int, 'delay' => int, 'since' => int ) while the service fails. */
	const BACKOFF_OPTION = 'lrn_webhooks_backoff';

	/** First back-off delay, in seconds. */
	const BACKOFF_MIN = 60;

	/** Longest back-off delay, in seconds. */
	const BACKOFF_MAX = 900;

	/**
	 * Limits per kind of flush: most requests and seconds.
	 *
	 * @var array<string,array{requests:int,seconds:int}>
	 */
	private static $limits = array(
		'cron'    => array(
			'requests' => 20,
			'seconds'  => 20,
		),
		'manual'  => array(
			'requests' => 20,
			'seconds'  => 20,
		),
		'request' => array(
			'requests' => 5,
			'seconds'  => 10,
		),
	);

	/**
	 * Registers the after-response flush.
	 */
	public static function register() {
		add_action( 'shutdown', array( __CLASS__, 'on_shutdown' ), 100 );
	}

	/**
	 * WP-Cron callback.
	 */
	public static function run_cron() {
		$summary = self::flush( 'cron' );
		if ( $summary['pending'] > 0 && empty( $summary['busy'] ) && Learnomy_Webhooks_Connection::is_configured() ) {
			// Out of time or the service failed: the very next cron run tries again (WP-Cron's
			// own lock keeps spawned runs at most one a minute; a system cron sets its pace).
			Learnomy_Webhooks_Plugin::make_flush_due();
		}
	}

	/**
	 * After the response: when this request stored events and PHP can finish the response
	 * first (PHP-FPM), send them now unless the service is in back-off. Never makes a page wait.
	 */
	public static function on_shutdown() {
		if ( ! Learnomy_Webhooks_Events::stored_in_this_request() ) {
			return;
		}
		if ( function_exists( 'fastcgi_finish_request' ) && ! self::in_backoff() && Learnomy_Webhooks_Connection::is_configured() ) {
			fastcgi_finish_request();
			$summary = self::flush( 'request' );
			if ( 0 === $summary['pending'] ) {
				return;
			}
		}
		// Rows wait: the next WP-Cron run (wp-cron.php from a system cron, or WordPress's own
		// spawn, at most once a minute) sends them, instead of a minute after the last run.
		Learnomy_Webhooks_Plugin::make_flush_due();
	}

	/**
	 * Whether request-time flushing waits for the back-off to end.
	 *
	 * @return bool
	 */
	public static function in_backoff() {
		$state = self::backoff();
		return null !== $state && $state['until'] > time();
	}

	/**
	 * The back-off state, or null after a success.
	 *
	 * @return array{until:int,delay:int,since:int}|null
	 */
	public static function backoff() {
		$state = get_option( self::BACKOFF_OPTION );
		if ( ! is_array( $state ) || empty( $state['until'] ) ) {
			return null;
		}
		return array(
			'until' => (int) $state['until'],
			'delay' => isset( $state['delay'] ) ? (int) $state['delay'] : self::BACKOFF_MIN,
			'since' => isset( $state['since'] ) ? (int) $state['since'] : (int) $state['until'],
		);
	}

	/**
	 * The last failure.
	 *
	 * @return array{time:int,message:string}|null
	 */
	public static function last_error() {
		$error = get_option( self::LAST_ERROR_OPTION );
		if ( ! is_array( $error ) || empty( $error['time'] ) ) {
			return null;
		}
		return array(
			'time'    => (int) $error['time'],
			'message' => isset( $error['message'] ) ? (string) $error['message'] : '',
		);
	}

	/**
	 * When the service last accepted a batch, or 0.
	 *
	 * @return int
	 */
	public static function last_success() {
		return (int) get_option( self::LAST_SUCCESS_OPTION, 0 );
	}

	/**
	 * Sends pending rows until none is left, a limit is reached or the service fails.
	 *
	 * @param string $context 'cron', 'manual' or 'request'.
	 * @return array{sent:int,refused:int,pending:int,error:string|null}
	 */
	public static function flush( $context = 'cron' ) {
		global $wpdb;
		$summary = array(
			'sent'    => 0,
			'refused' => 0,
			'pending' => 0,
			'error'   => null,
		);
		$limits  = isset( self::$limits[ $context ] ) ? self::$limits[ $context ] : self::$limits['cron'];

		if ( ! Learnomy_Webhooks_Connection::is_configured() ) {
			$summary['pending'] = Learnomy_Webhooks_Outbox::count( 'pending' );
			$summary['error']   = __( 'The service URL or token is not set.', 'learnomy-webhooks' );
			return $summary;
		}
		if ( 'request' === $context && self::in_backoff() ) {
			$summary['pending'] = Learnomy_Webhooks_Outbox::count( 'pending' );
			return $summary;
		}

		// MySQL's locks are server-wide: the name carries the database and table prefix, so sites
		// sharing a database server (same prefix, other databases) never wait on each other.
		$lock = 'lrn_webhooks_flush_' . md5( DB_NAME . '|' . $wpdb->prefix );
		if ( '1' !== (string) $wpdb->get_var( $wpdb->prepare( 'SELECT GET_LOCK(%s, 0)', $lock ) ) ) {
			$summary['pending'] = Learnomy_Webhooks_Outbox::count( 'pending' );
			$summary['error']   = __( 'Another flush is running.', 'learnomy-webhooks' );
			$summary['busy']    = true;
			return $summary;
		}

		try {
			$deadline = microtime( true ) + $limits['seconds'];
			$requests = 0;
			while ( $requests < $limits['requests'] && microtime( true ) < $deadline ) {
				$rows = Learnomy_Webhooks_Outbox::next_pending( self::MAX_EVENTS );
				if ( ! $rows ) {
					break;
				}
				$batch = self::take_batch( $rows, $summary );
				if ( ! $batch ) {
					continue; // Only too-large rows were found; they are refused now.
				}
				$error = self::send_group( $batch, $summary, $requests, $limits['requests'], $deadline );
				if ( null !== $error ) {
					$summary['error'] = $error;
					self::record_failure( $error );
					break;
				}
			}
		} finally {
			$wpdb->query( $wpdb->prepare( 'SELECT RELEASE_LOCK(%s)', $lock ) );
		}

		$summary['pending'] = Learnomy_Webhooks_Outbox::refresh_count();
		return $summary;
	}

	/**
	 * The leading rows that fit in one request; rows too large for any request are refused.
	 *
	 * @param array $rows    Pending rows, oldest first.
	 * @param array $summary The flush summary (refused is counted).
	 * @return array
	 */
	private static function take_batch( array $rows, array &$summary ) {
		$batch = array();
		$bytes = 0;
		foreach ( $rows as $row ) {
			$size = strlen( $row->body );
			if ( $size > self::MAX_ROW_BYTES ) {
				Learnomy_Webhooks_Outbox::refuse(
					(int) $row->id,
					/* translators: %s: size of the event, e.g. "300 KB" */
					sprintf( __( 'too large: the event is %s of JSON; the service takes at most 250 KB per event', 'learnomy-webhooks' ), size_format( $size ) )
				);
				++$summary['refused'];
				continue;
			}
			if ( $batch && $bytes + $size + 1 > self::MAX_BATCH_BYTES ) {
				break;
			}
			$batch[] = $row;
			$bytes  += $size + 1;
		}
		return $batch;
	}

	/**
	 * Sends a batch; on a refusal naming an event, sets it aside and sends the rest; on a refusal
	 * naming none, halves the batch to find the culprit. Rows accepted are deleted.
	 *
	 * @param array $batch     Rows.
	 * @param array $summary   The flush summary.
	 * @param int   $requests  Requests made so far in this flush.
	 * @param int   $max       Most requests in this flush.
	 * @param float $deadline  When to stop starting requests.
	 * @return string|null The error that stopped sending (rows stay pending), or null.
	 */
	private static function send_group( array $batch, array &$summary, &$requests, $max, $deadline ) {
		$stack = array( $batch );
		while ( $stack ) {
			if ( $requests >= $max || microtime( true ) >= $deadline ) {
				return null; // Out of time for this flush; the rest waits for the next one.
			}
			$group = array_pop( $stack );
			$json  = '{"events":[' . implode( ',', wp_list_pluck( $group, 'body' ) ) . ']}';
			++$requests;
			$response = Learnomy_Webhooks_Connection::post_batch( $json );
			$ids      = array_map( 'intval', wp_list_pluck( $group, 'id' ) );

			if ( is_wp_error( $response ) ) {
				Learnomy_Webhooks_Outbox::count_attempt( $ids );
				/* translators: %s: the connection error */
				return sprintf( __( 'The service did not answer: %s', 'learnomy-webhooks' ), $response->get_error_message() );
			}
			$status = (int) wp_remote_retrieve_response_code( $response );
			$body   = Learnomy_Webhooks_Connection::json( $response );

			if ( 202 === $status ) {
				if ( ! is_array( $body ) || ! isset( $body['data'] ) || ! is_array( $body['data'] ) || count( $body['data'] ) !== count( $group ) ) {
					Learnomy_Webhooks_Outbox::count_attempt( $ids );
					return __( 'The service answered 202 with an unexpected body; the events will be sent again (their idempotency keys prevent duplicates).', 'learnomy-webhooks' );
				}
				Learnomy_Webhooks_Outbox::delete( $ids );
				$summary['sent'] += count( $group );
				self::record_success();
				continue;
			}

			$code = is_array( $body ) && isset( $body['code'] ) && is_string( $body['code'] ) ? $body['code'] : '';
			$per_event = 422 === $status || 413 === $status || ( 400 === $status && 'invalid_json' === $code );
			if ( ! $per_event ) {
				Learnomy_Webhooks_Outbox::count_attempt( $ids );
				if ( 401 === $status || 403 === $status ) {
					/* translators: %s: the service's explanation */
					return sprintf( __( 'The service refused the token: %s', 'learnomy-webhooks' ), Learnomy_Webhooks_Connection::describe_error( $response ) );
				}
				/* translators: %s: HTTP status and the service's explanation */
				return sprintf( __( 'The service could not take the events: %s', 'learnomy-webhooks' ), Learnomy_Webhooks_Connection::describe_error( $response ) );
			}

			// The service is up: it judged the events themselves.
			$named = self::named_events( $body, count( $group ) );
			if ( $named ) {
				$rest = array();
				foreach ( $group as $i => $row ) {
					if ( isset( $named[ $i ] ) ) {
						Learnomy_Webhooks_Outbox::refuse( (int) $row->id, $named[ $i ] );
						++$summary['refused'];
					} else {
						$rest[] = $row;
					}
				}
				if ( $rest ) {
					$stack[] = $rest;
				}
				continue;
			}
			if ( count( $group ) > 1 ) {
				$half    = (int) ceil( count( $group ) / 2 );
				$stack[] = array_slice( $group, $half );
				$stack[] = array_slice( $group, 0, $half );
				continue;
			}
			Learnomy_Webhooks_Outbox::refuse( (int) $group[0]->id, self::reason( $body, $status ) );
			++$summary['refused'];
		}
		return null;
	}

	/**
	 * The events a 422 names by index: index => "code: message".
	 *
	 * @param array|null $problem The problem+json body.
	 * @param int        $size    Events in the batch.
	 * @return array<int,string>
	 */
	private static function named_events( $problem, $size ) {
		$named = array();
		if ( ! is_array( $problem ) || ! isset( $problem['errors'] ) || ! is_array( $problem['errors'] ) ) {
			return $named;
		}
		$code = isset( $problem['code'] ) && is_string( $problem['code'] ) ? $problem['code'] : 'refused';
		foreach ( $problem['errors'] as $error ) {
			if ( ! is_array( $error ) || ! isset( $error['field'] ) || ! is_string( $error['field'] ) ) {
				continue;
			}
			if ( ! preg_match( '/^events\[(\d+)\]/', $error['field'], $m ) ) {
				continue;
			}
			$index = (int) $m[1];
			if ( $index >= $size ) {
				continue;
			}
			$message = isset( $error['message'] ) && is_string( $error['message'] ) ? $error['message'] : '';
			$field   = substr( $error['field'], strlen( $m[0] ) );
			$field   = ltrim( $field, '.' );
			// "unknown_event: …" names the event itself; other fields are named.
			if ( '' !== $field && 'event' !== $field ) {
				$message = $field . ' ' . $message;
			}
			$reason          = $code . ( '' !== $message ? ': ' . $message : '' );
			$named[ $index ] = isset( $named[ $index ] ) ? $named[ $index ] . '; ' . $reason : $reason;
		}
		return $named;
	}

	/**
	 * Why a lone event was refused.
	 *
	 * @param array|null $problem The problem+json body.
	 * @param int        $status  HTTP status.
	 * @return string
	 */
	private static function reason( $problem, $status ) {
		if ( 413 === $status ) {
			return __( 'too large: the service refused the event as larger than its request limit', 'learnomy-webhooks' );
		}
		$code   = is_array( $problem ) && isset( $problem['code'] ) && is_string( $problem['code'] ) ? $problem['code'] : 'HTTP ' . $status;
		$detail = is_array( $problem ) && isset( $problem['detail'] ) && is_string( $problem['detail'] ) ? $problem['detail'] : '';
		return $code . ( '' !== $detail ? ': ' . $detail : '' );
	}

	/**
	 * The service accepted a batch: clear the back-off.
	 */
	private static function record_success() {
		update_option( self::LAST_SUCCESS_OPTION, time(), false );
		if ( false !== get_option( self::BACKOFF_OPTION ) ) {
			delete_option( self::BACKOFF_OPTION );
		}
	}

	/**
	 * The service failed: remember why and back off request-time flushing (60 s, doubling, 15 min).
	 *
	 * @param string $message What went wrong.
	 */
	private static function record_failure( $message ) {
		$now = time();
		update_option(
			self::LAST_ERROR_OPTION,
			array(
				'time'    => $now,
				'message' => $message,
			),
			false
		);
		$state = self::backoff();
		$delay = null === $state ? self::BACKOFF_MIN : min( self::BACKOFF_MAX, max( self::BACKOFF_MIN, $state['delay'] * 2 ) );
		update_option(
			self::BACKOFF_OPTION,
			array(
				'until' => $now + $delay,
				'delay' => $delay,
				'since' => null === $state ? $now : $state['since'],
			),
			true
		);
	}
}
