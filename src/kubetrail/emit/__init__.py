"""The API server's side as a library: request info, events per stage and level, and audit backends.

`requestinfo` (method + URL → RequestInfo), `builder` (one request's events per stage),
backends `logbackend` (+ `rotation`, `legacy`) and `webhook`, wrappers `buffered` (batch mode),
`truncate` and `union`, and `options` (the `--audit-log-*` flags). Nothing is imported here, so
importing one module does not load the others.
"""
