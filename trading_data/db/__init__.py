"""Database: where it is, how to start it, and its migrations."""
