"""Use-case services (what each route does) and the loaded-model registry they score with."""
