<?php
/**
 * Plugin Name:       Learnomy Webhooks
 * Plugin URI:        https://learnomy.com/
 * Description:       Reports Learnomy LMS events (enrolments, completions, certificates, orders…) to a Learnomy Webhooks service, which delivers them to every subscribed webhook, and manages those webhooks and their Delivery Log from Learnomy > Webhooks. Events wait in a local outbox until the service accepts them.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      7.4
 * Author:            Learnomy
 * License:           MIT
 * License URI:       https://opensource.org/licenses/MIT
 * Text Domain:       learnomy-webhooks
 * Domain Path:       /languages
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

define( 'LRN_WEBHOOKS_VERSION', '0.1.0' );
define( 'LRN_WEBHOOKS_DB_VERSION', '1' );
define( 'LRN_WEBHOOKS_FILE', __FILE__ );
define( 'LRN_WEBHOOKS_DIR', plugin_dir_path( __FILE__ ) );

require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-outbox.php';
require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-events.php';
require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-connection.php';
require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-sender.php';
require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-api.php';
require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-manage.php';
require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-log.php';
require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-admin.php';
require_once LRN_WEBHOOKS_DIR . 'includes/class-lrn-webhooks-plugin.php';

register_activation_hook( __FILE__, array( 'Learnomy_Webhooks_Plugin', 'activate' ) );
register_deactivation_hook( __FILE__, array( 'Learnomy_Webhooks_Plugin', 'deactivate' ) );

Learnomy_Webhooks_Plugin::boot();

if ( ! function_exists( 'learnomy_webhooks_flush' ) ) {
	/**
	 * Sends what waits in the outbox to the service, as the WP-Cron event does.
	 *
	 * @param string $context 'cron' (default; always tries), 'manual' or 'request' (respects the back-off).
	 * @return array{sent:int,refused:int,pending:int,error:string|null} What the flush did.
	 */
	function learnomy_webhooks_flush( $context = 'cron' ) {
		$summary = Learnomy_Webhooks_Sender::flush( is_string( $context ) && '' !== $context ? $context : 'cron' );
		return array(
			'sent'    => $summary['sent'],
			'refused' => $summary['refused'],
			'pending' => $summary['pending'],
			'error'   => $summary['error'],
		);
	}
}
