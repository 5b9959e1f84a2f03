"""The customer domain: the customer store as scoring reads it, lifecycle rules, and the one-call profile."""
