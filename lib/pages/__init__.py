"""One page model per page: a pure function of the validated configuration and a `Lab` that
returns a frozen dataclass holding everything the page shows. Views draw it; tests assert on
it; benchmarks time it; the page's data export is the dataclass itself."""
