"""Internal helpers shared by the sub-packages (input validation)."""
