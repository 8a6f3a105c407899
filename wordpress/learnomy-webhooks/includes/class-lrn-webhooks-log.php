<?php
/**
 * The Pro Delivery Log of a webhook: deliveries newest first, filters and pages (without a page
 * reload when JavaScript runs), the detail of each delivery and Redeliver.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * `admin.php?page=learnomy-webhooks&view=log&webhook=wh_…` and `&view=delivery&delivery=dlv_…`.
 */
class Learnomy_Webhooks_Log {

	/** Deliveries per page. */
	const PAGE_SIZE = 20;

	/** Cursors of the pages before the current one, joined by this (not a base64url character). */
	const TRAIL_SEPARATOR = '.';

	/** Pages remembered for Previous. */
	const TRAIL_MAX = 50;

	/**
	 * Registers the admin-post and admin-ajax actions.
	 */
	public static function register() {
		add_action( 'admin_post_lrn_webhooks_redeliver', array( __CLASS__, 'handle_redeliver' ) );
		add_action( 'wp_ajax_lrn_webhooks_log_rows', array( __CLASS__, 'ajax_rows' ) );
	}

	/**
	 * The filters: status => label.
	 *
	 * @return array
	 */
	public static function filters() {
		return array(
			''          => __( 'All', 'learnomy-webhooks' ),
			'delivered' => __( 'Delivered', 'learnomy-webhooks' ),
			'failed'    => __( 'Failed', 'learnomy-webhooks' ),
			'pending'   => __( 'Pending', 'learnomy-webhooks' ),
			'retrying'  => __( 'Retrying', 'learnomy-webhooks' ),
		);
	}

	/**
	 * A delivery status in words.
	 *
	 * @param string $status pending, retrying, delivered or failed.
	 * @return string
	 */
	public static function status_label( $status ) {
		$filters = self::filters();
		return '' !== $status && isset( $filters[ $status ] ) ? $filters[ $status ] : (string) $status;
	}

	/**
	 * Where the log is: webhook, status filter, cursor and the cursors of the pages before.
	 *
	 * @param array $source Raw values (from $_GET, or the admin-ajax request).
	 * @return array{webhook:string,status:string,cursor:string,trail:array}
	 */
	private static function position( $source ) {
		$get     = function ( $name ) use ( $source ) {
			return isset( $source[ $name ] ) && is_string( $source[ $name ] ) ? sanitize_text_field( wp_unslash( $source[ $name ] ) ) : '';
		};
		$webhook = $get( 'webhook' );
		$status  = $get( 'status' );
		$cursor  = $get( 'cursor' );
		$trail   = array();
		foreach ( '' === $get( 'trail' ) ? array() : explode( self::TRAIL_SEPARATOR, $get( 'trail' ) ) as $before ) {
			if ( Learnomy_Webhooks_Api::is_cursor( $before ) ) {
				$trail[] = $before;
			}
		}
		return array(
			'webhook' => Learnomy_Webhooks_Api::is_webhook_id( $webhook ) ? $webhook : '',
			'status'  => in_array( $status, Learnomy_Webhooks_Api::DELIVERY_STATUSES, true ) ? $status : '',
			'cursor'  => Learnomy_Webhooks_Api::is_cursor( $cursor ) ? $cursor : '',
			'trail'   => array_slice( $trail, -self::TRAIL_MAX ),
		);
	}

	/**
	 * The log's URL at a position.
	 *
	 * @param string $webhook Webhook id.
	 * @param string $status  Filter.
	 * @param string $cursor  Cursor ('' for the newest page).
	 * @param array  $trail   Cursors of the pages before.
	 * @return string
	 */
	private static function log_url( $webhook, $status = '', $cursor = '', $trail = array() ) {
		$args = array(
			'view'    => 'log',
			'webhook' => $webhook,
		);
		if ( '' !== $status ) {
			$args['status'] = $status;
		}
		if ( '' !== $cursor ) {
			$args['cursor'] = $cursor;
		}
		if ( $trail ) {
			$args['trail'] = implode( self::TRAIL_SEPARATOR, $trail );
		}
		return Learnomy_Webhooks_Manage::url( $args );
	}

