//! `${NAME}` and `${env.NAME}` references in the identity URL and its
//! header values.
//!
//! A reference is `${` + a name of letters, digits and `_` (not starting with
//! a digit) + `}`; `${env.NAME}`, docker-agent's documented form, is the same
//! reference to `NAME`. A `$` not followed by `{` is literal text; any other
//! `${…}` is an error that names the accepted forms.

/// The accepted forms, for error messages.
const ACCEPTED_FORMS: &str = "write `${NAME}` or `${env.NAME}`, NAME of letters, digits and `_`";

/// docker-agent's prefix for a reference to the environment.
const ENV_PREFIX: &str = "env.";

/// Why a template is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError(pub(crate) String);

/// One piece of a parsed template.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, SyntaxError> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| SyntaxError(format!("`${{` is not closed by `}}`; {ACCEPTED_FORMS}")))?;
        let reference = &after[..end];
        let name = reference.strip_prefix(ENV_PREFIX).unwrap_or(reference);
        if !is_variable_name(name) {
            return Err(SyntaxError(format!(
                "`${{{reference}}}` is not a valid reference; {ACCEPTED_FORMS}"
            )));
        }
        out.push(Piece::Var(name));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Whether `name` is a valid environment variable name for a reference.
pub(crate) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The variable names referenced by `template`, in order, without
/// duplicates.
pub(crate) fn variables(template: &str) -> Result<Vec<String>, SyntaxError> {
    let mut names: Vec<String> = Vec::new();
    for piece in pieces(template)? {
        if let Piece::Var(name) = piece
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Expands every reference in `template` with `lookup`.
pub(crate) fn expand<E>(
    template: &str,
    mut lookup: impl FnMut(&str) -> Result<String, E>,
    syntax: impl FnOnce(SyntaxError) -> E,
) -> Result<String, E> {
    let pieces = pieces(template).map_err(syntax)?;
    let mut out = String::with_capacity(template.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var(name) => out.push_str(&lookup(name)?),
        }
    }
    Ok(out)
}

/// Whether `template` contains a reference.
pub(crate) fn has_reference(template: &str) -> bool {
    template.contains("${")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_with(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
        expand(
            template,
            |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
                    .ok_or_else(|| format!("unset {name}"))
            },
            |e| e.0,
        )
    }

    #[test]
    fn expands_references_and_keeps_text() {
        let got = expand_with("${A}&x=$1&${B_2}", &[("A", "https://h/p?q"), ("B_2", "v")]);
        assert_eq!(got.unwrap(), "https://h/p?q&x=$1&v");
    }

    #[test]
    fn an_unset_variable_is_reported_by_name() {
        assert_eq!(
            expand_with("x${MISSING}", &[]).unwrap_err(),
            "unset MISSING"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(expand_with("${A", &[]).unwrap_err().contains("not closed"));
        assert!(
            expand_with("${}", &[])
                .unwrap_err()
                .contains("not a valid reference")
        );
        assert!(
            expand_with("${1A}", &[])
                .unwrap_err()
                .contains("not a valid reference")
        );
        assert!(
            expand_with("${A-B}", &[])
                .unwrap_err()
                .contains("not a valid reference")
        );
    }

    #[test]
    fn lists_variables_once_in_order() {
        assert_eq!(variables("${B}${A}${B}").unwrap(), vec!["B", "A"]);
        assert!(variables("plain").unwrap().is_empty());
    }

    #[test]
    fn the_env_form_is_the_same_reference_as_the_bare_form() {
        let vars = [("ACTIONS_ID_TOKEN_REQUEST_URL", "https://gh/t?v=2")];
        assert_eq!(
            expand_with(
                "${env.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=https://api.anthropic.com",
                &vars
            )
            .unwrap(),
            "https://gh/t?v=2&audience=https://api.anthropic.com"
        );
        assert_eq!(
            expand_with("${env.ACTIONS_ID_TOKEN_REQUEST_URL}", &vars),
            expand_with("${ACTIONS_ID_TOKEN_REQUEST_URL}", &vars)
        );
        assert_eq!(
            variables("bearer ${env.TOKEN} ${TOKEN} ${env.OTHER}").unwrap(),
            vec!["TOKEN", "OTHER"],
            "both forms name the variable without `env.`, once"
        );
        assert_eq!(
            expand_with("x${env.MISSING}", &[]).unwrap_err(),
            "unset MISSING",
            "the lookup is asked for the bare name"
        );
        assert_eq!(
            expand_with("${env}", &[("env", "v")]).unwrap(),
            "v",
            "a variable called `env` is still a bare reference"
        );
    }

    #[test]
    fn other_forms_are_errors_that_name_the_accepted_ones() {
        for template in [
            "${env.}",
            "${env.1A}",
            "${env.env.A}",
            "${ENV.A}",
            "${secret.A}",
            "${env:A}",
            "${A:-default}",
            "${ A }",
            "${env.A",
        ] {
            let err = expand_with(template, &[("A", "v")]).unwrap_err();
            assert!(
                err.contains("write `${NAME}` or `${env.NAME}`"),
                "{template}: {err}"
            );
            assert_eq!(variables(template).unwrap_err().0, err, "{template}");
        }
        assert!(
            expand_with("${secret.A}", &[])
                .unwrap_err()
                .starts_with("`${secret.A}` is not a valid reference"),
            "the reference is shown as written"
        );
    }

    #[test]
    fn expansion_is_not_recursive() {
        assert_eq!(
            expand_with("${A}", &[("A", "${B}"), ("B", "no")]).unwrap(),
            "${B}"
        );
    }
}
