"""The state store (SQLite by default, PostgreSQL by URL): projects, keys, issues, monitors, alerts."""
