"""What the routes do beyond reading and writing rows: ingest, policy diffs, approval answers, the backend key."""
