"""Placeholder for the continuous_bernoulli plugin (issue 3); the hook registers nothing yet."""
