"""Media: the S3-compatible object store and what the service learns from the bytes in it."""
