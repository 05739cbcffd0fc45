"""Pure builders: one module per child kind, each a function of the spec and what was resolved."""
