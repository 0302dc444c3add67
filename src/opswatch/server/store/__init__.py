"""Event stores: where every event lives (DuckDB embedded, ClickHouse later)."""
