"""Placeholder for the vamp plugin (issue 3); the hook registers nothing yet."""
