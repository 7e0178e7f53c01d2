"""Pure, framework-free helpers shared by every middleware."""
