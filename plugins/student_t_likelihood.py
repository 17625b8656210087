"""Placeholder for the student_t_likelihood plugin (issue 3); the hook registers nothing yet."""
