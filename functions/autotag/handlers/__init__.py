"""Function Compute entry points (thin shells over the pure core)."""
