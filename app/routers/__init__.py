"""One router per use case: routes validate, delegate to app/scoring and return."""
