<?php
/**
 * The outbox: the table where every reported event waits until the service accepts it.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * Storage of events waiting to be sent (status 'pending') or set aside (status 'refused').
 */
class Learnomy_Webhooks_Outbox {

	/** Default most pending rows kept; filter `learnomy_webhooks_outbox_max_rows`. */
	const DEFAULT_MAX_ROWS = 100000;

	/** Option: events not stored because the outbox was full. */
	const DROPPED_OPTION = 'lrn_webhooks_dropped';

	/** Option: array( 'first' => time, 'last' => time ) of the dropped events. */
	const DROPPED_TIMES_OPTION = 'lrn_webhooks_dropped_times';

	/**
	 * Option caching the pending count: array( 'count' => int, 'max_id' => int, 'at' => time ).
	 * 'count' is the number of pending rows whose id is at most 'max_id' when it was counted, so
	 * count + (MAX(id) now - max_id) is an upper bound of the pending rows now.
	 */
	const COUNT_OPTION = 'lrn_webhooks_outbox_count';

	/** Seconds during which a full outbox is trusted without counting again. */
	const FULL_RECHECK = 5;

	/**
	 * The table's name.
	 *
	 * @return string
	 */
	public static function table() {
		global $wpdb;
		return $wpdb->prefix . 'lrn_webhooks_outbox';
	}

