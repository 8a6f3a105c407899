<?php
/**
 * The hook map: which Learnomy action reports which catalogue event, and the data it carries.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * Listens to Learnomy's action hooks and stores one outbox row per firing.
 */
class Learnomy_Webhooks_Events {

	/** Most positional arguments passed to an extra slug's listener. */
	const EXTRA_ACCEPTED_ARGS = 20;

	/**
	 * Whether this request stored at least one event.
	 *
	 * @var bool
	 */
	private static $stored = false;

	/**
	 * Extra slugs registered from the `learnomy_pro_webhooks_event_slugs` filter:
	 * slug => list of argument names, or null for "first argument if associative, else args".
	 *
	 * @var array<string,array|null>
	 */
	private static $extra = array();

	/**
	 * Every catalogue event: slug => array( 'pro' => bool, 'args' => hook argument names ).
	 * The hook is `learnomy_<slug>` (core) or `learnomy_pro_<slug>` (Pro).
	 *
	 * @return array<string,array{pro:bool,args:string[]}>
	 */
	public static function map() {
		return array(
			// Core.
			'student_enrolled'                 => array( 'pro' => false, 'args' => array( 'enrollment_id', 'user_id', 'course_id', 'source' ) ),
			'student_unenrolled'               => array( 'pro' => false, 'args' => array( 'enrollment_id', 'user_id', 'course_id' ) ),
			'enrollment_expired'               => array( 'pro' => false, 'args' => array( 'enrollment_id', 'user_id', 'course_id' ) ),
			'lesson_completed'                 => array( 'pro' => false, 'args' => array( 'user_id', 'lesson_id', 'course_id' ) ),
			'quiz_passed'                      => array( 'pro' => false, 'args' => array( 'attempt_id', 'user_id', 'quiz_id', 'score' ) ),
			'quiz_failed'                      => array( 'pro' => false, 'args' => array( 'attempt_id', 'user_id', 'quiz_id', 'score' ) ),
			'course_completed'                 => array( 'pro' => false, 'args' => array( 'enrollment_id', 'user_id', 'course_id' ) ),
			'certificate_issued'               => array( 'pro' => false, 'args' => array( 'certificate_id', 'user_id', 'course_id' ) ),
			'review_submitted'                 => array( 'pro' => false, 'args' => array( 'review_id', 'user_id', 'course_id' ) ),
			'instructor_application_submitted' => array( 'pro' => false, 'args' => array( 'application_id', 'user_id' ) ),
			'instructor_approved'              => array( 'pro' => false, 'args' => array( 'application_id', 'user_id' ) ),
			'subscription_created'             => array( 'pro' => false, 'args' => array( 'subscription_id', 'user_id', 'plan_id' ) ),
			'subscription_cancelled'           => array( 'pro' => false, 'args' => array( 'subscription_id', 'user_id', 'plan_id' ) ),
			'subscription_expired'             => array( 'pro' => false, 'args' => array( 'subscription_id', 'user_id', 'plan_id' ) ),
			'course_published'                 => array( 'pro' => false, 'args' => array( 'course_id', 'author_id' ) ),
			'course_deleted'                   => array( 'pro' => false, 'args' => array( 'course_id' ) ),
			'order_completed'                  => array( 'pro' => false, 'args' => array( 'order_id', 'user_id', 'total', 'currency' ) ),
			'order_refunded'                   => array( 'pro' => false, 'args' => array( 'order_id', 'user_id', 'amount', 'currency' ) ),
			// Pro.
			'learning_path_enrolled'           => array( 'pro' => true, 'args' => array( 'enrollment_id', 'user_id', 'path_id', 'source' ) ),
			'learning_path_completed'          => array( 'pro' => true, 'args' => array( 'certificate_id', 'user_id', 'path_id' ) ),
			'assignment_submitted'             => array( 'pro' => true, 'args' => array( 'submission_id', 'assignment_id', 'user_id' ) ),
			'assignment_graded'                => array( 'pro' => true, 'args' => array( 'submission_id', 'assignment_id', 'user_id', 'grade' ) ),
			'cohort_member_added'              => array( 'pro' => true, 'args' => array( 'cohort_id', 'user_id' ) ),
			'cohort_member_removed'            => array( 'pro' => true, 'args' => array( 'cohort_id', 'user_id' ) ),
			'cohort_deleted'                   => array( 'pro' => true, 'args' => array( 'cohort_id' ) ),
			'space_member_added'               => array( 'pro' => true, 'args' => array( 'space_id', 'user_id' ) ),
			'space_member_removed'             => array( 'pro' => true, 'args' => array( 'space_id', 'user_id' ) ),
			'space_member_suspended'           => array( 'pro' => true, 'args' => array( 'space_id', 'user_id' ) ),
			'space_member_resumed'             => array( 'pro' => true, 'args' => array( 'space_id', 'user_id' ) ),
			'space_deleted'                    => array( 'pro' => true, 'args' => array( 'space_id' ) ),
			'gift_redeemed'                    => array( 'pro' => true, 'args' => array( 'code', 'user_id', 'subscription_id' ) ),
		);
	}

