"""Optional extensions of limpyd's core (manual, Contrib): related fields, pipelines,
extended collections, multi-indexes."""
