"""Top-N on the served version: recommend for one user or many, and id checks."""
