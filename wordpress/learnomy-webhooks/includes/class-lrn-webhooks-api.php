<?php
/**
 * The service's webhook-management API (webhooks, catalogue, tests, the delivery log), from PHP.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * Typed calls to /api/v1 with the token of the connection. Every call answers the `data` of the
 * service's envelope (or the whole body where it matters), or a WP_Error:
 *
 * - `lrn_webhooks_not_configured`: no URL or token;
 * - `lrn_webhooks_unreachable`: the service does not answer (its message says where);
 * - `lrn_webhooks_problem`: the service answered with a problem; the error data holds `status`,
 *   `code`, `detail` and `errors` (a list of `field` / `message`).
 */
class Learnomy_Webhooks_Api {

	/** Seconds a Test may take: the service's connect and request timeouts, and some margin. */
	const TEST_TIMEOUT = 30;

	/** A webhook id: `wh_` and a ULID. */
	const WEBHOOK_ID = '/^wh_[0-9A-Za-z]{26}$/';

	/** A delivery id: `dlv_` and a ULID. */
	const DELIVERY_ID = '/^dlv_[0-9A-Za-z]{26}$/';

	/** A delivery-log cursor as the service writes them (base64url). */
	const CURSOR = '/^[A-Za-z0-9_-]{1,200}$/';

	/** Delivery statuses the log can be filtered by. */
	const DELIVERY_STATUSES = array( 'delivered', 'failed', 'pending', 'retrying' );

	/**
	 * The catalogue, once per request.
	 *
	 * @var array|null
	 */
	private static $catalogue = null;

	/**
	 * Whether `$id` looks like a webhook id.
	 *
	 * @param mixed $id Candidate.
	 * @return bool
	 */
	public static function is_webhook_id( $id ) {
		return is_string( $id ) && 1 === preg_match( self::WEBHOOK_ID, $id );
	}

	/**
	 * Whether `$id` looks like a delivery id.
	 *
	 * @param mixed $id Candidate.
	 * @return bool
	 */
	public static function is_delivery_id( $id ) {
		return is_string( $id ) && 1 === preg_match( self::DELIVERY_ID, $id );
	}

	/**
	 * Whether `$cursor` looks like a cursor of the delivery log.
	 *
	 * @param mixed $cursor Candidate.
	 * @return bool
	 */
	public static function is_cursor( $cursor ) {
		return is_string( $cursor ) && 1 === preg_match( self::CURSOR, $cursor );
	}