	/**
	 * A delivery's detail URL.
	 *
	 * @param string $webhook  Webhook id.
	 * @param string $delivery Delivery id.
	 * @return string
	 */
	private static function delivery_url( $webhook, $delivery ) {
		return Learnomy_Webhooks_Manage::url(
			array(
				'view'     => 'delivery',
				'webhook'  => $webhook,
				'delivery' => $delivery,
			)
		);
	}

	/**
	 * The breadcrumb: Webhooks / Delivery Log (/ Delivery).
	 *
	 * @param string $webhook  Webhook id ('' when unknown).
	 * @param bool   $delivery Whether a delivery is shown.
	 */
	private static function breadcrumb( $webhook, $delivery ) {
		echo '<nav class="lrn-webhooks-breadcrumb" aria-label="' . esc_attr__( 'Breadcrumb', 'learnomy-webhooks' ) . '"><a href="' . esc_url( Learnomy_Webhooks_Manage::url() ) . '">' . esc_html__( 'Webhooks', 'learnomy-webhooks' ) . '</a> / ';
		if ( $delivery && '' !== $webhook ) {
			echo '<a href="' . esc_url( self::log_url( $webhook ) ) . '">' . esc_html__( 'Delivery Log', 'learnomy-webhooks' ) . '</a> / <span aria-current="page">' . esc_html__( 'Delivery', 'learnomy-webhooks' ) . '</span>';
		} else {
			echo '<span aria-current="page">' . esc_html__( 'Delivery Log', 'learnomy-webhooks' ) . '</span>';
		}
		echo '</nav>';
	}

	/**
	 * The notice shown instead of the log on Free.
	 */
	private static function pro_notice() {
		echo '<div class="notice notice-info inline lrn-webhooks-pro-notice" id="lrn-webhooks-pro-notice">';
		echo '<p><span class="lrn-webhooks-pro-badge">' . esc_html__( 'Pro', 'learnomy-webhooks' ) . '</span> <strong>' . esc_html__( 'Pro feature. Available in Learnomy Pro.', 'learnomy-webhooks' ) . '</strong></p>';
		echo '<p>' . esc_html__( 'The Webhook Delivery Log gives a per-webhook history of every outbound delivery, response code and retry, with the detail of each attempt and a Redeliver action.', 'learnomy-webhooks' ) . '</p>';
		echo '<p><a class="button" href="' . esc_url( Learnomy_Webhooks_Manage::url( array( 'view' => 'pro' ) ) ) . '">' . esc_html__( 'See the Pro Features page', 'learnomy-webhooks' ) . '</a></p>';
		echo '</div>';
	}

	/**
	 * Shows the Pro notice or the error for an API error; true when it was shown.
	 *
	 * @param mixed $result An API result.
	 * @return bool
	 */
	private static function refused( $result ) {
		if ( ! is_wp_error( $result ) ) {
			return false;
		}
		if ( 'pro_required' === Learnomy_Webhooks_Api::problem_code( $result ) ) {
			self::pro_notice();
		} else {
			Learnomy_Webhooks_Manage::render_error( $result );
		}
		return true;
	}

	/**
	 * The Delivery Log page.
	 */
	public static function render_log() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- a read-only view; every value is validated.
		$at = self::position( $_GET );
		echo '<h1>' . esc_html__( 'Delivery Log', 'learnomy-webhooks' ) . '</h1>';
		self::breadcrumb( $at['webhook'], false );
		Learnomy_Webhooks_Admin::render_flash();
		$webhook = Learnomy_Webhooks_Api::webhook( $at['webhook'] );
		if ( self::refused( $webhook ) ) {
			return;
		}
		$page = Learnomy_Webhooks_Api::deliveries( $webhook['id'], $at['status'], $at['cursor'], self::PAGE_SIZE );
		if ( 'pro_required' === ( is_wp_error( $page ) ? Learnomy_Webhooks_Api::problem_code( $page ) : '' ) ) {
			self::refused( $page );
			return;
		}
		echo '<p class="lrn-webhooks-endpoint">' . esc_html__( 'Endpoint:', 'learnomy-webhooks' ) . ' <span class="code" title="' . esc_attr( $webhook['url'] ) . '">' . esc_html( Learnomy_Webhooks_Manage::truncate( $webhook['url'], 80 ) ) . '</span> <span class="' . esc_attr( 'lrn-webhooks-status lrn-webhooks-status-' . sanitize_html_class( $webhook['status'] ) ) . '">' . esc_html( Learnomy_Webhooks_Manage::status_label( $webhook['status'] ) ) . '</span></p>';

