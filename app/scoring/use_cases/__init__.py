"""The use cases: each a declared object, all registered in one map; the pipeline they share."""