	/**
	 * One call: the decoded body of a 2xx answer (an empty array for 204), or a WP_Error.
	 *
	 * @param string     $method  HTTP method.
	 * @param string     $path    Path under /api/v1, starting with '/'.
	 * @param array|null $body    JSON body.
	 * @param int        $timeout Seconds (0: the connection's default).
	 * @return array|WP_Error
	 */
	public static function call( $method, $path, $body = null, $timeout = 0 ) {
		if ( ! Learnomy_Webhooks_Connection::is_configured() ) {
			return new WP_Error( 'lrn_webhooks_not_configured', __( 'The Learnomy Webhooks service is not connected yet: set its URL and a token (scopes events:write and webhooks:manage) in the Connection section of Learnomy > Webhooks.', 'learnomy-webhooks' ) );
		}
		$response = Learnomy_Webhooks_Connection::request( $method, '/api/v1' . $path, $body, $timeout );
		if ( is_wp_error( $response ) ) {
			return new WP_Error(
				'lrn_webhooks_unreachable',
				sprintf(
					/* translators: 1: the service's URL, 2: the connection error */
					__( 'The Learnomy Webhooks service does not answer at %1$s (%2$s). Webhooks cannot be listed or changed until it is back; events wait in the outbox meanwhile.', 'learnomy-webhooks' ),
					Learnomy_Webhooks_Connection::url(),
					$response->get_error_message()
				)
			);
		}
		$status  = (int) wp_remote_retrieve_response_code( $response );
		$decoded = Learnomy_Webhooks_Connection::json( $response );
		if ( $status >= 200 && $status < 300 ) {
			return is_array( $decoded ) ? $decoded : array();
		}
		$problem = is_array( $decoded ) ? $decoded : array();
		$code    = isset( $problem['code'] ) && is_string( $problem['code'] ) ? $problem['code'] : '';
		$detail  = isset( $problem['detail'] ) && is_string( $problem['detail'] ) ? $problem['detail'] : '';
		if ( '' === $detail ) {
			$detail = isset( $problem['title'] ) && is_string( $problem['title'] ) ? $problem['title'] : '';
		}
		$errors = array();
		if ( isset( $problem['errors'] ) && is_array( $problem['errors'] ) ) {
			foreach ( $problem['errors'] as $error ) {
				if ( is_array( $error ) && isset( $error['field'], $error['message'] ) && is_string( $error['field'] ) && is_string( $error['message'] ) ) {
					$errors[] = array(
						'field'   => $error['field'],
						'message' => $error['message'],
					);
				}
			}
		}
		if ( '' === $code && '' === $detail ) {
			// Not the service's problem+json: something else answers at that URL.
			$message = sprintf(
				/* translators: 1: the service's URL, 2: HTTP status code */
				__( 'Something answers at %1$s, but not as a Learnomy Webhooks service (HTTP %2$d). Check the service URL in the Connection section of Learnomy > Webhooks.', 'learnomy-webhooks' ),
				Learnomy_Webhooks_Connection::url(),
				$status
			);
		} elseif ( 401 === $status ) {
			$message = __( 'The Learnomy Webhooks service refused the token. Create a token with --scope events:write --scope webhooks:manage and save it in the Connection section of Learnomy > Webhooks.', 'learnomy-webhooks' );
		} elseif ( 'forbidden' === $code ) {
			$message = __( 'This token may report events but not manage webhooks. Create a token with --scope events:write --scope webhooks:manage and save it in the Connection section of Learnomy > Webhooks.', 'learnomy-webhooks' );
		} else {
			$message = '' !== $detail ? $detail : sprintf(
				/* translators: %d: HTTP status code */
				__( 'HTTP %d', 'learnomy-webhooks' ),
				$status
			);
		}
		return new WP_Error(
			'lrn_webhooks_problem',
			$message,
			array(
				'status' => $status,
				'code'   => $code,
				'detail' => $detail,
				'errors' => $errors,
			)
		);
	}

	/**
	 * The service's problem code of an error ('' when it is not a problem answer).
	 *
	 * @param WP_Error $error An error of call().
	 * @return string
	 */
	public static function problem_code( $error ) {
		$data = $error->get_error_data();
		return is_array( $data ) && isset( $data['code'] ) ? (string) $data['code'] : '';
	}

	/**
	 * The per-field problems of an error (a list of `field` / `message`).
	 *
	 * @param WP_Error $error An error of call().
	 * @return array
	 */
	public static function field_errors( $error ) {
		$data = $error->get_error_data();
		return is_array( $data ) && isset( $data['errors'] ) && is_array( $data['errors'] ) ? $data['errors'] : array();
	}

	/**
	 * Every webhook and the slot usage: `{data: [...], usage: {used, limit, plan}}`.
	 *
	 * @return array|WP_Error
	 */
	public static function webhooks() {
		$body = self::call( 'GET', '/webhooks' );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		$list  = isset( $body['data'] ) && is_array( $body['data'] ) ? array_values( array_filter( $body['data'], array( __CLASS__, 'is_webhook' ) ) ) : array();
		$usage = isset( $body['usage'] ) && is_array( $body['usage'] ) ? $body['usage'] : array();
		return array(
			'data'  => $list,
			'usage' => array(
				'used'  => isset( $usage['used'] ) ? (int) $usage['used'] : count( $list ),
				'limit' => isset( $usage['limit'] ) && is_numeric( $usage['limit'] ) ? (int) $usage['limit'] : null,
				'plan'  => isset( $usage['plan'] ) && 'pro' === $usage['plan'] ? 'pro' : 'free',
			),
		);
	}

	/**
	 * Whether a decoded value is a webhook as the API shows it.
	 *
	 * @param mixed $webhook Candidate.
	 * @return bool
	 */
	public static function is_webhook( $webhook ) {
		return is_array( $webhook ) && isset( $webhook['id'], $webhook['url'], $webhook['events'], $webhook['status'] )
			&& self::is_webhook_id( $webhook['id'] ) && is_string( $webhook['url'] ) && is_array( $webhook['events'] ) && is_string( $webhook['status'] );
	}

