<?php
/**
 * The admin screen (Learnomy > Webhooks), its actions and the admin notices.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * The page: the webhooks (Learnomy_Webhooks_Manage) and their Delivery Log
 * (Learnomy_Webhooks_Log) first, then the connection settings, the outbox state and the refused
 * events; works without JavaScript.
 */
class Learnomy_Webhooks_Admin {

	/** The page's slug. */
	const PAGE = 'learnomy-webhooks';

	/** Capability for everything here. */
	const CAP = 'manage_options';

	/**
	 * The page's hook suffix.
	 *
	 * @var string
	 */
	private static $hook_suffix = '';

	/**
	 * Registers the menu, the admin-post actions and the notices.
	 */
	public static function register() {
		add_action( 'admin_menu', array( __CLASS__, 'menu' ), 99 );
		add_action( 'admin_enqueue_scripts', array( __CLASS__, 'enqueue' ) );
		add_action( 'admin_notices', array( __CLASS__, 'notices' ) );
		foreach ( array( 'save_settings', 'check', 'send_now', 'retry', 'discard', 'dismiss_dropped' ) as $action ) {
			add_action( 'admin_post_lrn_webhooks_' . $action, array( __CLASS__, 'handle_' . $action ) );
		}
		Learnomy_Webhooks_Manage::register();
		Learnomy_Webhooks_Log::register();
	}

	/**
	 * The page's URL.
	 *
	 * @return string
	 */
	public static function page_url() {
		return admin_url( 'admin.php?page=' . self::PAGE );
	}

	/**
	 * Under Learnomy's own menu when it exists, else a "Learnomy" menu of our own.
	 */
	public static function menu() {
		global $admin_page_hooks;
		$title = __( 'Webhooks', 'learnomy-webhooks' );
		if ( ! empty( $admin_page_hooks['learnomy'] ) || '' !== (string) menu_page_url( 'learnomy', false ) ) {
			$suffix = add_submenu_page( 'learnomy', __( 'Learnomy Webhooks', 'learnomy-webhooks' ), $title, self::CAP, self::PAGE, array( __CLASS__, 'render' ) );
		} else {
			add_menu_page( __( 'Learnomy Webhooks', 'learnomy-webhooks' ), __( 'Learnomy', 'learnomy-webhooks' ), self::CAP, self::PAGE, array( __CLASS__, 'render' ), 'dashicons-rss' );
			$suffix = add_submenu_page( self::PAGE, __( 'Learnomy Webhooks', 'learnomy-webhooks' ), $title, self::CAP, self::PAGE, array( __CLASS__, 'render' ) );
		}
		self::$hook_suffix = is_string( $suffix ) ? $suffix : '';
	}

	/**
	 * The page's stylesheet and script, on the page only. The script only enhances: Copy,
	 * Regenerate, Select all, the confirmation prompts, Test and the log's filters without a
	 * reload. It never receives a token.
	 *
	 * @param string $hook_suffix The current screen's hook suffix.
	 */
	public static function enqueue( $hook_suffix ) {
		if ( '' !== self::$hook_suffix && self::$hook_suffix === $hook_suffix ) {
			wp_enqueue_style( 'lrn-webhooks-admin', plugins_url( 'assets/admin.css', LRN_WEBHOOKS_FILE ), array( 'dashicons' ), LRN_WEBHOOKS_VERSION );
			wp_enqueue_script( 'lrn-webhooks-admin', plugins_url( 'assets/admin.js', LRN_WEBHOOKS_FILE ), array(), LRN_WEBHOOKS_VERSION, true );
			wp_localize_script(
				'lrn-webhooks-admin',
				'lrnWebhooks',
				array(
					'ajaxUrl'    => admin_url( 'admin-ajax.php' ),
					'copied'     => __( 'Copied', 'learnomy-webhooks' ),
					'copyFailed' => __( 'Could not copy: select the key and press Ctrl+C (⌘+C on a Mac).', 'learnomy-webhooks' ),
					'newKey'     => __( 'New key generated. Copy it before you save.', 'learnomy-webhooks' ),
					'testing'    => __( 'Sending a test…', 'learnomy-webhooks' ),
					/* translators: %s: the error */
					'testError'  => __( 'The test could not run: %s', 'learnomy-webhooks' ),
					'loading'    => __( 'Loading…', 'learnomy-webhooks' ),
					/* translators: %s: the error */
					'loadError'  => __( 'The deliveries could not be loaded: %s', 'learnomy-webhooks' ),
				)
			);
		}
	}

