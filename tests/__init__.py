"""nengo_fa's tests (a package, so that they share `tests.networks`)."""
