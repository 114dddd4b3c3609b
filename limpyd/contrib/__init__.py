"""Optional extensions of limpyd's core (redis-limpyd's contrib): related fields, pipelines,
extended collections, multi-indexes."""
