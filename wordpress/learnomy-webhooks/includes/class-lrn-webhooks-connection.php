<?php
/**
 * The connection to the Learnomy Webhooks service: where it is, the token, and the HTTP calls.
 *
 * @package Learnomy_Webhooks
 */

defined( 'ABSPATH' ) || exit;

/**
 * Service URL and token (constants first, then options) and the requests made to the service.
 */
class Learnomy_Webhooks_Connection {

	/** Option: the service's base URL. */
	const URL_OPTION = 'lrn_webhooks_url';

	/** Option (not autoloaded): the API token. */
	const TOKEN_OPTION = 'lrn_webhooks_token';

	/** Seconds a request to the service may take. */
	const TIMEOUT = 10;

	/**
	 * Whether the URL is set in wp-config.php.
	 *
	 * @return bool
	 */
	public static function url_is_constant() {
		return defined( 'LEARNOMY_WEBHOOKS_URL' );
	}

	/**
	 * Whether the token is set in wp-config.php.
	 *
	 * @return bool
	 */
	public static function token_is_constant() {
		return defined( 'LEARNOMY_WEBHOOKS_TOKEN' );
	}

	/**
	 * The service's base URL without a trailing slash ('' when not set).
	 *
	 * @return string
	 */
	public static function url() {
		$url = self::url_is_constant() ? (string) constant( 'LEARNOMY_WEBHOOKS_URL' ) : (string) get_option( self::URL_OPTION, '' );
		return untrailingslashit( trim( $url ) );
	}

	/**
	 * The API token ('' when not set). Never printed.
	 *
	 * @return string
	 */
	public static function token() {
		$token = self::token_is_constant() ? (string) constant( 'LEARNOMY_WEBHOOKS_TOKEN' ) : (string) get_option( self::TOKEN_OPTION, '' );
		return trim( $token );
	}

	/**
	 * Whether both the URL and the token are set.
	 *
	 * @return bool
	 */
	public static function is_configured() {
		return '' !== self::url() && '' !== self::token();
	}

	/**
	 * The first characters of the token, enough to recognise it.
	 *
	 * @return string
	 */
	public static function token_hint() {
		$token = self::token();
		return '' === $token ? '' : substr( $token, 0, 8 );
	}

	/**
	 * Stores the URL (and the token when one is given) from the settings screen.
	 *
	 * @param string $url          The URL as typed.
	 * @param string $token        The token as typed; '' keeps the current one.
	 * @param bool   $forget_token Whether to delete the saved token.
	 * @return true|WP_Error
	 */
	public static function save( $url, $token, $forget_token = false ) {
		if ( ! self::url_is_constant() ) {
			$url = trim( (string) $url );
			if ( '' === $url ) {
				delete_option( self::URL_OPTION );
			} else {
				$clean  = esc_url_raw( $url, array( 'http', 'https' ) );
				$scheme = wp_parse_url( $clean, PHP_URL_SCHEME );
				$host   = wp_parse_url( $clean, PHP_URL_HOST );
				if ( '' === $clean || ! in_array( $scheme, array( 'http', 'https' ), true ) || empty( $host ) ) {
					return new WP_Error( 'lrn_webhooks_bad_url', __( 'The service URL must be an http:// or https:// address, e.g. http://127.0.0.1:8080.', 'learnomy-webhooks' ) );
				}
				update_option( self::URL_OPTION, untrailingslashit( $clean ), true );
			}
		}
		if ( ! self::token_is_constant() ) {
			$token = trim( (string) $token );
			if ( '' !== $token ) {
				if ( ! preg_match( '/^[\x21-\x7e]{1,512}$/', $token ) ) {
					return new WP_Error( 'lrn_webhooks_bad_token', __( 'The token contains characters a token never has. Paste it again.', 'learnomy-webhooks' ) );
				}
				update_option( self::TOKEN_OPTION, $token, false );
			} elseif ( $forget_token ) {
				delete_option( self::TOKEN_OPTION );
			}
		}
		return true;
	}

