//! Permission rules as clients send them: checked against the routes the
//! server has.

use crate::{
    domain::permission::{Rule, METHODS},
    error::{AppError, FieldErrors},
    http::protected_routes,
};

/// 422 unless every rule names a protected route with a known method, once.
pub fn check_rules_exist(rules: &[Rule], field: &str) -> Result<(), AppError> {
    let known = protected_routes();
    let mut details = FieldErrors::new();
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let key = rule.key();
        let problem = if !METHODS.contains(&key.method.as_str()) {
            Some(format!("unknown method '{}'", rule.method))
        } else if !known.contains(&key) {
            Some(format!("no protected route {key}"))
        } else if !seen.insert(key.clone()) {
            Some(format!("{key} appears twice"))
        } else {
            None
        };
        if let Some(p) = problem {
            details.insert(format!("{field}[{i}]"), vec![p]);
        }
    }
    if details.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation {
            message: "some rules are invalid".into(),
            details,
        })
    }
}