		$catalogue = Learnomy_Webhooks_Api::catalogue();
		$labels    = Learnomy_Webhooks_Manage::labels( is_wp_error( $catalogue ) ? array() : $catalogue );

		echo '<div class="lrn-webhooks-filters" role="group" aria-label="' . esc_attr__( 'Show deliveries', 'learnomy-webhooks' ) . '" data-lrn-ajax="' . esc_url( admin_url( 'admin-ajax.php' ) ) . '" data-lrn-webhook="' . esc_attr( $webhook['id'] ) . '" data-lrn-nonce="' . esc_attr( wp_create_nonce( 'lrn_webhooks_log_' . $webhook['id'] ) ) . '">';
		foreach ( self::filters() as $value => $label ) {
			$pressed = $value === $at['status'];
			echo '<a class="button' . ( $pressed ? ' button-primary' : '' ) . '" href="' . esc_url( self::log_url( $webhook['id'], $value ) ) . '" data-lrn-status="' . esc_attr( $value ) . '" aria-pressed="' . ( $pressed ? 'true' : 'false' ) . '">' . esc_html( $label ) . '</a> ';
		}
		echo '</div>';
		echo '<div id="lrn-webhooks-log-rows" class="lrn-webhooks-log-rows" aria-live="polite">';
		self::render_rows( $webhook['id'], $at, $page, $labels );
		echo '</div>';
	}

	/**
	 * The rows and the pager (also the admin-ajax answer).
	 *
	 * @param string         $webhook Webhook id.
	 * @param array          $at      Position.
	 * @param array|WP_Error $page    The API's page.
	 * @param array          $labels  Event labels.
	 */
	private static function render_rows( $webhook, $at, $page, $labels ) {
		if ( is_wp_error( $page ) ) {
			Learnomy_Webhooks_Manage::render_error( $page );
			return;
		}
		if ( ! $page['data'] ) {
			echo '<p class="lrn-webhooks-empty">' . esc_html( '' === $at['status'] ? __( 'No deliveries yet. Deliveries appear here as events are sent to this webhook.', 'learnomy-webhooks' ) : __( 'No deliveries with this status.', 'learnomy-webhooks' ) ) . '</p>';
		} else {
			echo '<div class="lrn-webhooks-table-wrap"><table class="widefat striped lrn-webhooks-log" id="lrn-webhooks-log-table"><thead><tr>';
			echo '<th scope="col">' . esc_html__( 'Event', 'learnomy-webhooks' ) . '</th>';
			echo '<th scope="col">' . esc_html__( 'Status', 'learnomy-webhooks' ) . '</th>';
			echo '<th scope="col">' . esc_html__( 'Attempts', 'learnomy-webhooks' ) . '</th>';
			echo '<th scope="col">' . esc_html__( 'Response', 'learnomy-webhooks' ) . '</th>';
			echo '<th scope="col">' . esc_html__( 'Event time', 'learnomy-webhooks' ) . '</th>';
			echo '<th scope="col">' . esc_html__( 'Last attempt', 'learnomy-webhooks' ) . '</th>';
			echo '<th scope="col"><span class="screen-reader-text">' . esc_html__( 'Details', 'learnomy-webhooks' ) . '</span></th>';
			echo '</tr></thead><tbody>';
			foreach ( $page['data'] as $delivery ) {
				$event  = isset( $delivery['event'] ) ? (string) $delivery['event'] : '';
				$status = isset( $delivery['status'] ) ? (string) $delivery['status'] : '';
				echo '<tr data-delivery="' . esc_attr( $delivery['id'] ) . '">';
				echo '<td><span class="lrn-webhooks-badge" title="' . esc_attr( $event ) . '">' . esc_html( isset( $labels[ $event ] ) ? $labels[ $event ] : $event ) . '</span></td>';
				echo '<td><span class="' . esc_attr( 'lrn-webhooks-delivery lrn-webhooks-delivery-' . sanitize_html_class( $status ) ) . '">' . esc_html( self::status_label( $status ) ) . '</span>';
				if ( ! empty( $delivery['series_start'] ) ) {
					echo ' <span class="lrn-webhooks-badge lrn-webhooks-redelivered">' . esc_html__( 'Redelivered', 'learnomy-webhooks' ) . '</span>';
				}
				echo '</td>';
				echo '<td>' . esc_html( number_format_i18n( isset( $delivery['attempts'] ) ? (int) $delivery['attempts'] : 0 ) ) . '</td>';
				echo '<td>';
				if ( isset( $delivery['response_code'] ) && is_numeric( $delivery['response_code'] ) ) {
					echo '<span class="lrn-webhooks-code">' . esc_html( (string) (int) $delivery['response_code'] ) . '</span>';
				} elseif ( isset( $delivery['error'] ) && is_string( $delivery['error'] ) && '' !== $delivery['error'] ) {
					echo '<span class="lrn-webhooks-muted" title="' . esc_attr( $delivery['error'] ) . '">' . esc_html( Learnomy_Webhooks_Manage::truncate( $delivery['error'], 40 ) ) . '</span>';
				} else {
					echo '—';
				}
				echo '</td>';
				echo '<td>' . Learnomy_Webhooks_Manage::time_html( isset( $delivery['created_at'] ) ? $delivery['created_at'] : null ) . '</td>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped by time_html().
				echo '<td>' . Learnomy_Webhooks_Manage::time_html( isset( $delivery['last_attempt_at'] ) ? $delivery['last_attempt_at'] : null ) . '</td>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped by time_html().
				echo '<td><a href="' . esc_url( self::delivery_url( $webhook, $delivery['id'] ) ) . '">' . esc_html__( 'Details', 'learnomy-webhooks' ) . '<span class="screen-reader-text"> ' . esc_html( $delivery['id'] ) . '</span></a></td>';
				echo '</tr>';
			}
			echo '</tbody></table></div>';
		}
		$has_previous = '' !== $at['cursor'];
		$next         = $page['next_cursor'];
		if ( $has_previous || null !== $next ) {
			echo '<nav class="lrn-webhooks-pager" aria-label="' . esc_attr__( 'Delivery pages', 'learnomy-webhooks' ) . '">';
			if ( $has_previous ) {
				$trail  = $at['trail'];
				$cursor = (string) array_pop( $trail );
				echo '<a class="button" id="lrn-webhooks-previous" href="' . esc_url( self::log_url( $webhook, $at['status'], $cursor, $trail ) ) . '" data-lrn-cursor="' . esc_attr( $cursor ) . '" data-lrn-trail="' . esc_attr( implode( self::TRAIL_SEPARATOR, $trail ) ) . '">' . esc_html__( '← Previous (newer)', 'learnomy-webhooks' ) . '</a> ';
			}
			if ( null !== $next ) {
				$trail = $at['trail'];
				if ( $has_previous ) {
					$trail[] = $at['cursor'];
				}
				echo '<a class="button" id="lrn-webhooks-next" href="' . esc_url( self::log_url( $webhook, $at['status'], $next, $trail ) ) . '" data-lrn-cursor="' . esc_attr( $next ) . '" data-lrn-trail="' . esc_attr( implode( self::TRAIL_SEPARATOR, $trail ) ) . '">' . esc_html__( 'Next (older) →', 'learnomy-webhooks' ) . '</a>';
			}
			echo '</nav>';
		}
	}

	/**
	 * The rows for a filter or page, rendered here for the script (admin-ajax, nonce checked).
	 */
	public static function ajax_rows() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- checked just below.
		$at = self::position( $_GET );
		if ( ! current_user_can( Learnomy_Webhooks_Admin::CAP ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage Learnomy Webhooks.', 'learnomy-webhooks' ), 403 );
		}
		check_ajax_referer( 'lrn_webhooks_log_' . $at['webhook'] );
		$page      = '' === $at['webhook'] ? new WP_Error( 'lrn_webhooks_problem', __( 'There is no such webhook or delivery (it may have been deleted).', 'learnomy-webhooks' ) ) : Learnomy_Webhooks_Api::deliveries( $at['webhook'], $at['status'], $at['cursor'], self::PAGE_SIZE );
		$catalogue = Learnomy_Webhooks_Api::catalogue();
		ob_start();
		self::render_rows( $at['webhook'], $at, $page, Learnomy_Webhooks_Manage::labels( is_wp_error( $catalogue ) ? array() : $catalogue ) );
		$html = (string) ob_get_clean();
		wp_send_json_success(
			array(
				'html' => $html,
				'url'  => self::log_url( $at['webhook'], $at['status'], $at['cursor'], $at['trail'] ),
			)
		);
	}

	/**
	 * An attempt's failure kind in words (the API's `error_kind`).
	 *
	 * @param string $kind timeout, connect, dns, tls, blocked or http_status.
	 * @return string
	 */
	public static function error_kind_label( $kind ) {
		$labels = array(
			'timeout'     => __( 'Timed out', 'learnomy-webhooks' ),
			'connect'     => __( 'Connection failed', 'learnomy-webhooks' ),
			'dns'         => __( 'Host not found', 'learnomy-webhooks' ),
			'tls'         => __( 'TLS error', 'learnomy-webhooks' ),
			'blocked'     => __( 'Blocked by the URL policy', 'learnomy-webhooks' ),
			'http_status' => __( 'HTTP error', 'learnomy-webhooks' ),
		);
		return isset( $labels[ $kind ] ) ? $labels[ $kind ] : $kind;
	}

	/**
	 * A row under an attempt with its request and response headers, shown on demand.
	 *
	 * @param array $attempt The attempt as the API returns it.
	 */
	private static function render_attempt_headers( $attempt ) {
		$sent     = isset( $attempt['request_headers'] ) && is_array( $attempt['request_headers'] ) ? $attempt['request_headers'] : null;
		$received = isset( $attempt['response_headers'] ) && is_array( $attempt['response_headers'] ) ? $attempt['response_headers'] : null;
		if ( null === $sent && null === $received ) {
			return;
		}
		$lines = function ( $headers ) {
			$text = array();
			foreach ( $headers as $name => $value ) {
				$text[] = $name . ': ' . ( is_scalar( $value ) ? (string) $value : '' );
			}
			return implode( "\n", $text );
		};
		echo '<tr class="lrn-webhooks-attempt-headers"><td colspan="5"><details><summary>';
		/* translators: %d: attempt number */
		echo esc_html( sprintf( __( 'Headers of attempt %d', 'learnomy-webhooks' ), isset( $attempt['number'] ) ? (int) $attempt['number'] : 0 ) );
		echo '</summary><div class="lrn-webhooks-headers"><div><h3>' . esc_html__( 'Request headers', 'learnomy-webhooks' ) . '</h3>';
		echo null === $sent ? '<p class="lrn-webhooks-muted">' . esc_html__( 'No request was sent.', 'learnomy-webhooks' ) . '</p>' : '<pre class="lrn-webhooks-excerpt">' . esc_html( $lines( $sent ) ) . '</pre>';
		echo '</div><div><h3>' . esc_html__( 'Response headers', 'learnomy-webhooks' ) . '</h3>';
		echo null === $received ? '<p class="lrn-webhooks-muted">' . esc_html__( 'No answer came.', 'learnomy-webhooks' ) . '</p>' : '<pre class="lrn-webhooks-excerpt">' . esc_html( $lines( $received ) ) . '</pre>';
		echo '</div></div></details></td></tr>';
	}

	/**
	 * One delivery: its facts, the attempts, the payload, and Redeliver.
	 */
	public static function render_delivery() {
		$webhook_id  = Learnomy_Webhooks_Manage::query_arg( 'webhook' );
		$webhook_id  = Learnomy_Webhooks_Api::is_webhook_id( $webhook_id ) ? $webhook_id : '';
		$delivery_id = Learnomy_Webhooks_Manage::query_arg( 'delivery' );
		echo '<h1>' . esc_html__( 'Delivery', 'learnomy-webhooks' ) . '</h1>';
		$delivery = Learnomy_Webhooks_Api::delivery( $delivery_id );
		if ( ! is_wp_error( $delivery ) && isset( $delivery['webhook_id'] ) && Learnomy_Webhooks_Api::is_webhook_id( $delivery['webhook_id'] ) ) {
			$webhook_id = $delivery['webhook_id'];
		}
		self::breadcrumb( $webhook_id, true );
		Learnomy_Webhooks_Admin::render_flash();
		if ( self::refused( $delivery ) ) {
			return;
		}
		$catalogue = Learnomy_Webhooks_Api::catalogue();
		$labels    = Learnomy_Webhooks_Manage::labels( is_wp_error( $catalogue ) ? array() : $catalogue );
		$event     = isset( $delivery['event'] ) ? (string) $delivery['event'] : '';
		$status    = isset( $delivery['status'] ) ? (string) $delivery['status'] : '';

		echo '<section class="lrn-webhooks-panel" aria-labelledby="lrn-webhooks-delivery-title">';
		echo '<h2 id="lrn-webhooks-delivery-title"><span class="code">' . esc_html( $delivery_id ) . '</span></h2>';
		echo '<table class="widefat striped lrn-webhooks-facts" id="lrn-webhooks-delivery-facts"><tbody>';
		$attempts_made = isset( $delivery['attempts'] ) ? (int) $delivery['attempts'] : 0;
		$series_start  = isset( $delivery['series_start'] ) ? (int) $delivery['series_start'] : 0;
		/* translators: %s: number of attempts */
		$attempts_text = sprintf( _n( '%s attempt', '%s attempts', $attempts_made, 'learnomy-webhooks' ), number_format_i18n( $attempts_made ) );
		if ( $series_start > 0 ) {
			/* translators: %d: number of the redelivery's first attempt */
			$attempts_text .= ' · ' . sprintf( __( 'Redelivered (attempts %d and later are the redelivery)', 'learnomy-webhooks' ), $series_start + 1 );
		}
		$facts = array(
			__( 'Event', 'learnomy-webhooks' )        => ( isset( $labels[ $event ] ) ? $labels[ $event ] : $event ) . ' (' . $event . ')',
			__( 'Status', 'learnomy-webhooks' )       => self::status_label( $status ),
			__( 'Attempts', 'learnomy-webhooks' )     => $attempts_text,
			__( 'Event time', 'learnomy-webhooks' )   => Learnomy_Webhooks_Manage::when( isset( $delivery['created_at'] ) ? $delivery['created_at'] : null ),
			__( 'Last attempt', 'learnomy-webhooks' ) => Learnomy_Webhooks_Manage::when( isset( $delivery['last_attempt_at'] ) ? $delivery['last_attempt_at'] : null ),
		);
		if ( isset( $delivery['next_attempt_at'] ) && is_string( $delivery['next_attempt_at'] ) ) {
			$facts[ __( 'Next attempt', 'learnomy-webhooks' ) ] = Learnomy_Webhooks_Manage::when( $delivery['next_attempt_at'] );
		}
		if ( isset( $delivery['error'] ) && is_string( $delivery['error'] ) && '' !== $delivery['error'] ) {
			$facts[ __( 'Last error', 'learnomy-webhooks' ) ] = $delivery['error'];
		}
		if ( isset( $delivery['event_id'] ) && is_string( $delivery['event_id'] ) ) {
			$facts[ __( 'Event id', 'learnomy-webhooks' ) ] = $delivery['event_id'];
		}
		$status_name = __( 'Status', 'learnomy-webhooks' );
		foreach ( $facts as $name => $value ) {
			echo '<tr><th scope="row">' . esc_html( $name ) . '</th><td>';
			if ( $name === $status_name ) {
				echo '<span class="' . esc_attr( 'lrn-webhooks-delivery lrn-webhooks-delivery-' . sanitize_html_class( $status ) ) . '">' . esc_html( $value ) . '</span>';
			} else {
				echo esc_html( $value );
			}
			echo '</td></tr>';
		}
		echo '</tbody></table>';
		if ( in_array( $status, array( 'delivered', 'failed' ), true ) ) {
			echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '" class="lrn-webhooks-redeliver">';
			echo '<input type="hidden" name="action" value="lrn_webhooks_redeliver" />';
			echo '<input type="hidden" name="delivery" value="' . esc_attr( $delivery_id ) . '" />';
			echo '<input type="hidden" name="webhook" value="' . esc_attr( $webhook_id ) . '" />';
			echo '<input type="hidden" name="_wpnonce" value="' . esc_attr( wp_create_nonce( 'lrn_webhooks_redeliver_' . $delivery_id ) ) . '" />';
			echo '<p><button type="submit" class="button button-primary" id="lrn-webhooks-redeliver">' . esc_html__( 'Redeliver', 'learnomy-webhooks' ) . '</button> <span class="description">' . esc_html__( 'Queues a new series of attempts with the same payload and delivery id.', 'learnomy-webhooks' ) . '</span></p>';
			echo '</form>';
		} else {
			echo '<p class="description">' . esc_html__( 'This delivery is still queued; Redeliver becomes available once it is delivered or has failed.', 'learnomy-webhooks' ) . '</p>';
		}
		echo '</section>';

		echo '<section class="lrn-webhooks-panel" aria-labelledby="lrn-webhooks-attempts-title"><h2 id="lrn-webhooks-attempts-title">' . esc_html__( 'Attempts', 'learnomy-webhooks' ) . '</h2>';
		$attempts = isset( $delivery['attempts_log'] ) && is_array( $delivery['attempts_log'] ) ? $delivery['attempts_log'] : array();
		if ( ! $attempts ) {
			echo '<p class="lrn-webhooks-empty">' . esc_html__( 'Not attempted yet.', 'learnomy-webhooks' ) . '</p>';
		} else {
			echo '<div class="lrn-webhooks-table-wrap"><table class="widefat striped lrn-webhooks-attempts" id="lrn-webhooks-attempts"><thead><tr>';
			echo '<th scope="col">#</th><th scope="col">' . esc_html__( 'Started', 'learnomy-webhooks' ) . '</th><th scope="col">' . esc_html__( 'Duration', 'learnomy-webhooks' ) . '</th><th scope="col">' . esc_html__( 'Result', 'learnomy-webhooks' ) . '</th><th scope="col">' . esc_html__( 'Response excerpt', 'learnomy-webhooks' ) . '</th>';
			echo '</tr></thead><tbody>';
			foreach ( $attempts as $attempt ) {
				if ( ! is_array( $attempt ) ) {
					continue;
				}
				echo '<tr>';
				echo '<td>' . esc_html( isset( $attempt['number'] ) ? (string) (int) $attempt['number'] : '' ) . '</td>';
				echo '<td>' . Learnomy_Webhooks_Manage::time_html( isset( $attempt['started_at'] ) ? $attempt['started_at'] : null ) . '</td>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped by time_html().
				/* translators: %s: duration in milliseconds */
				echo '<td>' . esc_html( sprintf( __( '%s ms', 'learnomy-webhooks' ), number_format_i18n( isset( $attempt['duration_ms'] ) ? (int) $attempt['duration_ms'] : 0 ) ) ) . '</td>';
				echo '<td>';
				if ( isset( $attempt['status_code'] ) && is_numeric( $attempt['status_code'] ) ) {
					/* translators: %d: HTTP status code */
					echo '<span class="lrn-webhooks-code">' . esc_html( sprintf( __( 'HTTP %d', 'learnomy-webhooks' ), (int) $attempt['status_code'] ) ) . '</span> ';
				}
				$answered = isset( $attempt['status_code'] ) && is_numeric( $attempt['status_code'] );
				if ( ! $answered && isset( $attempt['error_kind'] ) && is_string( $attempt['error_kind'] ) ) {
					echo '<span class="lrn-webhooks-delivery lrn-webhooks-delivery-failed">' . esc_html( self::error_kind_label( $attempt['error_kind'] ) ) . '</span>';
				} elseif ( $answered && ! isset( $attempt['error_kind'] ) ) {
					echo '<span class="lrn-webhooks-delivery lrn-webhooks-delivery-delivered">' . esc_html__( 'Delivered', 'learnomy-webhooks' ) . '</span>';
				}
				$same = isset( $attempt['status_code'] ) && is_numeric( $attempt['status_code'] ) && isset( $attempt['error'] ) && 'HTTP ' . (int) $attempt['status_code'] === $attempt['error'];
				if ( ! $same && isset( $attempt['error'] ) && is_string( $attempt['error'] ) && '' !== $attempt['error'] ) {
					echo '<p class="lrn-webhooks-muted">' . esc_html( $attempt['error'] ) . '</p>';
				}
				echo '</td><td>';
				if ( isset( $attempt['response_excerpt'] ) && is_string( $attempt['response_excerpt'] ) && '' !== $attempt['response_excerpt'] ) {
					echo '<pre class="lrn-webhooks-excerpt">' . esc_html( $attempt['response_excerpt'] ) . '</pre>';
				} else {
					echo '—';
				}
				echo '</td></tr>';
				self::render_attempt_headers( $attempt );
			}
			echo '</tbody></table></div>';
		}
		echo '</section>';

		echo '<section class="lrn-webhooks-panel" aria-labelledby="lrn-webhooks-payload-title"><h2 id="lrn-webhooks-payload-title">' . esc_html__( 'Payload', 'learnomy-webhooks' ) . '</h2>';
		$payload = isset( $delivery['payload'] ) ? wp_json_encode( $delivery['payload'], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE ) : '';
		echo '<pre class="lrn-webhooks-payload" id="lrn-webhooks-payload">' . esc_html( (string) $payload ) . '</pre>';
		echo '</section>';
	}

	/**
	 * Redeliver: queues the delivery again, then back to its page.
	 */
	public static function handle_redeliver() {
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked by the guard.
		$delivery = isset( $_POST['delivery'] ) && is_string( $_POST['delivery'] ) ? sanitize_text_field( wp_unslash( $_POST['delivery'] ) ) : '';
		$webhook  = isset( $_POST['webhook'] ) && is_string( $_POST['webhook'] ) ? sanitize_text_field( wp_unslash( $_POST['webhook'] ) ) : '';
		// phpcs:enable
		$delivery = Learnomy_Webhooks_Api::is_delivery_id( $delivery ) ? $delivery : '';
		$webhook  = Learnomy_Webhooks_Api::is_webhook_id( $webhook ) ? $webhook : '';
		Learnomy_Webhooks_Admin::guard( 'lrn_webhooks_redeliver_' . $delivery );
		$result = Learnomy_Webhooks_Api::redeliver( $delivery );
		if ( is_wp_error( $result ) ) {
			Learnomy_Webhooks_Admin::flash( 'error', $result->get_error_message() );
		} else {
			Learnomy_Webhooks_Admin::flash( 'success', __( 'Delivery queued again: a new series of attempts starts now.', 'learnomy-webhooks' ) );
		}
		wp_safe_redirect( '' === $delivery ? Learnomy_Webhooks_Manage::url() : self::delivery_url( $webhook, $delivery ) );
		exit;
	}
}