	/**
	 * The common request arguments.
	 *
	 * @param bool $auth Whether to send the bearer token.
	 * @return array
	 */
	private static function request_args( $auth ) {
		$headers = array( 'Accept' => 'application/json' );
		if ( $auth ) {
			$headers['Authorization'] = 'Bearer ' . self::token();
		}
		return array(
			'timeout'     => self::TIMEOUT,
			'redirection' => 0,
			'blocking'    => true,
			'headers'     => $headers,
			'user-agent'  => 'learnomy-webhooks-wordpress/' . LRN_WEBHOOKS_VERSION . '; ' . home_url( '/' ),
		);
	}

	/**
	 * POSTs a batch body to /api/v1/events/batch.
	 *
	 * @param string $json The request body: {"events":[…]}.
	 * @return array|WP_Error The wp_remote_post response.
	 */
	public static function post_batch( $json ) {
		$args                            = self::request_args( true );
		$args['headers']['Content-Type'] = 'application/json';
		$args['body']                    = $json;
		return wp_remote_post( self::url() . '/api/v1/events/batch', $args );
	}

	/**
	 * GETs a path of the service.
	 *
	 * @param string $path Path starting with '/'.
	 * @param bool   $auth Whether to send the token.
	 * @return array|WP_Error
	 */
	public static function get( $path, $auth ) {
		return wp_remote_get( self::url() . $path, self::request_args( $auth ) );
	}

	/**
	 * Sends a request to the service's API with the token.
	 *
	 * @param string     $method  GET, POST, PATCH or DELETE.
	 * @param string     $path    Path starting with '/'.
	 * @param array|null $body    JSON body, or null for none.
	 * @param int        $timeout Seconds the request may take (0: the default).
	 * @return array|WP_Error The wp_remote_request response.
	 */
	public static function request( $method, $path, $body = null, $timeout = 0 ) {
		$args           = self::request_args( true );
		$args['method'] = $method;
		if ( $timeout > 0 ) {
			$args['timeout'] = $timeout;
		}
		if ( null !== $body ) {
			$args['headers']['Content-Type'] = 'application/json';
			$args['body']                    = wp_json_encode( $body );
		}
		return wp_remote_request( self::url() . $path, $args );
	}

	/**
	 * Decodes a response's JSON body.
	 *
	 * @param array|WP_Error $response A wp_remote_* response.
	 * @return array|null
	 */
	public static function json( $response ) {
		if ( is_wp_error( $response ) ) {
			return null;
		}
		$decoded = json_decode( (string) wp_remote_retrieve_body( $response ), true );
		return is_array( $decoded ) ? $decoded : null;
	}

	/**
	 * What a problem+json answer says (its detail, else its title, else the HTTP status).
	 *
	 * @param array $response A wp_remote_* response.
	 * @return string
	 */
	public static function problem_detail( $response ) {
		$problem = self::json( $response );
		foreach ( array( 'detail', 'title' ) as $field ) {
			if ( is_array( $problem ) && isset( $problem[ $field ] ) && is_string( $problem[ $field ] ) && '' !== $problem[ $field ] ) {
				return $problem[ $field ];
			}
		}
		/* translators: %d: HTTP status code */
		return sprintf( __( 'HTTP %d', 'learnomy-webhooks' ), (int) wp_remote_retrieve_response_code( $response ) );
	}

	/**
	 * A problem+json answer in one line: "code: detail" (or the HTTP status).
	 *
	 * @param array|WP_Error $response A wp_remote_* response.
	 * @return string
	 */
	public static function describe_error( $response ) {
		if ( is_wp_error( $response ) ) {
			return $response->get_error_message();
		}
		$status  = (int) wp_remote_retrieve_response_code( $response );
		$problem = self::json( $response );
		$detail  = '';
		if ( is_array( $problem ) ) {
			if ( isset( $problem['detail'] ) && is_string( $problem['detail'] ) ) {
				$detail = $problem['detail'];
			} elseif ( isset( $problem['title'] ) && is_string( $problem['title'] ) ) {
				$detail = $problem['title'];
			}
			if ( isset( $problem['code'] ) && is_string( $problem['code'] ) ) {
				$detail = $problem['code'] . ( '' !== $detail ? ': ' . $detail : '' );
			}
		}
		/* translators: 1: HTTP status code, 2: the service's explanation */
		return '' === $detail ? sprintf( __( 'HTTP %d', 'learnomy-webhooks' ), $status ) : sprintf( __( 'HTTP %1$d, %2$s', 'learnomy-webhooks' ), $status, $detail );
	}