	/**
	 * Creates or updates the table with dbDelta.
	 */
	public static function install() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$table   = self::table();
		$charset = $wpdb->get_charset_collate();
		$sql     = "CREATE TABLE {$table} (
  id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  idempotency_key varchar(64) NOT NULL,
  event varchar(64) NOT NULL,
  body longtext NOT NULL,
  created_at datetime NOT NULL,
  attempts int(10) unsigned NOT NULL DEFAULT 0,
  status varchar(16) NOT NULL DEFAULT 'pending',
  reason text NULL,
  PRIMARY KEY  (id),
  UNIQUE KEY idempotency_key (idempotency_key),
  KEY status_id (status,id)
) {$charset};";
		dbDelta( $sql );
	}

	/**
	 * Stores one event. No network: one INSERT (plus, rarely, a COUNT near the cap).
	 *
	 * @param string $slug The event's catalogue slug.
	 * @param array  $data The event's data.
	 * @return string|false The idempotency key, or false when the event was not stored.
	 */
	public static function add( $slug, array $data ) {
		global $wpdb;

		if ( self::is_full() ) {
			self::record_dropped();
			return false;
		}

		$key  = 'wp-' . wp_generate_uuid4();
		$body = array(
			'event'           => (string) $slug,
			'data'            => (object) $data,
			'idempotency_key' => $key,
		);
		$ordering_key = self::ordering_key( (string) $slug, $data );
		if ( '' !== $ordering_key ) {
			$body['ordering_key'] = $ordering_key;
		}
		$json = wp_json_encode( $body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
		if ( false === $json ) {
			// Values JSON cannot carry (INF, NAN, …) become null rather than losing the event.
			$json = wp_json_encode( $body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PARTIAL_OUTPUT_ON_ERROR );
		}
		if ( false === $json ) {
			return false;
		}

		$inserted = $wpdb->insert(
			self::table(),
			array(
				'idempotency_key' => $key,
				'event'           => substr( (string) $slug, 0, 64 ),
				'body'            => $json,
				'created_at'      => gmdate( 'Y-m-d H:i:s' ),
				'attempts'        => 0,
				'status'          => 'pending',
			),
			array( '%s', '%s', '%s', '%s', '%d', '%s' )
		);
		return $inserted ? $key : false;
	}

	/**
	 * The event's ordering key: webhooks set to deliver "in order per key" receive the events
	 * with the same key one at a time, in the order they happened. By default the learner's
	 * (`user:7`), so a CRM sees a student's enrolment before their completion; filtered with
	 * `learnomy_webhooks_ordering_key` (return '' for none).
	 *
	 * @param string $slug The event's catalogue slug.
	 * @param array  $data The event's data.
	 * @return string At most 128 characters, or '' for none.
	 */
	public static function ordering_key( $slug, array $data ) {
		$key = isset( $data['user_id'] ) && is_numeric( $data['user_id'] ) ? 'user:' . absint( $data['user_id'] ) : '';
		$key = (string) apply_filters( 'learnomy_webhooks_ordering_key', $key, $slug, $data );
		$key = (string) preg_replace( '/[\x{0}-\x{1f}\x{7f}-\x{9f}]/u', '', $key );
		return function_exists( 'mb_substr' ) ? mb_substr( $key, 0, 128 ) : substr( $key, 0, 128 );
	}

	/**
	 * The cap on pending rows.
	 *
	 * @return int
	 */
	public static function max_rows() {
		return max( 1, (int) apply_filters( 'learnomy_webhooks_outbox_max_rows', self::DEFAULT_MAX_ROWS ) );
	}

	/**
	 * Whether the outbox holds the cap of pending rows. Cheap: an upper bound from the cached
	 * count and MAX(id) (an index lookup); an exact COUNT only when that bound reaches the cap.
	 *
	 * @return bool
	 */
	private static function is_full() {
		global $wpdb;
		$cap   = self::max_rows();
		$cache = self::cached_count();
		$table = self::table();
		$max   = (int) $wpdb->get_var( "SELECT MAX(id) FROM {$table}" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$bound = $cache['count'] + max( 0, $max - $cache['max_id'] );
		if ( $bound < $cap ) {
			return false;
		}
		// The cache only grows stale downwards through our own deletes, which refresh it.
		if ( $cache['count'] >= $cap && $max <= $cache['max_id'] && ( time() - $cache['at'] ) < self::FULL_RECHECK ) {
			return true;
		}
		return self::refresh_count() >= $cap;
	}

	/**
	 * The cached pending count.
	 *
	 * @return array{count:int,max_id:int,at:int}
	 */
	private static function cached_count() {
		$cache = get_option( self::COUNT_OPTION );
		if ( ! is_array( $cache ) ) {
			return array(
				'count'  => 0,
				'max_id' => 0,
				'at'     => 0,
			);
		}
		return array(
			'count'  => isset( $cache['count'] ) ? (int) $cache['count'] : 0,
			'max_id' => isset( $cache['max_id'] ) ? (int) $cache['max_id'] : 0,
			'at'     => isset( $cache['at'] ) ? (int) $cache['at'] : 0,
		);
	}

	/**
	 * Counts the pending rows exactly and caches the count.
	 *
	 * @return int The pending rows.
	 */
	public static function refresh_count() {
		global $wpdb;
		$table = self::table();
		$max   = (int) $wpdb->get_var( "SELECT MAX(id) FROM {$table}" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$count = (int) $wpdb->get_var( $wpdb->prepare( "SELECT COUNT(*) FROM {$table} WHERE status = 'pending' AND id <= %d", $max ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$cache = self::cached_count();
		if ( $cache['count'] === $count && $cache['max_id'] === $max && $count < self::max_rows() ) {
			return $count; // Unchanged: no write (the time only matters for a full outbox).
		}
		update_option(
			self::COUNT_OPTION,
			array(
				'count'  => $count,
				'max_id' => $max,
				'at'     => time(),
			),
			true
		);
		return $count;
	}

	/**
	 * Counts one event that could not be stored.
	 */
	private static function record_dropped() {
		$now = time();
		update_option( self::DROPPED_OPTION, (int) get_option( self::DROPPED_OPTION, 0 ) + 1, false );
		$times = get_option( self::DROPPED_TIMES_OPTION );
		$first = is_array( $times ) && ! empty( $times['first'] ) ? (int) $times['first'] : $now;
		update_option(
			self::DROPPED_TIMES_OPTION,
			array(
				'first' => $first,
				'last'  => $now,
			),
			false
		);
	}

	/**
	 * Events dropped because the outbox was full.
	 *
	 * @return int
	 */
	public static function dropped() {
		return (int) get_option( self::DROPPED_OPTION, 0 );
	}

	/**
	 * Forgets the dropped-events counter (the admin acknowledged it).
	 */
	public static function reset_dropped() {
		delete_option( self::DROPPED_OPTION );
		delete_option( self::DROPPED_TIMES_OPTION );
	}

	/**
	 * When events were dropped.
	 *
	 * @return array{first:int,last:int}|null
	 */
	public static function dropped_times() {
		$times = get_option( self::DROPPED_TIMES_OPTION );
		if ( ! is_array( $times ) || empty( $times['first'] ) ) {
			return null;
		}
		return array(
			'first' => (int) $times['first'],
			'last'  => isset( $times['last'] ) ? (int) $times['last'] : (int) $times['first'],
		);
	}

	/**
	 * Rows in a status.
	 *
	 * @param string $status 'pending' or 'refused'.
	 * @return int
	 */
	public static function count( $status ) {
		global $wpdb;
		$table = self::table();
		return (int) $wpdb->get_var( $wpdb->prepare( "SELECT COUNT(*) FROM {$table} WHERE status = %s", $status ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
	}

	/**
	 * The oldest pending rows.
	 *
	 * @param int $limit Most rows.
	 * @return array<int,object{id:string,event:string,body:string}>
	 */
	public static function next_pending( $limit ) {
		global $wpdb;
		$table = self::table();
		$rows  = $wpdb->get_results( $wpdb->prepare( "SELECT id, event, body FROM {$table} WHERE status = 'pending' ORDER BY id ASC LIMIT %d", $limit ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		return is_array( $rows ) ? $rows : array();
	}

	/**
	 * Refused rows, newest first.
	 *
	 * @param int $limit Most rows.
	 * @return array<int,object{id:string,event:string,created_at:string,reason:string|null,attempts:string}>
	 */
	public static function refused( $limit = 100 ) {
		global $wpdb;
		$table = self::table();
		$rows  = $wpdb->get_results( $wpdb->prepare( "SELECT id, event, created_at, reason, attempts FROM {$table} WHERE status = 'refused' ORDER BY id DESC LIMIT %d", $limit ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		return is_array( $rows ) ? $rows : array();
	}

	/**
	 * Deletes rows (the service accepted them).
	 *
	 * @param int[] $ids Row ids.
	 */
	public static function delete( array $ids ) {
		global $wpdb;
		$ids = array_map( 'intval', $ids );
		if ( ! $ids ) {
			return;
		}
		$table = self::table();
		$wpdb->query( "DELETE FROM {$table} WHERE id IN (" . implode( ',', $ids ) . ')' ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
	}

	/**
	 * Sets one row aside: it is never sent again unless an admin retries it.
	 *
	 * @param int    $id     Row id.
	 * @param string $reason Why the service refused it.
	 */
	public static function refuse( $id, $reason ) {
		global $wpdb;
		$wpdb->update(
			self::table(),
			array(
				'status' => 'refused',
				'reason' => function_exists( 'mb_substr' ) ? mb_substr( (string) $reason, 0, 2000 ) : substr( (string) $reason, 0, 2000 ),
			),
			array( 'id' => (int) $id ),
			array( '%s', '%s' ),
			array( '%d' )
		);
	}

	/**
	 * Counts one more send attempt for rows that stay pending.
	 *
	 * @param int[] $ids Row ids.
	 */
	public static function count_attempt( array $ids ) {
		global $wpdb;
		$ids = array_map( 'intval', $ids );
		if ( ! $ids ) {
			return;
		}
		$table = self::table();
		$wpdb->query( "UPDATE {$table} SET attempts = attempts + 1 WHERE id IN (" . implode( ',', $ids ) . ')' ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
	}

	/**
	 * Puts refused rows back in the queue.
	 *
	 * @param int|null $id One row, or null for every refused row.
	 * @return int Rows put back.
	 */
	public static function retry( $id = null ) {
		global $wpdb;
		$table = self::table();
		if ( null === $id ) {
			$done = $wpdb->query( "UPDATE {$table} SET status = 'pending', reason = NULL WHERE status = 'refused'" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		} else {
			$done = $wpdb->query( $wpdb->prepare( "UPDATE {$table} SET status = 'pending', reason = NULL WHERE status = 'refused' AND id = %d", $id ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		}
		self::refresh_count();
		return (int) $done;
	}

	/**
	 * Deletes refused rows.
	 *
	 * @param int|null $id One row, or null for every refused row.
	 * @return int Rows deleted.
	 */
	public static function discard( $id = null ) {
		global $wpdb;
		$table = self::table();
		if ( null === $id ) {
			$done = $wpdb->query( "DELETE FROM {$table} WHERE status = 'refused'" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		} else {
			$done = $wpdb->query( $wpdb->prepare( "DELETE FROM {$table} WHERE status = 'refused' AND id = %d", $id ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		}
		return (int) $done;
	}
}
