"""Preference data: mine git history, filter, dedup, label, judge, assemble; and execution-verified bug pairs."""
