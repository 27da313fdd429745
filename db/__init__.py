"""Database layer: SQLAlchemy 2.0 models, engines and sessions. The bottom of the dependency graph."""
