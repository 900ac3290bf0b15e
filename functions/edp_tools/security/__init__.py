"""Static security checks run in CI: the dependency audit (:mod:`.audit`)."""
