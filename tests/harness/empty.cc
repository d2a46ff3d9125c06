// Intentionally empty until the harness has sources.
