"""Training and adapting the detector: augmented views (augment.py), the descriptor cache of a frozen backbone
(descriptor_cache.py), the heads' training loop on those descriptors (head_fit.py), whole runs, frozen or
fine-tuned (train.py), and refitting to a user's images (adapt.py)."""