	/**
	 * The action hook that reports a slug.
	 *
	 * @param string $slug Event slug.
	 * @param bool   $pro  Whether it is a Learnomy Pro hook.
	 * @return string
	 */
	public static function hook_name( $slug, $pro ) {
		return ( $pro ? 'learnomy_pro_' : 'learnomy_' ) . $slug;
	}

	/**
	 * Adds a listener to every catalogue hook now, and to the extra slugs at `init`.
	 */
	public static function register() {
		foreach ( self::map() as $slug => $entry ) {
			$args = $entry['args'];
			add_action(
				self::hook_name( $slug, $entry['pro'] ),
				static function ( ...$values ) use ( $slug, $args ) {
					Learnomy_Webhooks_Events::report( $slug, self::named( $args, $values ), $values );
				},
				10,
				count( $args )
			);
		}
		add_action( 'init', array( __CLASS__, 'register_extra' ), 0 );
	}

	/**
	 * Applies `learnomy_pro_webhooks_event_slugs` (once) and listens to the slugs it returns:
	 * a list of slugs, or slug => argument names. Each is listened on `learnomy_pro_<slug>`.
	 */
	public static function register_extra() {
		static $done = false;
		if ( $done ) {
			return;
		}
		$done  = true;
		$extra = apply_filters( 'learnomy_pro_webhooks_event_slugs', array() );
		if ( ! is_array( $extra ) ) {
			return;
		}
		$map = self::map();
		foreach ( $extra as $key => $value ) {
			if ( is_int( $key ) && is_string( $value ) ) {
				$slug  = $value;
				$names = null;
			} elseif ( is_string( $key ) && is_array( $value ) ) {
				$slug  = $key;
				$names = array_values( array_filter( $value, 'is_string' ) );
			} else {
				continue;
			}
			if ( ! preg_match( '/^[a-z0-9][a-z0-9_.\-]{0,63}$/', $slug ) ) {
				_doing_it_wrong(
					'learnomy_pro_webhooks_event_slugs',
					esc_html(
						sprintf(
							/* translators: %s: the refused event slug */
							__( 'Event slugs are 1 to 64 lowercase letters, digits, "_", "-" or "."; "%s" is ignored.', 'learnomy-webhooks' ),
							$slug
						)
					),
					'0.1.0'
				);
				continue;
			}
			if ( isset( $map[ $slug ] ) || array_key_exists( $slug, self::$extra ) ) {
				continue;
			}
			self::$extra[ $slug ] = $names;
			add_action(
				self::hook_name( $slug, true ),
				static function ( ...$values ) use ( $slug, $names ) {
					if ( null !== $names ) {
						$data = Learnomy_Webhooks_Events::named( $names, $values );
					} elseif ( isset( $values[0] ) && is_array( $values[0] ) && self::is_assoc( $values[0] ) ) {
						$data = self::normalize_array( $values[0] );
					} else {
						$data = array( 'args' => array_map( array( __CLASS__, 'normalize' ), $values ) );
					}
					Learnomy_Webhooks_Events::report( $slug, $data, $values );
				},
				10,
				null === $names ? self::EXTRA_ACCEPTED_ARGS : max( 1, count( $names ) )
			);
		}
	}

	/**
	 * The extra slugs registered from the filter.
	 *
	 * @return string[]
	 */
	public static function extra_slugs() {
		return array_keys( self::$extra );
	}

	/**
	 * Whether this request stored an event.
	 *
	 * @return bool
	 */
	public static function stored_in_this_request() {
		return self::$stored;
	}

	/**
	 * Names positional hook arguments; missing trailing arguments are left out.
	 *
	 * @param string[] $names  Argument names.
	 * @param array    $values The hook's arguments.
	 * @return array
	 */
	public static function named( array $names, array $values ) {
		$data = array();
		foreach ( array_values( $names ) as $i => $name ) {
			if ( ! array_key_exists( $i, $values ) ) {
				break;
			}
			$data[ $name ] = self::normalize( $values[ $i ] );
		}
		return $data;
	}

