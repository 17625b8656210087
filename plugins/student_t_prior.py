"""Placeholder for the student_t_prior plugin (issue 3); the hook registers nothing yet."""
