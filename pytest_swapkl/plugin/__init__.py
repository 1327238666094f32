"""pytest glue only. `hooks` is the pytest11 entry point; it imports nothing heavy at start-up (no torch,
no numpy), and the work lives in `session` (audits, cache, model), `items` (generated cases) and `query`
(the fixtures' view of an audit)."""
