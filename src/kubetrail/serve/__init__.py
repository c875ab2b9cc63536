"""`kubetrail serve`: configuration, the wiring of store, receiver and tailers, and the HTTP server around them."""
