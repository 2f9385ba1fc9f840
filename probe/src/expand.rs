//! `$(VAR)` expansion of exec probe commands with the container's static `env` values, exactly
//! as the kubelet's `ExpandContainerCommandOnlyStatic` (third_party/forked/golang/expansion):
//! `$(NAME)` is replaced when `NAME` is defined, left as is otherwise; `$$` is a literal `$`.

use k8s_openapi::api::core::v1::EnvVar;

/// Expands every argument of `command` with the static values of `env`. Entries with
/// `valueFrom` count as defined with an empty value, as in the kubelet.
pub fn expand_command(command: &[String], env: &[EnvVar]) -> Vec<String> {
    let lookup = |name: &str| -> Option<String> {
        // Later entries win, like Go's map built in order.
        env.iter()
            .rev()
            .find(|e| e.name == name)
            .map(|e| e.value.clone().unwrap_or_default())
    };
    command.iter().map(|arg| expand(arg, &lookup)).collect()
}

/// Expands one string with `mapping` (`None` = undefined, kept as `$(NAME)`).
pub fn expand(input: &str, mapping: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest[1..].find(')') {
                    Some(end) => {
                        let name = &rest[1..1 + end];
                        match mapping(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        end + 2
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$` followed by anything else: both kept; the next character may be
                    // multi-byte, so copy it whole.
                    let c = rest.chars().next().unwrap_or('$');
                    out.push('$');
                    out.push(c);
                    c.len_utf8()
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, Option<&str>)]) -> Vec<EnvVar> {
        pairs
            .iter()
            .map(|(n, v)| EnvVar {
                name: n.to_string(),
                value: v.map(str::to_string),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn expands_like_the_kubelet() {
        let e = env(&[("A", Some("x")), ("EMPTY", None)]);
        let cmd: Vec<String> = [
            "$(A)",
            "pre$(A)post",
            "$(B)",
            "$$(A)",
            "$(EMPTY)",
            "$(A",
            "$",
            "a$b",
            "$(A)$(A)",
            "é$é",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            expand_command(&cmd, &e),
            [
                "x", "prexpost", "$(B)", "$(A)", "", "$(A", "$", "a$b", "xx", "é$é"
            ]
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Expansion never panics, and text without `$` is unchanged.
        #[test]
        fn expansion_is_total(s in ".{0,40}") {
            let out = expand(&s, &|n: &str| Some(n.to_uppercase()));
            if !s.contains('$') {
                prop_assert_eq!(out, s);
            }
        }
    }
}
