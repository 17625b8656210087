"""Placeholder for the ladder plugin (issue 3); the hook registers nothing yet."""
