/*
 * Learnomy Webhooks admin page: Copy and Regenerate for the secret key, Select all, the
 * confirmation prompts, Test without a reload, and the Delivery Log's filters and pages without a
 * reload. Plain JavaScript, no dependency; everything also works without it (the page is rendered
 * on the server and every action is a form).
 */
(function () {
	'use strict';

	var i18n = window.lrnWebhooks || {};
	var ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

	function text(key, fallback) {
		return typeof i18n[key] === 'string' ? i18n[key] : fallback;
	}

	// A 32-character key from the browser's CSPRNG, without modulo bias (248 = 4 * 62).
	function randomKey(length) {
		var out = '';
		var bytes = new Uint8Array(64);
		while (out.length < length) {
			window.crypto.getRandomValues(bytes);
			for (var i = 0; i < bytes.length && out.length < length; i++) {
				if (bytes[i] < 248) {
					out += ALPHABET.charAt(bytes[i] % 62);
				}
			}
		}
		return out;
	}

	function say(message) {
		var status = document.getElementById('lrn-webhooks-secret-status');
		if (status) {
			status.textContent = '';
			// A new text node, so screen readers announce the same words again.
			window.setTimeout(function () { status.textContent = message; }, 30);
		}
	}

	// Copy: the Clipboard API where the page may use it, else a selection and execCommand.
	// "Copied" is said only when one of them reports success.
	function copyFrom(input, button) {
		var done = function () {
			button.setAttribute('data-lrn-copied', input.value);
			say(text('copied', 'Copied'));
		};
		var legacy = function () {
			var ok = false;
			input.focus();
			input.select();
			try {
				ok = document.execCommand('copy');
			} catch (e) {
				ok = false;
			}
			button.focus();
			if (ok) {
				done();
			} else {
				say(text('copyFailed', 'Could not copy: select the key and press Ctrl+C.'));
			}
		};
		if (navigator.clipboard && window.isSecureContext) {
			navigator.clipboard.writeText(input.value).then(done, legacy);
		} else {
			legacy();
		}
	}

	document.addEventListener('click', function (e) {
		var button = e.target.closest ? e.target.closest('[data-lrn-action]') : null;
		if (!button) {
			return;
		}
		var target = document.getElementById(button.getAttribute('data-lrn-target'));
		if (!target) {
			return;
		}
		e.preventDefault();
		if (button.getAttribute('data-lrn-action') === 'copy') {
			copyFrom(target, button);
		} else if (button.getAttribute('data-lrn-action') === 'regenerate') {
			target.value = randomKey(32);
			button.removeAttribute('data-lrn-copied');
			var copy = document.getElementById('lrn-webhooks-copy');
			if (copy) {
				copy.removeAttribute('data-lrn-copied');
			}
			say(text('newKey', 'New key generated.'));
		}
	});

	// Select all, kept in step with the boxes (indeterminate when some are checked).
	var selectAll = document.getElementById('lrn-webhooks-select-all');
	if (selectAll) {
		var form = selectAll.form;
		var boxes = function () {
			return form ? form.querySelectorAll('input[name="events[]"]') : [];
		};
		var sync = function () {
			var all = boxes();
			var checked = 0;
			for (var i = 0; i < all.length; i++) {
				if (all[i].checked) {
					checked++;
				}
			}
			selectAll.checked = all.length > 0 && checked === all.length;
			selectAll.indeterminate = checked > 0 && checked < all.length;
		};
		selectAll.addEventListener('change', function () {
			var all = boxes();
			for (var i = 0; i < all.length; i++) {
				all[i].checked = selectAll.checked;
			}
			selectAll.indeterminate = false;
		});
		if (form) {
			form.addEventListener('change', function (e) {
				if (e.target && e.target.name === 'events[]') {
					sync();
				}
			});
		}
		sync();
	}

	// Confirmation before Delete and Disable: the browser's prompt here, a confirmation screen
	// without JavaScript (the server asks when "confirmed" is not set).
	document.addEventListener('submit', function (e) {
		var form = e.target;
		var question = form.getAttribute('data-lrn-confirm');
		if (!question) {
			return;
		}
		if (!window.confirm(question)) {
			e.preventDefault();
			return;
		}
		var confirmed = form.querySelector('input[name="confirmed"]');
		if (confirmed) {
			confirmed.value = '1';
		}
	});

	// Test: the same form, sent to admin-ajax.php (same action name and nonce); the outcome goes
	// into the row.
	document.addEventListener('submit', function (e) {
		var form = e.target;
		if (!form.classList || !form.classList.contains('lrn-webhooks-test-form') || !window.fetch || !window.FormData) {
			return;
		}
		var row = form.closest('tr');
		var result = row ? row.querySelector('.lrn-webhooks-test-result') : null;
		if (!result) {
			return;
		}
		e.preventDefault();
		var button = form.querySelector('button');
		button.disabled = true;
		result.className = 'lrn-webhooks-test-result is-busy';
		result.textContent = text('testing', 'Sending a test…');
		fetch(i18n.ajaxUrl || form.action.replace('admin-post.php', 'admin-ajax.php'), {
			method: 'POST',
			body: new FormData(form),
			credentials: 'same-origin'
		}).then(function (r) {
			return r.text().then(function (body) {
				var answer = null;
				try {
					answer = JSON.parse(body);
				} catch (err) {
					answer = null;
				}
				if (!answer || !answer.data) {
					throw new Error(r.status + ' ' + (body || r.statusText).slice(0, 200));
				}
				return answer;
			});
		}).then(function (answer) {
			result.textContent = answer.data.text || '';
			result.className = 'lrn-webhooks-test-result ' + (answer.success && answer.data.delivered ? 'is-ok' : 'is-bad');
		}).catch(function (err) {
			result.textContent = text('testError', 'The test could not run: %s').replace('%s', err.message);
			result.className = 'lrn-webhooks-test-result is-bad';
		}).then(function () {
			button.disabled = false;
		});
	});

	// Delivery Log: filters and pages replace the rows, rendered on the server by admin-ajax.
	var filters = document.querySelector('.lrn-webhooks-filters[data-lrn-ajax]');
	var rows = document.getElementById('lrn-webhooks-log-rows');
	if (filters && rows && window.fetch) {
		var status = filters.querySelector('[aria-pressed="true"]');
		var state = { status: status ? status.getAttribute('data-lrn-status') : '' };
		var load = function (cursor, trail) {
			var params = new URLSearchParams();
			params.set('action', 'lrn_webhooks_log_rows');
			params.set('_wpnonce', filters.getAttribute('data-lrn-nonce'));
			params.set('webhook', filters.getAttribute('data-lrn-webhook'));
			params.set('status', state.status);
			params.set('cursor', cursor || '');
			params.set('trail', trail || '');
			rows.setAttribute('aria-busy', 'true');
			return fetch(filters.getAttribute('data-lrn-ajax') + '?' + params.toString(), { credentials: 'same-origin' })
				.then(function (r) {
					return r.json().catch(function () { throw new Error(String(r.status)); });
				})
				.then(function (answer) {
					if (!answer || !answer.success) {
						throw new Error(answer && answer.data ? String(answer.data) : '');
					}
					rows.innerHTML = answer.data.html;
					if (answer.data.url && window.history && window.history.replaceState) {
						window.history.replaceState(null, '', answer.data.url);
					}
				})
				.catch(function (err) {
					rows.innerHTML = '';
					var p = document.createElement('div');
					p.className = 'notice notice-error inline';
					p.appendChild(document.createElement('p')).textContent = text('loadError', 'The deliveries could not be loaded: %s').replace('%s', err.message);
					rows.appendChild(p);
				})
				.then(function () {
					rows.removeAttribute('aria-busy');
				});
		};
		filters.addEventListener('click', function (e) {
			var link = e.target.closest('[data-lrn-status]');
			if (!link) {
				return;
			}
			e.preventDefault();
			state.status = link.getAttribute('data-lrn-status');
			var all = filters.querySelectorAll('[data-lrn-status]');
			for (var i = 0; i < all.length; i++) {
				var on = all[i] === link;
				all[i].setAttribute('aria-pressed', on ? 'true' : 'false');
				all[i].classList.toggle('button-primary', on);
			}
			load('', '');
		});
		rows.addEventListener('click', function (e) {
			var link = e.target.closest('[data-lrn-cursor]');
			if (!link) {
				return;
			}
			e.preventDefault();
			load(link.getAttribute('data-lrn-cursor'), link.getAttribute('data-lrn-trail')).then(function () {
				// Back to the top of the list, below the admin bar, when it is out of view.
				var top = filters.getBoundingClientRect().top;
				if (top < 48) {
					window.scrollBy(0, top - 56);
				}
			});
		});
	}
	// Body format: the template field shows for a custom template; the preview is asked of the
	// service again (through admin-ajax) when the format, the template or the event changes.
	var format = document.getElementById('lrn-webhooks-format');
	var preview = document.getElementById('lrn-webhooks-preview');
	if (format && preview && window.fetch && window.FormData) {
		var templateField = document.getElementById('lrn-webhooks-template-field');
		var template = document.getElementById('lrn-webhooks-template');
		var previewEvent = document.getElementById('lrn-webhooks-preview-event');
		var nonce = preview.parentNode.getAttribute('data-lrn-nonce') || '';
		var asked = 0;
		var timer = null;
		var refresh = function () {
			var mine = ++asked;
			var data = new FormData();
			data.append('action', 'lrn_webhooks_preview');
			data.append('_ajax_nonce', nonce);
			data.append('format', format.value);
			data.append('template', template ? template.value : '');
			data.append('event', previewEvent ? previewEvent.value : '');
			fetch(i18n.ajaxUrl, { method: 'POST', body: data, credentials: 'same-origin' })
				.then(function (r) { return r.json(); })
				.then(function (answer) {
					if (mine !== asked || !answer || !answer.data) {
						return;
					}
					preview.textContent = answer.data.text || '';
					preview.className = 'lrn-webhooks-preview-body' + (answer.success ? '' : ' is-bad');
				})
				.catch(function () {});
		};
		format.addEventListener('change', function () {
			if (templateField) {
				templateField.hidden = format.value !== 'template';
			}
			refresh();
		});
		if (previewEvent) {
			previewEvent.addEventListener('change', refresh);
		}
		if (template) {
			template.addEventListener('input', function () {
				window.clearTimeout(timer);
				timer = window.setTimeout(refresh, 300);
			});
		}
	}
}());
