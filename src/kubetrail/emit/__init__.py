"""The API server's side as a library: request info, events per stage and level, and audit backends."""
