"""Placeholder for the laplace plugin (issue 3); the hook registers nothing yet."""
