"""Reference models the learned ones are measured against."""
