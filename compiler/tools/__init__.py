"""What users run besides compile: the CLI, inspect, bench, report and the operator conformance suite."""
