"""Placeholder for the mixture plugin (issue 3); the hook registers nothing yet."""
