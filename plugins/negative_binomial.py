"""Placeholder for the negative_binomial plugin (issue 3); the hook registers nothing yet."""
