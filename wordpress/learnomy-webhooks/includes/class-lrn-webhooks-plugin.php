<?php
/**
 * Bootstrap and lifecycle: activation, deactivation, database upgrades, the cron schedule.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * Wires the plugin's parts to WordPress.
 */
class Learnomy_Webhooks_Plugin {

	/** WP-Cron event that flushes the outbox. */
	const CRON_HOOK = 'lrn_webhooks_flush';

	/** Custom WP-Cron schedule: every minute. */
	const CRON_SCHEDULE = 'lrn_webhooks_every_minute';

	/** Option holding the installed database schema version. */
	const DB_VERSION_OPTION = 'lrn_webhooks_db_version';

	/**
	 * Registers every hook. Called once when the plugin file loads.
	 */
	public static function boot() {
		add_filter( 'cron_schedules', array( __CLASS__, 'cron_schedules' ) );
		add_action( 'plugins_loaded', array( __CLASS__, 'maybe_upgrade' ) );
		add_action( 'init', array( __CLASS__, 'load_textdomain' ), 0 );
		add_action( 'init', array( __CLASS__, 'ensure_cron' ) );
		add_action( self::CRON_HOOK, array( 'Learnomy_Webhooks_Sender', 'run_cron' ), 10, 0 );

		Learnomy_Webhooks_Events::register();
		Learnomy_Webhooks_Sender::register();

		if ( is_admin() ) {
			Learnomy_Webhooks_Admin::register();
		}
	}

	/**
	 * Loads the translations.
	 */
	public static function load_textdomain() {
		load_plugin_textdomain( 'learnomy-webhooks', false, dirname( plugin_basename( LRN_WEBHOOKS_FILE ) ) . '/languages' );
	}

	/**
	 * Adds the every-minute schedule.
	 *
	 * @param array $schedules The schedules WordPress knows.
	 * @return array
	 */
	public static function cron_schedules( $schedules ) {
		if ( ! is_array( $schedules ) ) {
			$schedules = array();
		}
		$schedules[ self::CRON_SCHEDULE ] = array(
			'interval' => 60,
			'display'  => __( 'Every minute (Learnomy Webhooks)', 'learnomy-webhooks' ),
		);
		return $schedules;
	}

	/**
	 * Activation: the outbox table, the schema version, the cron event.
	 */
	public static function activate() {
		Learnomy_Webhooks_Outbox::install();
		update_option( self::DB_VERSION_OPTION, LRN_WEBHOOKS_DB_VERSION );
		self::schedule();
	}

	/**
	 * Deactivation: stop the cron event; keep the data.
	 */
	public static function deactivate() {
		wp_clear_scheduled_hook( self::CRON_HOOK );
	}

	/**
	 * Creates or updates the table when the stored schema version is older than the code's.
	 */
	public static function maybe_upgrade() {
		$installed = get_option( self::DB_VERSION_OPTION );
		if ( false === $installed || version_compare( (string) $installed, LRN_WEBHOOKS_DB_VERSION, '<' ) ) {
			Learnomy_Webhooks_Outbox::install();
			update_option( self::DB_VERSION_OPTION, LRN_WEBHOOKS_DB_VERSION );
		}
	}

	/**
	 * Schedules the flush event again if it went missing (e.g. the cron option was reset).
	 */
	public static function ensure_cron() {
		if ( wp_installing() ) {
			return;
		}
		if ( ! wp_next_scheduled( self::CRON_HOOK ) ) {
			self::schedule();
		}
	}

	/**
	 * Makes the flush event due now (events wait), keeping its every-minute recurrence.
	 */
	public static function make_flush_due() {
		$next = wp_next_scheduled( self::CRON_HOOK );
		if ( false !== $next && $next <= time() ) {
			return;
		}
		if ( false !== $next ) {
			wp_unschedule_event( $next, self::CRON_HOOK );
		}
		wp_schedule_event( time(), self::CRON_SCHEDULE, self::CRON_HOOK );
	}

	/**
	 * Schedules the flush event, due now, every minute.
	 */
	private static function schedule() {
		if ( ! wp_next_scheduled( self::CRON_HOOK ) ) {
			wp_schedule_event( time(), self::CRON_SCHEDULE, self::CRON_HOOK );
		}
	}
}
