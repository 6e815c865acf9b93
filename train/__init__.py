"""Training: TRL preference objectives on a LoRA adapter that carries the persona."""
