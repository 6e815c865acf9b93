"""The shipped run configs (YAML), installed as ``wsteer.configs`` so ``wsteer demo`` finds them outside a checkout."""
