"""Placeholder for the conv plugin (issue 3); the hook registers nothing yet."""
