"""Views of the compliance app, one module per area (`requests`, `exports`, `access_log`, `public`, ...),
combined by compliance/urls/ and compliance/urls_public/."""