	/**
	 * One webhook.
	 *
	 * @param string $id Webhook id.
	 * @return array|WP_Error
	 */
	public static function webhook( $id ) {
		if ( ! self::is_webhook_id( $id ) ) {
			return self::not_found();
		}
		$body = self::call( 'GET', '/webhooks/' . $id );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		return isset( $body['data'] ) && self::is_webhook( $body['data'] ) ? $body['data'] : self::not_found();
	}

	/**
	 * The event catalogue of the service's plan (a list of slug, label, description, group, pro).
	 *
	 * @return array|WP_Error
	 */
	public static function catalogue() {
		if ( null !== self::$catalogue ) {
			return self::$catalogue;
		}
		$body = self::call( 'GET', '/catalogue' );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		$entries = array();
		foreach ( isset( $body['data'] ) && is_array( $body['data'] ) ? $body['data'] : array() as $entry ) {
			if ( is_array( $entry ) && isset( $entry['slug'] ) && is_string( $entry['slug'] ) ) {
				$entries[] = array(
					'slug'        => $entry['slug'],
					'label'       => isset( $entry['label'] ) && is_string( $entry['label'] ) ? $entry['label'] : $entry['slug'],
					'description' => isset( $entry['description'] ) && is_string( $entry['description'] ) ? $entry['description'] : '',
					'group'       => isset( $entry['group'] ) && is_string( $entry['group'] ) ? $entry['group'] : '',
					'pro'         => ! empty( $entry['pro'] ),
				);
			}
		}
		self::$catalogue = $entries;
		return $entries;
	}

	/**
	 * Creates a webhook. The answer carries the secret; callers must not keep or show it.
	 *
	 * @param string $url    Delivery URL.
	 * @param array  $events Event slugs.
	 * @param string $secret   The secret key ('' lets the service choose one).
	 * @param string $format   The body format (`learnomy`, `slack`, `discord`, `teams`,
	 *                         `google_chat` or `template`).
	 * @param string $template The template, with the `template` format.
	 * @param string $ordering The delivery order: `none` or `by_key` (one learner's events in
	 *                         order).
	 * @return array|WP_Error The new webhook.
	 */
	public static function create( $url, $events, $secret, $format = 'learnomy', $template = '', $ordering = 'none' ) {
		$request = array(
			'url'      => $url,
			'events'   => array_values( $events ),
			'format'   => '' === $format ? 'learnomy' : $format,
			'ordering' => '' === $ordering ? 'none' : $ordering,
		);
		if ( '' !== $secret ) {
			$request['secret'] = $secret;
		}
		if ( 'template' === $format ) {
			$request['template'] = $template;
		}
		$body = self::call( 'POST', '/webhooks', $request );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		$webhook = isset( $body['data'] ) && is_array( $body['data'] ) ? $body['data'] : array();
		unset( $webhook['secret'] );
		return $webhook;
	}

	/**
	 * Changes a webhook's URL, events or status (only the fields given).
	 *
	 * @param string $id     Webhook id.
	 * @param array  $fields `url`, `events`, `status`, `format`, `template`, `ordering`.
	 * @return array|WP_Error The webhook.
	 */
	public static function update( $id, $fields ) {
		if ( ! self::is_webhook_id( $id ) ) {
			return self::not_found();
		}
		if ( isset( $fields['events'] ) ) {
			$fields['events'] = array_values( $fields['events'] );
		}
		$body = self::call( 'PATCH', '/webhooks/' . $id, $fields );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		return isset( $body['data'] ) && is_array( $body['data'] ) ? $body['data'] : array();
	}

	/**
	 * The body a format (or a template) would send for an event's example data; nothing is
	 * sent.
	 *
	 * @param string $format   A format name.
	 * @param string $template The template, with the `template` format.
	 * @param string $event    An event slug of the catalogue.
	 * @return string|WP_Error
	 */
	public static function preview( $format, $template, $event ) {
		$request = array(
			'format' => $format,
			'event'  => $event,
		);
		if ( 'template' === $format ) {
			$request['template'] = $template;
		}
		$body = self::call( 'POST', '/formats/preview', $request );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		return isset( $body['data']['body'] ) && is_string( $body['data']['body'] ) ? $body['data']['body'] : '';
	}

