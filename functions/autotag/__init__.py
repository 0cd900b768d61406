"""oss-autotag: the code deployed to Function Compute. Pure core modules, thin I/O shells."""
