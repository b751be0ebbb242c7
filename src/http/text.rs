//! Validators for the free-text fields of request bodies, shared by the
//! routes so each rule says the same thing everywhere.

use validator::ValidationError;

/// A short text (a name, a type, a place): 1 to 200 characters once trimmed.
pub fn validate_text(s: &str) -> Result<(), ValidationError> {
    let len = s.trim().chars().count();
    if len == 0 || len > 200 {
        return Err(
            ValidationError::new("length").with_message("must be 1 to 200 characters".into())
        );
    }
    Ok(())
}

/// A note: at most 2000 characters.
pub fn validate_note(s: &str) -> Result<(), ValidationError> {
    if s.chars().count() > 2000 {
        return Err(
            ValidationError::new("length").with_message("must be at most 2000 characters".into())
        );
    }
    Ok(())
}
