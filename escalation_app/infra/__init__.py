"""Infrastructure the domain relies on but does not own: key files and encryption."""
