"""`modelops`: the command line for staged promotion (promote) and manifest checks (validate)."""
