"""luciole package."""
