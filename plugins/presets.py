"""Placeholder for the presets plugin (issue 3); the hook registers nothing yet."""