	/**
	 * A date and time in the site's format and time zone.
	 *
	 * @param int $timestamp Unix time.
	 * @return string
	 */
	public static function format_time( $timestamp ) {
		$formatted = wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), (int) $timestamp );
		return false === $formatted ? '' : $formatted;
	}

	/**
	 * Notices on every admin screen: refused events, dropped events.
	 */
	public static function notices() {
		if ( ! current_user_can( self::CAP ) ) {
			return;
		}
		$refused = Learnomy_Webhooks_Outbox::count( 'refused' );
		if ( $refused > 0 ) {
			printf(
				'<div class="notice notice-error"><p>%s <a href="%s">%s</a></p></div>',
				esc_html(
					sprintf(
						/* translators: %s: number of events */
						_n( '%s event was refused by the Learnomy Webhooks service – see Learnomy > Webhooks.', '%s events were refused by the Learnomy Webhooks service – see Learnomy > Webhooks.', $refused, 'learnomy-webhooks' ),
						number_format_i18n( $refused )
					)
				),
				esc_url( self::page_url() ),
				esc_html__( 'Open Learnomy > Webhooks', 'learnomy-webhooks' )
			);
		}
		$dropped = Learnomy_Webhooks_Outbox::dropped();
		if ( $dropped > 0 ) {
			printf( '<div class="notice notice-error lrn-webhooks-dropped"><p>%s</p>', esc_html( self::dropped_message( $dropped ) ) );
			self::button_form( 'dismiss_dropped', __( 'Dismiss', 'learnomy-webhooks' ), 'button button-small' );
			echo '</div>';
		}
	}

	/**
	 * "N events were dropped because the outbox was full…".
	 *
	 * @param int $dropped Events dropped.
	 * @return string
	 */
	private static function dropped_message( $dropped ) {
		$message = sprintf(
			/* translators: 1: number of events, 2: the outbox's cap */
			_n( '%1$s event was dropped because the Learnomy Webhooks outbox was full (it keeps at most %2$s events).', '%1$s events were dropped because the Learnomy Webhooks outbox was full (it keeps at most %2$s events).', $dropped, 'learnomy-webhooks' ),
			number_format_i18n( $dropped ),
			number_format_i18n( Learnomy_Webhooks_Outbox::max_rows() )
		);
		$backoff = Learnomy_Webhooks_Sender::backoff();
		$success = Learnomy_Webhooks_Sender::last_success();
		$times   = Learnomy_Webhooks_Outbox::dropped_times();
		if ( null !== $backoff ) {
			/* translators: %s: date and time */
			$message .= ' ' . sprintf( __( 'The service has been unreachable since %s.', 'learnomy-webhooks' ), self::format_time( $backoff['since'] ) );
		} elseif ( $success > 0 ) {
			/* translators: %s: date and time */
			$message .= ' ' . sprintf( __( 'The service last accepted events at %s.', 'learnomy-webhooks' ), self::format_time( $success ) );
		} else {
			$message .= ' ' . __( 'The service has not accepted any event yet: check the connection.', 'learnomy-webhooks' );
		}
		if ( null !== $times ) {
			/* translators: 1: date and time, 2: date and time */
			$message .= ' ' . sprintf( __( 'The first event was dropped at %1$s, the last at %2$s.', 'learnomy-webhooks' ), self::format_time( $times['first'] ), self::format_time( $times['last'] ) );
		}
		return $message;
	}

	/**
	 * Stops a handler unless the user may manage options and the nonce is right.
	 *
	 * @param string $action The nonce action.
	 */
	public static function guard( $action ) {
		if ( ! current_user_can( self::CAP ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage Learnomy Webhooks.', 'learnomy-webhooks' ), 403 );
		}
		check_admin_referer( $action );
	}

	/**
	 * Shows a notice on the next page view of this user.
	 *
	 * @param string $type    'success', 'warning', 'error' or 'info'.
	 * @param string $message Plain text.
	 */
	public static function flash( $type, $message ) {
		$key     = 'lrn_webhooks_notice_' . get_current_user_id();
		$notices = get_transient( $key );
		$notices = is_array( $notices ) ? $notices : array();
		$notices[] = array(
			'type'    => $type,
			'message' => $message,
		);
		set_transient( $key, $notices, 5 * MINUTE_IN_SECONDS );
	}

	/**
	 * Back to the page, and stop.
	 */
	private static function back() {
		wp_safe_redirect( self::page_url() );
		exit;
	}

	/**
	 * An integer from the POST body.
	 *
	 * @param string $name Field name.
	 * @return int
	 */
	private static function posted_int( $name ) {
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked by guard().
		return isset( $_POST[ $name ] ) ? absint( wp_unslash( $_POST[ $name ] ) ) : 0;
	}

	/**
	 * Saves the connection settings.
	 */
	public static function handle_save_settings() {
		self::guard( 'lrn_webhooks_save_settings' );
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked by guard().
		$url    = isset( $_POST['lrn_webhooks_url'] ) ? sanitize_text_field( wp_unslash( $_POST['lrn_webhooks_url'] ) ) : '';
		// A token is printable ASCII, checked by Learnomy_Webhooks_Connection::save(); sanitize_text_field() would drop "%xx" runs.
		$token  = isset( $_POST['lrn_webhooks_token'] ) ? trim( (string) wp_unslash( $_POST['lrn_webhooks_token'] ) ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized
		$forget = ! empty( $_POST['lrn_webhooks_forget_token'] );
		// phpcs:enable
		$saved = Learnomy_Webhooks_Connection::save( $url, $token, $forget );
		if ( is_wp_error( $saved ) ) {
			self::flash( 'error', $saved->get_error_message() );
		} else {
			self::flash( 'success', __( 'Settings saved.', 'learnomy-webhooks' ) );
		}
		self::back();
	}

	/**
	 * Checks the connection and reports it in words.
	 */
	public static function handle_check() {
		self::guard( 'lrn_webhooks_check' );
		$result = Learnomy_Webhooks_Connection::check();
		self::flash( $result['type'], $result['message'] );
		self::back();
	}

	/**
	 * Runs a flush now and reports what it did.
	 */
	public static function handle_send_now() {
		self::guard( 'lrn_webhooks_send_now' );
		$summary = Learnomy_Webhooks_Sender::flush( 'manual' );
		$message = sprintf(
			/* translators: 1: events sent, 2: events refused, 3: events still waiting */
			__( 'Sent: %1$s. Refused: %2$s. Still waiting: %3$s.', 'learnomy-webhooks' ),
			number_format_i18n( $summary['sent'] ),
			number_format_i18n( $summary['refused'] ),
			number_format_i18n( $summary['pending'] )
		);
		if ( null !== $summary['error'] ) {
			self::flash( 'error', $message . ' ' . $summary['error'] );
		} else {
			self::flash( $summary['refused'] > 0 ? 'warning' : 'success', $message );
		}
		self::back();
	}

	/**
	 * Puts one refused event (or all) back in the queue.
	 */
	public static function handle_retry() {
		$id = self::posted_int( 'id' );
		self::guard( 'lrn_webhooks_retry_' . $id );
		$done = Learnomy_Webhooks_Outbox::retry( $id > 0 ? $id : null );
		if ( $done > 0 ) {
			Learnomy_Webhooks_Plugin::make_flush_due();
		}
		self::flash(
			'success',
			sprintf(
				/* translators: %s: number of events */
				_n( '%s event will be sent again with the next flush.', '%s events will be sent again with the next flush.', $done, 'learnomy-webhooks' ),
				number_format_i18n( $done )
			)
		);
		self::back();
	}

	/**
	 * Deletes one refused event (or all).
	 */
	public static function handle_discard() {
		$id = self::posted_int( 'id' );
		self::guard( 'lrn_webhooks_discard_' . $id );
		$done = Learnomy_Webhooks_Outbox::discard( $id > 0 ? $id : null );
		self::flash(
			'success',
			sprintf(
				/* translators: %s: number of events */
				_n( '%s refused event discarded.', '%s refused events discarded.', $done, 'learnomy-webhooks' ),
				number_format_i18n( $done )
			)
		);
		self::back();
	}

	/**
	 * Forgets the dropped-events counter.
	 */
	public static function handle_dismiss_dropped() {
		self::guard( 'lrn_webhooks_dismiss_dropped' );
		Learnomy_Webhooks_Outbox::reset_dropped();
		self::back();
	}

	/**
	 * A one-button form posting to admin-post.php.
	 *
	 * @param string $action  The admin-post action (without the lrn_webhooks_ prefix).
	 * @param string $label   Button label.
	 * @param string $classes Button classes.
	 * @param int    $id      Row id (0 for none / all).
	 */
	private static function button_form( $action, $label, $classes = 'button', $id = -1 ) {
		$nonce_action = 'lrn_webhooks_' . $action . ( $id >= 0 ? '_' . $id : '' );
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '" class="lrn-webhooks-inline">';
		echo '<input type="hidden" name="action" value="' . esc_attr( 'lrn_webhooks_' . $action ) . '" />';
		if ( $id >= 0 ) {
			echo '<input type="hidden" name="id" value="' . esc_attr( (string) $id ) . '" />';
		}
		echo '<input type="hidden" name="_wpnonce" value="' . esc_attr( wp_create_nonce( $nonce_action ) ) . '" />';
		echo '<button type="submit" class="' . esc_attr( $classes ) . '">' . esc_html( $label ) . '</button>';
		echo '</form>';
	}

	/**
	 * The page: `view` chooses the Webhooks view (the default, with the Connection and Outbox
	 * sections below), the Delivery Log, a delivery, a confirmation, or the Learnomy Pro tab.
	 */
	public static function render() {
		if ( ! current_user_can( self::CAP ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage Learnomy Webhooks.', 'learnomy-webhooks' ), 403 );
		}
		echo '<div class="wrap lrn-webhooks">';
		switch ( Learnomy_Webhooks_Manage::query_arg( 'view' ) ) {
			case 'log':
				Learnomy_Webhooks_Log::render_log();
				break;
			case 'delivery':
				Learnomy_Webhooks_Log::render_delivery();
				break;
			case 'confirm':
				Learnomy_Webhooks_Manage::render_confirm();
				break;
			case 'pro':
				Learnomy_Webhooks_Manage::render_pro();
				break;
			default:
				Learnomy_Webhooks_Manage::render_main();
				echo '<div class="lrn-webhooks-settings" id="lrn-webhooks-connection">';
				self::render_connection();
				self::render_outbox();
				self::render_refused();
				echo '</div>';
		}
		echo '</div>';
	}

	/**
	 * The notices kept for this user's next page view (and forgets them).
	 */
	public static function render_flash() {
		$key     = 'lrn_webhooks_notice_' . get_current_user_id();
		$notices = get_transient( $key );
		if ( is_array( $notices ) ) {
			delete_transient( $key );
			foreach ( $notices as $notice ) {
				$type = isset( $notice['type'] ) && in_array( $notice['type'], array( 'success', 'warning', 'error', 'info' ), true ) ? $notice['type'] : 'info';
				echo '<div class="notice notice-' . esc_attr( $type ) . ' lrn-webhooks-flash"><p>' . esc_html( isset( $notice['message'] ) ? (string) $notice['message'] : '' ) . '</p></div>';
			}
		}
	}

	/**
	 * The Connection section.
	 */
	private static function render_connection() {
		echo '<h2>' . esc_html__( 'Connection', 'learnomy-webhooks' ) . '</h2>';
		echo '<p>' . esc_html__( 'Events are reported to a Learnomy Webhooks service with a token of scope events:write; managing webhooks on this page also needs the scope webhooks:manage (one token may hold both).', 'learnomy-webhooks' ) . '</p>';

		$url_constant   = Learnomy_Webhooks_Connection::url_is_constant();
		$token_constant = Learnomy_Webhooks_Connection::token_is_constant();
		$hint           = Learnomy_Webhooks_Connection::token_hint();

		$editable       = ! $url_constant || ! $token_constant;

		if ( $editable ) {
			echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
			echo '<input type="hidden" name="action" value="lrn_webhooks_save_settings" />';
			wp_nonce_field( 'lrn_webhooks_save_settings' );
		}
		echo '<table class="form-table" role="presentation"><tbody>';

		echo '<tr><th scope="row"><label for="lrn-webhooks-url">' . esc_html__( 'Service URL', 'learnomy-webhooks' ) . '</label></th><td>';
		if ( $url_constant ) {
			echo '<input type="url" id="lrn-webhooks-url" class="regular-text code" value="' . esc_attr( Learnomy_Webhooks_Connection::url() ) . '" readonly="readonly" />';
			echo '<p class="description">' . esc_html__( 'Set in wp-config.php (LEARNOMY_WEBHOOKS_URL).', 'learnomy-webhooks' ) . '</p>';
		} else {
			echo '<input type="url" id="lrn-webhooks-url" name="lrn_webhooks_url" class="regular-text code" placeholder="http://127.0.0.1:8080" value="' . esc_attr( Learnomy_Webhooks_Connection::url() ) . '" />';
			echo '<p class="description">' . esc_html__( 'Where the Learnomy Webhooks service listens, e.g. http://127.0.0.1:8080.', 'learnomy-webhooks' ) . '</p>';
		}
		echo '</td></tr>';

		echo '<tr><th scope="row"><label for="lrn-webhooks-token">' . esc_html__( 'API token', 'learnomy-webhooks' ) . '</label></th><td>';
		if ( $token_constant ) {
			echo '<input type="text" id="lrn-webhooks-token" class="regular-text code" value="' . esc_attr( '' === $hint ? '' : $hint . '…' ) . '" readonly="readonly" />';
			echo '<p class="description">' . esc_html__( 'Set in wp-config.php (LEARNOMY_WEBHOOKS_TOKEN).', 'learnomy-webhooks' ) . '</p>';
		} else {
			echo '<input type="password" id="lrn-webhooks-token" name="lrn_webhooks_token" class="regular-text code" value="" autocomplete="new-password" spellcheck="false" />';
			if ( '' !== $hint ) {
				echo '<p class="description">' . esc_html(
					sprintf(
						/* translators: %s: the token's first 8 characters */
						__( 'A token is saved (%s…). Leave the field empty to keep it.', 'learnomy-webhooks' ),
						$hint
					)
				) . '</p>';
				echo '<p><label><input type="checkbox" name="lrn_webhooks_forget_token" value="1" /> ' . esc_html__( 'Delete the saved token', 'learnomy-webhooks' ) . '</label></p>';
			} else {
				echo '<p class="description">' . esc_html__( 'No token is saved. Create one with: learnomy-webhooks token create --scope events:write --scope webhooks:manage --name wordpress', 'learnomy-webhooks' ) . '</p>';
			}
		}
		echo '</td></tr>';
		echo '</tbody></table>';
		if ( $editable ) {
			submit_button( __( 'Save settings', 'learnomy-webhooks' ) );
			echo '</form>';
		}

		self::button_form( 'check', __( 'Check connection', 'learnomy-webhooks' ), 'button button-secondary' );
	}

	/**
	 * The Outbox section.
	 */
	private static function render_outbox() {
		echo '<h2>' . esc_html__( 'Outbox', 'learnomy-webhooks' ) . '</h2>';

		if ( ! Learnomy_Webhooks_Connection::is_configured() ) {
			echo '<div class="notice notice-warning inline"><p>' . esc_html__( 'Events are stored, but none is sent until the service URL and token are set.', 'learnomy-webhooks' ) . '</p></div>';
		}

		$pending = Learnomy_Webhooks_Outbox::count( 'pending' );
		$success = Learnomy_Webhooks_Sender::last_success();
		$error   = Learnomy_Webhooks_Sender::last_error();
		$backoff = Learnomy_Webhooks_Sender::backoff();

		echo '<table class="widefat striped lrn-webhooks-state"><tbody>';
		echo '<tr><th scope="row">' . esc_html__( 'Events waiting', 'learnomy-webhooks' ) . '</th><td>' . esc_html( number_format_i18n( $pending ) ) . '</td></tr>';
		echo '<tr><th scope="row">' . esc_html__( 'Last successful send', 'learnomy-webhooks' ) . '</th><td>' . esc_html( $success > 0 ? self::format_time( $success ) : __( 'Never', 'learnomy-webhooks' ) ) . '</td></tr>';
		echo '<tr><th scope="row">' . esc_html__( 'Last error', 'learnomy-webhooks' ) . '</th><td>';
		if ( null === $error ) {
			echo esc_html__( 'None', 'learnomy-webhooks' );
		} else {
			echo esc_html(
				sprintf(
					/* translators: 1: date and time, 2: the error */
					__( '%1$s: %2$s', 'learnomy-webhooks' ),
					self::format_time( $error['time'] ),
					$error['message']
				)
			);
		}
		echo '</td></tr>';
		echo '<tr><th scope="row">' . esc_html__( 'Back-off', 'learnomy-webhooks' ) . '</th><td>';
		if ( null === $backoff ) {
			echo esc_html__( 'None: events are sent as they come (and by WP-Cron every minute).', 'learnomy-webhooks' );
		} elseif ( $backoff['until'] > time() ) {
			echo esc_html(
				sprintf(
					/* translators: 1: date and time, 2: date and time */
					__( 'The service has been failing since %1$s. Events are sent only by WP-Cron (every minute) until %2$s.', 'learnomy-webhooks' ),
					self::format_time( $backoff['since'] ),
					self::format_time( $backoff['until'] )
				)
			);
		} else {
			echo esc_html(
				sprintf(
					/* translators: %s: date and time */
					__( 'The service has been failing since %s; the next send will tell whether it is back.', 'learnomy-webhooks' ),
					self::format_time( $backoff['since'] )
				)
			);
		}
		echo '</td></tr>';
		$next = wp_next_scheduled( Learnomy_Webhooks_Plugin::CRON_HOOK );
		echo '<tr><th scope="row">' . esc_html__( 'Next scheduled send', 'learnomy-webhooks' ) . '</th><td>' . esc_html( false === $next ? __( 'Not scheduled', 'learnomy-webhooks' ) : self::format_time( $next ) ) . '</td></tr>';
		echo '</tbody></table>';

		echo '<div class="lrn-webhooks-actions">';
		self::button_form( 'send_now', __( 'Send now', 'learnomy-webhooks' ), 'button button-primary' );
		echo '</div>';
	}

	/**
	 * The refused events.
	 */
	private static function render_refused() {
		echo '<h2>' . esc_html__( 'Refused events', 'learnomy-webhooks' ) . '</h2>';
		$rows  = Learnomy_Webhooks_Outbox::refused( 100 );
		$total = Learnomy_Webhooks_Outbox::count( 'refused' );
		if ( ! $rows ) {
			echo '<p>' . esc_html__( 'No event was refused. Events the service refuses are set aside here with its reason; they never hold up the others.', 'learnomy-webhooks' ) . '</p>';
			return;
		}
		echo '<p>' . esc_html__( 'The service refused these events; the others kept flowing. Retry one after fixing the cause (e.g. adding the event to the service\'s catalogue), or discard it.', 'learnomy-webhooks' ) . '</p>';
		if ( $total > count( $rows ) ) {
			echo '<p>' . esc_html(
				sprintf(
					/* translators: 1: number shown, 2: total number */
					__( 'Showing the newest %1$s of %2$s refused events.', 'learnomy-webhooks' ),
					number_format_i18n( count( $rows ) ),
					number_format_i18n( $total )
				)
			) . '</p>';
		}
		echo '<table class="widefat striped lrn-webhooks-refused"><thead><tr>';
		echo '<th scope="col">' . esc_html__( 'Time', 'learnomy-webhooks' ) . '</th>';
		echo '<th scope="col">' . esc_html__( 'Event', 'learnomy-webhooks' ) . '</th>';
		echo '<th scope="col">' . esc_html__( 'Reason', 'learnomy-webhooks' ) . '</th>';
		echo '<th scope="col">' . esc_html__( 'Actions', 'learnomy-webhooks' ) . '</th>';
		echo '</tr></thead><tbody>';
		foreach ( $rows as $row ) {
			$time = strtotime( $row->created_at . ' UTC' );
			echo '<tr>';
			echo '<td>' . esc_html( false === $time ? $row->created_at : self::format_time( $time ) ) . '</td>';
			echo '<td><code>' . esc_html( $row->event ) . '</code></td>';
			echo '<td>' . esc_html( (string) $row->reason ) . '</td>';
			echo '<td>';
			self::button_form( 'retry', __( 'Retry', 'learnomy-webhooks' ), 'button button-small', (int) $row->id );
			self::button_form( 'discard', __( 'Discard', 'learnomy-webhooks' ), 'button button-small button-link-delete', (int) $row->id );
			echo '</td></tr>';
		}
		echo '</tbody></table>';
		echo '<div class="lrn-webhooks-actions">';
		self::button_form( 'retry', __( 'Retry all', 'learnomy-webhooks' ), 'button', 0 );
		self::button_form( 'discard', __( 'Discard all', 'learnomy-webhooks' ), 'button button-link-delete', 0 );
		echo '</div>';
	}
}
