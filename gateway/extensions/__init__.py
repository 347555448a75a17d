"""Cross-cutting concerns of GraphQL execution, one strawberry extension per module."""