	/**
	 * Turns a hook argument into a JSON value: integer strings become integers, objects with an
	 * `ID` (WP_Post, WP_User, …) their ID; arrays are kept.
	 *
	 * @param mixed $value The argument.
	 * @return mixed
	 */
	public static function normalize( $value ) {
		if ( is_string( $value ) ) {
			if ( preg_match( '/^-?(0|[1-9][0-9]{0,18})$/', $value ) && (string) (int) $value === $value ) {
				return (int) $value;
			}
			return $value;
		}
		if ( is_object( $value ) ) {
			if ( isset( $value->ID ) && is_scalar( $value->ID ) ) {
				return self::normalize( is_int( $value->ID ) ? $value->ID : (string) $value->ID );
			}
			if ( $value instanceof JsonSerializable ) {
				return $value;
			}
			return self::normalize_array( get_object_vars( $value ) );
		}
		if ( is_array( $value ) ) {
			return $value;
		}
		return $value;
	}

	/**
	 * Normalizes the values of an associative array (an extra event's data).
	 *
	 * @param array $values Values.
	 * @return array
	 */
	private static function normalize_array( array $values ) {
		foreach ( $values as $k => $v ) {
			$values[ $k ] = self::normalize( $v );
		}
		return $values;
	}

	/**
	 * Whether an array has string keys.
	 *
	 * @param array $values The array.
	 * @return bool
	 */
	private static function is_assoc( array $values ) {
		return array() !== $values && array_keys( $values ) !== range( 0, count( $values ) - 1 );
	}

	/**
	 * Enriches and stores one firing. Runs inside the request that fired the hook; no network.
	 *
	 * @param string $slug   Event slug.
	 * @param array  $data   Named hook arguments.
	 * @param array  $values The hook's raw arguments.
	 * @return string|false The row's idempotency key, or false when nothing was stored.
	 */
	public static function report( $slug, array $data, array $values = array() ) {
		$data = self::enrich( $data );
		/**
		 * Filters an event's data before it is stored in the outbox.
		 *
		 * @param array  $data The data: the hook's named arguments plus user and post details.
		 * @param string $slug The event slug.
		 * @param array  $args The hook's raw arguments.
		 * @return array|false The data to store, or false to report nothing.
		 */
		$data = apply_filters( 'learnomy_webhooks_event_data', $data, $slug, $values );
		if ( false === $data || null === $data ) {
			return false;
		}
		if ( is_object( $data ) ) {
			$data = get_object_vars( $data );
		}
		if ( ! is_array( $data ) ) {
			$data = array();
		}
		$key = Learnomy_Webhooks_Outbox::add( $slug, $data );
		if ( false !== $key ) {
			self::$stored = true;
		}
		return $key;
	}

	/**
	 * Adds what WordPress knows about the user and the posts an event names; a field WordPress
	 * does not know is left out.
	 *
	 * @param array $data Named hook arguments.
	 * @return array
	 */
	public static function enrich( array $data ) {
		if ( isset( $data['user_id'] ) && is_int( $data['user_id'] ) && $data['user_id'] > 0 ) {
			$user = get_userdata( $data['user_id'] );
			if ( $user instanceof WP_User ) {
				if ( ! array_key_exists( 'user_name', $data ) && '' !== (string) $user->display_name ) {
					$data['user_name'] = (string) $user->display_name;
				}
				if ( ! array_key_exists( 'user_email', $data ) && '' !== (string) $user->user_email ) {
					$data['user_email'] = (string) $user->user_email;
				}
			}
		}
		foreach ( array( 'course', 'lesson', 'quiz', 'path' ) as $kind ) {
			$field = $kind . '_id';
			if ( ! isset( $data[ $field ] ) || ! is_int( $data[ $field ] ) || $data[ $field ] <= 0 ) {
				continue;
			}
			$post = get_post( $data[ $field ] );
			if ( ! $post instanceof WP_Post ) {
				continue;
			}
			$title = html_entity_decode( wp_strip_all_tags( get_the_title( $post ) ), ENT_QUOTES | ENT_HTML5, 'UTF-8' );
			if ( ! array_key_exists( $kind . '_title', $data ) && '' !== $title ) {
				$data[ $kind . '_title' ] = $title;
			}
			$url = get_permalink( $post );
			if ( ! array_key_exists( $kind . '_url', $data ) && is_string( $url ) && '' !== $url ) {
				$data[ $kind . '_url' ] = $url;
			}
		}
		return $data;
	}
}
