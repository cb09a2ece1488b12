"""Tasks, benchmark runs and reports."""
