"""Readers and writers: bytes <-> rows. Knows nothing of AWS, jobs or pipelines."""
