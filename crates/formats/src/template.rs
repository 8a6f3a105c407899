//! `format = "template"`: the admin's own body, a MiniJinja template over the event envelope,
//! checked when saved and rendered under limits when sent.
//!
//! Values are inserted as JSON (`{{ data.user_name }}` → `"Jane Doe"`, quotes included), so a
//! template that builds a JSON body cannot be broken by what the LMS sends; `|safe` inserts a
//! string as it is. Rendering is bounded: a budget of VM instructions ([`FUEL`]) stops a
//! template that loops too long, [`MAX_OUTPUT`] bytes stop one that writes too much, and both
//! end the attempt as failed with the reason, never harming other deliveries.

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;

/// Longest template source accepted (bytes).
pub const MAX_SOURCE: usize = 16 * 1024;
/// Longest body a template may produce (bytes).
pub const MAX_OUTPUT: usize = 256 * 1024;
/// VM instruction budget per rendering: generous for any body (a loop over every field of
/// `data` uses a few hundred), far below what a runaway loop would use.
pub const FUEL: u64 = 200_000;
/// Deepest nesting of macros and includes.
const MAX_DEPTH: usize = 16;
const NAME: &str = "body";

/// A template that compiled.
#[derive(Debug)]
pub struct Template {
    env: Environment<'static>,
}

/// Why a template was refused when saved, or failed when rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Empty, or longer than [`MAX_SOURCE`].
    #[error("must be 1 to {MAX_SOURCE} bytes")]
    Size,
    /// A syntax error, with MiniJinja's line and reason.
    #[error("{0}")]
    Syntax(String),
    /// Rendering failed (an unknown filter, a type error, …).
    #[error("the template failed: {0}")]
    Render(String),
    /// The instruction budget ran out.
    #[error("the template ran too long (more than {FUEL} steps) and was stopped")]
    TooLong,
    /// The body grew past [`MAX_OUTPUT`].
    #[error("the template produced more than {MAX_OUTPUT} bytes and was stopped")]
    TooLarge,
}

impl Template {
    /// Compiles `source`; the error says what is wrong and where.
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        if source.trim().is_empty() || source.len() > MAX_SOURCE {
            return Err(TemplateError::Size);
        }
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(MAX_DEPTH);
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| TemplateError::Syntax(describe(&e)))?;
        Ok(Self { env })
    }

    /// Renders the body for `context`.
    pub fn render(&self, context: &impl Serialize) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| TemplateError::Render(describe(&e)))?;
        let mut out = Capped::default();
        match template.render_captured_to(context, &mut out) {
            Ok(_) => String::from_utf8(out.bytes)
                .map_err(|_| TemplateError::Render("the body is not UTF-8".to_owned())),
            Err(_) if out.overflowed => Err(TemplateError::TooLarge),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(TemplateError::TooLong),
            Err(e) => Err(TemplateError::Render(describe(&e))),
        }
    }
}

/// "line 3: unexpected end of input" — MiniJinja's reason with its line, without the
/// template's name.
fn describe(e: &minijinja::Error) -> String {
    let reason = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_owned);
    match e.line() {
        Some(line) => format!("line {line}: {reason}"),
        None => reason,
    }
}

/// A writer that refuses to grow past [`MAX_OUTPUT`].
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT {
            self.overflowed = true;
            return Err(std::io::Error::other("the body is too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_go_in_as_json() {
        let t = Template::compile(r#"{"who": {{ data.user_name }}, "n": {{ data.n }}}"#).unwrap();
        let body = t
            .render(&json!({"data": {"user_name": "Jane \"JD\" Doe", "n": 3}}))
            .unwrap();
        assert_eq!(body, r#"{"who": "Jane \"JD\" Doe", "n": 3}"#);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["who"], "Jane \"JD\" Doe");
    }

    #[test]
    fn broken_templates_are_refused_with_the_line() {
        let e = Template::compile("{\n\"a\": {{ data.x \n}").unwrap_err();
        assert!(
            matches!(&e, TemplateError::Syntax(m) if m.starts_with("line ")),
            "{e}"
        );
        assert_eq!(Template::compile("   ").unwrap_err(), TemplateError::Size);
        assert_eq!(
            Template::compile(&"x".repeat(MAX_SOURCE + 1)).unwrap_err(),
            TemplateError::Size
        );
    }

    #[test]
    fn runaway_templates_are_stopped() {
        let forever = Template::compile(
            "{% for a in range(10000) %}{% for b in range(10000) %}{{ b }}{% endfor %}{% endfor %}",
        )
        .unwrap();
        let e = forever.render(&json!({})).unwrap_err();
        assert!(
            matches!(e, TemplateError::TooLong | TemplateError::TooLarge),
            "{e}"
        );
        let huge = Template::compile(
            r#"{% set s = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" %}{% for a in range(9000) %}{{ s|safe }}{% endfor %}"#,
        )
        .unwrap();
        assert_eq!(
            huge.render(&json!({})).unwrap_err(),
            TemplateError::TooLarge
        );
        let recursive =
            Template::compile("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").unwrap();
        assert!(recursive.render(&json!({})).is_err());
    }
}
