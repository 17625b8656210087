"""Placeholder for the poisson plugin (issue 3); the hook registers nothing yet."""
