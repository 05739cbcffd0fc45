"""`make demo`: the main job end to end (train, serve, deploy) on an embedded default."""
