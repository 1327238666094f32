"""What the numbers mean: bootstrap statistics, the audit summary, the agreement rules behind every
generated case, adaptive sampling and guided removal. Works on measurements; loads no model itself."""
