"""Building blocks for instruction tuning of causal LMs (chat conversations)."""
