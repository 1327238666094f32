"""The `swapkl` command line: `cli` is the front door (one parser class, one error printer), and each
subcommand lives in its own module (audit table, report from junit XML, trajectory)."""
