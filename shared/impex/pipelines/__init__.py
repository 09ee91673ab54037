"""Use cases run by the workers: import, export and sweep."""
