<?php
/**
 * Uninstall: drops the outbox table, deletes every option and transient of the plugin and the
 * cron event. Nothing of the plugin remains.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;
defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

/**
 * Removes the plugin's data from the current site.
 */
function learnomy_webhooks_uninstall_site() {
	global $wpdb;

	wp_clear_scheduled_hook( 'lrn_webhooks_flush' );

	$table = $wpdb->prefix . 'lrn_webhooks_outbox';
	$wpdb->query( "DROP TABLE IF EXISTS {$table}" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared,WordPress.DB.DirectDatabaseQuery.SchemaChange

	$names = $wpdb->get_col(
		$wpdb->prepare(
			"SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE %s OR option_name LIKE %s OR option_name LIKE %s OR option_name LIKE %s OR option_name LIKE %s",
			$wpdb->esc_like( 'lrn_webhooks_' ) . '%',
			$wpdb->esc_like( '_transient_lrn_webhooks_' ) . '%',
			$wpdb->esc_like( '_transient_timeout_lrn_webhooks_' ) . '%',
			$wpdb->esc_like( '_site_transient_lrn_webhooks_' ) . '%',
			$wpdb->esc_like( '_site_transient_timeout_lrn_webhooks_' ) . '%'
		)
	);
	foreach ( (array) $names as $name ) {
		delete_option( $name );
	}
	wp_cache_delete( 'alloptions', 'options' );
	wp_cache_delete( 'notoptions', 'options' );
}

if ( is_multisite() ) {
	$learnomy_webhooks_sites = get_sites(
		array(
			'fields' => 'ids',
			'number' => 0,
		)
	);
	foreach ( $learnomy_webhooks_sites as $learnomy_webhooks_site ) {
		switch_to_blog( (int) $learnomy_webhooks_site );
		learnomy_webhooks_uninstall_site();
		restore_current_blog();
	}
} else {
	learnomy_webhooks_uninstall_site();
}