	/**
	 * Checks the connection: /healthz, then /api/v1/token with the token.
	 *
	 * @return array{type:string,message:string} A notice: type 'success', 'warning' or 'error'.
	 */
	public static function check() {
		$url = self::url();
		if ( '' === $url ) {
			return array(
				'type'    => 'error',
				'message' => __( 'Set the service URL first.', 'learnomy-webhooks' ),
			);
		}
		$health = self::get( '/healthz', false );
		if ( is_wp_error( $health ) ) {
			return array(
				'type'    => 'error',
				/* translators: 1: service URL, 2: the connection error */
				'message' => sprintf( __( 'The service does not answer at %1$s: %2$s', 'learnomy-webhooks' ), $url, $health->get_error_message() ),
			);
		}
		$status = (int) wp_remote_retrieve_response_code( $health );
		if ( 200 !== $status ) {
			return array(
				'type'    => 'error',
				/* translators: 1: service URL, 2: HTTP status code */
				'message' => sprintf( __( 'Something answers at %1$s, but not as a Learnomy Webhooks service: /healthz gave HTTP %2$d. Check the URL.', 'learnomy-webhooks' ), $url, $status ),
			);
		}
		if ( '' === self::token() ) {
			return array(
				'type'    => 'warning',
				/* translators: %s: service URL */
				'message' => sprintf( __( 'The service answers at %s, but no token is set. Create one with --scope events:write and save it here.', 'learnomy-webhooks' ), $url ),
			);
		}

		$answer = self::get( '/api/v1/token', true );
		if ( is_wp_error( $answer ) ) {
			return array(
				'type'    => 'error',
				/* translators: 1: service URL, 2: the connection error */
				'message' => sprintf( __( 'The service does not answer at %1$s: %2$s', 'learnomy-webhooks' ), $url, $answer->get_error_message() ),
			);
		}
		$status = (int) wp_remote_retrieve_response_code( $answer );
		if ( 401 === $status || 403 === $status ) {
			return array(
				'type'    => 'error',
				/* translators: 1: HTTP status code, 2: the service's explanation */
				'message' => sprintf( __( 'The service answered, but refused the token (%1$d): %2$s.', 'learnomy-webhooks' ), $status, rtrim( self::problem_detail( $answer ), '.' ) ) . ' ' . __( 'Create a token with --scope events:write and save it here.', 'learnomy-webhooks' ),
			);
		}
		$body = self::json( $answer );
		if ( 200 !== $status || ! is_array( $body ) || ! isset( $body['data'] ) || ! is_array( $body['data'] ) ) {
			return array(
				'type'    => 'warning',
				/* translators: 1: service URL, 2: HTTP status and explanation */
				'message' => sprintf( __( 'The service answers at %1$s, but could not describe the token (%2$s); it may be older than this plugin.', 'learnomy-webhooks' ), $url, self::describe_error( $answer ) ),
			);
		}
		$info    = $body['data'];
		$version = isset( $info['version'] ) && is_scalar( $info['version'] ) ? (string) $info['version'] : '?';
		$plan    = isset( $info['plan'] ) && 'pro' === $info['plan'] ? __( 'Pro', 'learnomy-webhooks' ) : __( 'Free', 'learnomy-webhooks' );
		$scopes  = isset( $info['scopes'] ) && is_array( $info['scopes'] ) ? $info['scopes'] : array();
		$manage  = in_array( 'webhooks:manage', $scopes, true );
		$write   = $manage || in_array( 'events:write', $scopes, true );

		/* translators: 1: service version, 2: service URL, 3: plan name (Free or Pro) */
		$message = sprintf( __( 'Connected to Learnomy Webhooks %1$s at %2$s. Plan: %3$s.', 'learnomy-webhooks' ), $version, $url, $plan );
		if ( $manage ) {
			return array(
				'type'    => 'success',
				'message' => $message . ' ' . __( 'This token can report events and manage webhooks.', 'learnomy-webhooks' ),
			);
		}
		if ( $write ) {
			return array(
				'type'    => 'success',
				'message' => $message . ' ' . __( 'This token can report events.', 'learnomy-webhooks' ),
			);
		}
		return array(
			'type'    => 'warning',
			'message' => $message . ' ' . __( 'This token cannot report events: create one with --scope events:write', 'learnomy-webhooks' ),
		);
	}
}