	/**
	 * Deletes a webhook.
	 *
	 * @param string $id Webhook id.
	 * @return true|WP_Error
	 */
	public static function delete( $id ) {
		if ( ! self::is_webhook_id( $id ) ) {
			return self::not_found();
		}
		$body = self::call( 'DELETE', '/webhooks/' . $id );
		return is_wp_error( $body ) ? $body : true;
	}

	/**
	 * Sends a test ping now: `{delivered, status_code, duration_ms, error}`.
	 *
	 * @param string $id Webhook id.
	 * @return array|WP_Error
	 */
	public static function test( $id ) {
		if ( ! self::is_webhook_id( $id ) ) {
			return self::not_found();
		}
		$body = self::call( 'POST', '/webhooks/' . $id . '/test', null, self::TEST_TIMEOUT );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		$data = isset( $body['data'] ) && is_array( $body['data'] ) ? $body['data'] : array();
		return array(
			'delivered'   => ! empty( $data['delivered'] ),
			'status_code' => isset( $data['status_code'] ) && is_numeric( $data['status_code'] ) ? (int) $data['status_code'] : null,
			'duration_ms' => isset( $data['duration_ms'] ) ? (int) $data['duration_ms'] : 0,
			'error'       => isset( $data['error'] ) && is_string( $data['error'] ) && '' !== $data['error'] ? $data['error'] : null,
		);
	}

	/**
	 * A page of a webhook's delivery log, newest first (Pro): `{data: [...], next_cursor}`.
	 *
	 * @param string $id     Webhook id.
	 * @param string $status '' for all, else one of DELIVERY_STATUSES.
	 * @param string $cursor '' for the first page.
	 * @param int    $limit  Page size.
	 * @return array|WP_Error
	 */
	public static function deliveries( $id, $status, $cursor, $limit ) {
		if ( ! self::is_webhook_id( $id ) ) {
			return self::not_found();
		}
		$query = array( 'limit' => (int) $limit );
		if ( in_array( $status, self::DELIVERY_STATUSES, true ) ) {
			$query['status'] = $status;
		}
		if ( self::is_cursor( $cursor ) ) {
			$query['cursor'] = $cursor;
		}
		$body = self::call( 'GET', '/webhooks/' . $id . '/deliveries?' . http_build_query( $query, '', '&', PHP_QUERY_RFC3986 ) );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		$rows = array();
		foreach ( isset( $body['data'] ) && is_array( $body['data'] ) ? $body['data'] : array() as $row ) {
			if ( is_array( $row ) && isset( $row['id'] ) && self::is_delivery_id( $row['id'] ) ) {
				$rows[] = $row;
			}
		}
		return array(
			'data'        => $rows,
			'next_cursor' => isset( $body['next_cursor'] ) && self::is_cursor( $body['next_cursor'] ) ? $body['next_cursor'] : null,
		);
	}

	/**
	 * One delivery with `attempts_log` and `payload` (Pro).
	 *
	 * @param string $id Delivery id.
	 * @return array|WP_Error
	 */
	public static function delivery( $id ) {
		if ( ! self::is_delivery_id( $id ) ) {
			return self::not_found();
		}
		$body = self::call( 'GET', '/deliveries/' . $id );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		return isset( $body['data'] ) && is_array( $body['data'] ) ? $body['data'] : self::not_found();
	}

	/**
	 * Queues a delivery again (Pro).
	 *
	 * @param string $id Delivery id.
	 * @return array|WP_Error The delivery.
	 */
	public static function redeliver( $id ) {
		if ( ! self::is_delivery_id( $id ) ) {
			return self::not_found();
		}
		$body = self::call( 'POST', '/deliveries/' . $id . '/redeliver' );
		if ( is_wp_error( $body ) ) {
			return $body;
		}
		return isset( $body['data'] ) && is_array( $body['data'] ) ? $body['data'] : array();
	}

	/**
	 * The error for an id that cannot exist.
	 *
	 * @return WP_Error
	 */
	private static function not_found() {
		return new WP_Error(
			'lrn_webhooks_problem',
			__( 'There is no such webhook or delivery (it may have been deleted).', 'learnomy-webhooks' ),
			array(
				'status' => 404,
				'code'   => 'not_found',
				'detail' => '',
				'errors' => array(),
			)
		);
	}
}
