"""Tools the model can call, grouped by category, each with a risk level and permissions."""
