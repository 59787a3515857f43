"""Honest measurement: rating metrics (`rating`), top-N metrics through the service's own kernel
(`ranking`), one exported version read back the way it is served (`version`), and the grid of
models x optimizers with its report (`compare`, `report`)."""
